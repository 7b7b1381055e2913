"""scripts/sanitize_cpu.sh catches what it is there to catch: built with the flags of its sanitized
CPU kernels and run as it runs the op tests, a planted write one element past a tensor's end and
a planted signed overflow (tests/sanitize/plant.cpp) make it fail, naming AddressSanitizer's and
UndefinedBehaviorSanitizer's reports. So the sanitized run (in .ci/run) cannot pass by the
sanitizers staying silent. Skipped where the compiler, its libasan or ninja is missing."""
import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "scripts", "sanitize_cpu.sh")
BIN = os.path.dirname(sys.executable)  # this environment's python and ninja, for the script


def _missing() -> str | None:
    cxx = os.environ.get("CXX", "g++")
    if not sys.platform.startswith("linux"):
        return "AddressSanitizer runs here on Linux only"
    if shutil.which(cxx) is None:
        return f"no C++ compiler {cxx!r}"
    libasan = subprocess.run([cxx, "-print-file-name=libasan.so"], capture_output=True, text=True).stdout.strip()
    if not os.path.isabs(libasan):
        return f"{cxx} has no libasan"
    if shutil.which("ninja", path=os.pathsep.join([BIN, os.environ.get("PATH", "")])) is None:
        return "ninja is not installed"
    return None


pytestmark = pytest.mark.skipif(_missing() is not None, reason=_missing() or "")


def _run_plant(mode: str) -> tuple[int, str]:
    env = dict(os.environ, PATH=os.pathsep.join([BIN, os.environ.get("PATH", "")]), VIRTUAL_ENV=sys.prefix)
    done = subprocess.run(["bash", SCRIPT, "--plant", mode], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=900)
    return done.returncode, done.stdout + done.stderr


@pytest.mark.parametrize("mode, report", [
    ("oob", "ERROR: AddressSanitizer: heap-buffer-overflow"),
    ("ub", "runtime error: signed integer overflow"),
], ids=["oob", "ub"])
def test_planted_bug_fails_the_script(mode, report):
    code, output = _run_plant(mode)
    assert code != 0, f"sanitize_cpu.sh --plant {mode} passed: the sanitizers stayed silent\n{output}"
    assert report in output and "plant.cpp" in output, output
    assert "FAILED: sanitizer reports above" in output, output
