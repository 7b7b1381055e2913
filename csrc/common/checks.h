#pragma once
// The argument checks of smoot::mask and smoot::update_k (SPEC.md, Errors), once for the CPU
// and the CUDA kernels. Host code: kernels never include this. smoot_ext/checks.py raises the
// same errors for the Triton kernels, the reference and the fake rules, word for word: hence
// shapes printed as Python tuples, dtypes as torch.<name> and floats as Python's repr.
#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>
#include <c10/util/string_view.h>

#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "common/fill.h"
#include "common/rounding.h"

namespace smoot {

constexpr const char* kMaskOp = "smoot::mask";
constexpr const char* kUpdateKOp = "smoot::update_k";

// "<op>: <argument>: <what was expected>, got <what came>": ValueError / TypeError in Python.
#define SMOOT_CHECK_VALUE(cond, op, arg, ...) TORCH_CHECK_VALUE(cond, op, ": ", arg, ": ", __VA_ARGS__)
#define SMOOT_CHECK_TYPE(cond, op, arg, ...) TORCH_CHECK_TYPE(cond, op, ": ", arg, ": ", __VA_ARGS__)

// A shape as Python prints a tuple: (2, 3), (2,), ().
inline std::string py_shape(c10::IntArrayRef sizes) {
  std::string s = "(";
  for (size_t i = 0; i < sizes.size(); ++i) s += (i ? ", " : "") + std::to_string(sizes[i]);
  return s + (sizes.size() == 1 ? ",)" : ")");
}

// A dtype as Python prints it: torch.float32.
inline std::string py_dtype(c10::ScalarType t) {
  switch (t) {
    case c10::ScalarType::Float: return "torch.float32";
    case c10::ScalarType::Double: return "torch.float64";
    case c10::ScalarType::Half: return "torch.float16";
    case c10::ScalarType::Int: return "torch.int32";
    case c10::ScalarType::Long: return "torch.int64";
    case c10::ScalarType::Short: return "torch.int16";
    case c10::ScalarType::Char: return "torch.int8";
    case c10::ScalarType::Byte: return "torch.uint8";
    case c10::ScalarType::ComplexHalf: return "torch.complex32";
    case c10::ScalarType::ComplexFloat: return "torch.complex64";
    case c10::ScalarType::ComplexDouble: return "torch.complex128";
    default: {  // the others are torch.<lower-case ATen name>: bool, bfloat16, float8_e4m3fn, ...
      std::string name = c10::toString(t);
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      return "torch." + name;
    }
  }
}

// A float as Python's repr prints it: the shortest digits that round-trip, in fixed notation
// for exponents -4 .. 15 (0.0001, 2.0, 123.5) and scientific otherwise (1e-05, 1.5e+16).
inline std::string py_float(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buf[64];
  const auto end = std::to_chars(buf, buf + sizeof(buf), v, std::chars_format::scientific).ptr;
  const std::string sci(buf, end);  // [-]d[.ddd]e[+-]XX
  const size_t e = sci.find('e');
  const int exp = std::atoi(sci.c_str() + e + 1);
  const bool negative = sci[0] == '-';
  std::string digits;
  for (size_t i = negative; i < e; ++i)
    if (sci[i] != '.') digits += sci[i];
  std::string out = negative ? "-" : "";
  if (exp < -4 || exp >= 16) {
    char tail[16];
    std::snprintf(tail, sizeof(tail), "e%c%02d", exp < 0 ? '-' : '+', std::abs(exp));
    out += digits.substr(0, 1) + (digits.size() > 1 ? "." + digits.substr(1) : "") + tail;
  } else if (exp < 0) {
    out += "0." + std::string(-exp - 1, '0') + digits;
  } else if (digits.size() <= static_cast<size_t>(exp) + 1) {
    out += digits + std::string(exp + 1 - digits.size(), '0') + ".0";
  } else {
    out += digits.substr(0, exp + 1) + "." + digits.substr(exp + 1);
  }
  return out;
}

inline void check_same_device(const char* op, const char* name, const at::Tensor& t,
                              const char* first_name, const at::Tensor& first) {
  SMOOT_CHECK_VALUE(t.device() == first.device(), op, name, "expected a tensor on ", first_name,
                    " device ", first.device(), ", got one on ", t.device());
}

inline void check_rank(const char* op, const char* name, const at::Tensor& t, int64_t dim,
                       const char* layout) {
  SMOOT_CHECK_VALUE(t.dim() == dim, op, name, "expected a ", dim, "-D ", layout,
                    " tensor, got shape ", py_shape(t.sizes()));
}

inline void check_floating(const char* op, const char* name, const at::Tensor& t) {
  SMOOT_CHECK_TYPE(at::isFloatingType(t.scalar_type()), op, name,
                   "expected a floating-point dtype, got ", py_dtype(t.scalar_type()));
}

inline void check_index_dtype(const char* op, const char* name, const at::Tensor& t) {
  SMOOT_CHECK_TYPE(t.scalar_type() == at::kInt || t.scalar_type() == at::kLong, op, name,
                   "expected dtype torch.int32 or torch.int64, got ", py_dtype(t.scalar_type()));
}

inline Fill parse_fill(c10::string_view fill) {
  if (fill == "uniform") return kUniform;
  if (fill == "constant") return kConstant;
  SMOOT_CHECK_VALUE(fill == "mean", kMaskOp, "fill",
                    "expected one of 'uniform', 'constant', 'mean', got '", std::string(fill), "'");
  return kMean;
}

struct MaskDims {
  int64_t B, G, S, M;
  Fill fill;
};

// Everything about smoot::mask's arguments but the values of k, which the CPU kernel checks
// on the host (check_k_in_range) and the CUDA kernels on the device, without a sync.
inline MaskDims check_mask(const at::Tensor& x, const at::Tensor& score, const at::Tensor& k,
                           c10::string_view fill, int64_t offset) {
  check_same_device(kMaskOp, "score", score, "x's", x);
  check_same_device(kMaskOp, "k", k, "x's", x);
  check_rank(kMaskOp, "x", x, 3, "(B, G, M)");
  check_rank(kMaskOp, "score", score, 3, "(B, S, M)");
  check_rank(kMaskOp, "k", k, 1, "(B,)");
  check_floating(kMaskOp, "x", x);
  check_floating(kMaskOp, "score", score);
  check_index_dtype(kMaskOp, "k", k);
  const int64_t B = x.size(0), G = x.size(1), M = x.size(2), S = score.size(1);
  SMOOT_CHECK_VALUE(score.size(0) == B && score.size(2) == M && S >= 1, kMaskOp, "score",
                    "expected shape (", B, ", S, ", M, ") with S >= 1 to match x of shape ",
                    py_shape(x.sizes()), ", got ", py_shape(score.sizes()));
  SMOOT_CHECK_VALUE(k.size(0) == B, kMaskOp, "k", "expected shape (", B,
                    ",) to match x of shape ", py_shape(x.sizes()), ", got ", py_shape(k.sizes()));
  const Fill f = parse_fill(fill);
  SMOOT_CHECK_VALUE(offset >= 0, kMaskOp, "offset", "expected >= 0, got ", offset);
  return MaskDims{B, G, S, M, f};
}

// 0 <= k[b] <= M for the B values of a host int64 array.
inline void check_k_in_range(const int64_t* k, int64_t B, int64_t M) {
  for (int64_t b = 0; b < B; ++b)
    SMOOT_CHECK_VALUE(k[b] >= 0 && k[b] <= M, kMaskOp, "k", "expected 0 <= k[b] <= M = ", M,
                      ", got k[", b, "] = ", k[b]);
}

inline Rounding parse_rounding(c10::string_view rounding) {
  if (rounding == "floor") return kFloor;
  SMOOT_CHECK_VALUE(rounding == "trunc", kUpdateKOp, "rounding",
                    "expected one of 'floor', 'trunc', got '", std::string(rounding), "'");
  return kTrunc;
}

struct UpdateKDims {
  int64_t B, C;
  Rounding rounding;
};

inline UpdateKDims check_update_k(const at::Tensor& logits, const at::Tensor& logits_masked,
                                  const at::Tensor& k, double alpha, double mu, int64_t n,
                                  int64_t kmin, int64_t kmax, c10::string_view rounding) {
  check_same_device(kUpdateKOp, "logits_masked", logits_masked, "logits'", logits);
  check_same_device(kUpdateKOp, "k", k, "logits'", logits);
  check_rank(kUpdateKOp, "logits", logits, 2, "(B, C)");
  check_rank(kUpdateKOp, "k", k, 1, "(B,)");
  check_floating(kUpdateKOp, "logits", logits);
  check_floating(kUpdateKOp, "logits_masked", logits_masked);
  check_index_dtype(kUpdateKOp, "k", k);
  SMOOT_CHECK_VALUE(logits_masked.sizes() == logits.sizes(), kUpdateKOp, "logits_masked",
                    "expected logits' shape ", py_shape(logits.sizes()), ", got ",
                    py_shape(logits_masked.sizes()));
  const int64_t B = logits.size(0), C = logits.size(1);
  SMOOT_CHECK_VALUE(C >= 1, kUpdateKOp, "logits", "expected C >= 1 classes, got shape ",
                    py_shape(logits.sizes()));
  SMOOT_CHECK_VALUE(k.size(0) == B, kUpdateKOp, "k", "expected shape (", B,
                    ",) to match logits of shape ", py_shape(logits.sizes()), ", got ",
                    py_shape(k.sizes()));
  SMOOT_CHECK_VALUE(n >= 1, kUpdateKOp, "n", "expected >= 1, got ", n);
  SMOOT_CHECK_VALUE(kmin <= kmax, kUpdateKOp, "kmin", "expected kmin <= kmax, got kmin = ", kmin,
                    " > kmax = ", kmax);
  SMOOT_CHECK_VALUE(std::isfinite(alpha) && alpha >= 0.0 && alpha <= 1.0, kUpdateKOp, "alpha",
                    "expected a finite number in [0, 1], got ", py_float(alpha));
  SMOOT_CHECK_VALUE(std::isfinite(mu), kUpdateKOp, "mu", "expected a finite number, got ",
                    py_float(mu));
  return UpdateKDims{B, C, parse_rounding(rounding)};
}

}  // namespace smoot
