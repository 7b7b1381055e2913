#pragma once
// Which instruction set the CPU mask kernel's row loops take, for smoot_ext.info.

namespace smoot {
// "avx2" or "baseline": what mask() on CPU runs now (SMOOT_CPU_ISA may force one).
const char* cpu_isa();
}  // namespace smoot
