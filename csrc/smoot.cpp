// The schemas of SPEC.md; kernels register per device in csrc/cpu and csrc/cuda.
#include <Python.h>
#include <torch/library.h>

#include <exception>

#include "cpu/isa.h"

namespace {
PyObject* cpu_isa(PyObject*, PyObject*) {
  try {
    return PyUnicode_FromString(smoot::cpu_isa());
  } catch (const std::exception& e) {  // a bad SMOOT_CPU_ISA
    PyErr_SetString(PyExc_ValueError, e.what());
    return nullptr;
  }
}

PyMethodDef methods[] = {
    {"cpu_isa", cpu_isa, METH_NOARGS, "The CPU mask kernel's row-loop ISA: 'avx2' or 'baseline'."},
    {nullptr, nullptr, 0, nullptr}};
}  // namespace

// Importing smoot_ext._C loads this library and so runs TORCH_LIBRARY below.
extern "C" PyObject* PyInit__C(void) {
  static struct PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "_C", nullptr, -1, methods};
  return PyModule_Create(&module_def);
}

TORCH_LIBRARY(smoot, m) {
  m.def(
      "mask(Tensor x, Tensor score, Tensor k, *, bool abs=True, str fill=\"uniform\", "
      "float value=0.0, int seed=0, int offset=0) -> (Tensor out, Tensor mask)");
  m.def(
      "update_k(Tensor logits, Tensor logits_masked, Tensor k, *, float alpha, float mu, "
      "int n, int kmin, int kmax, str rounding=\"floor\") -> (Tensor k_new, Tensor delta)");
}
