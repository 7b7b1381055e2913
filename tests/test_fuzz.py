"""Differential fuzzing in CI (issue 34): scripts/fuzz.py's cases for a fixed list of seeds, on
every backend that runs here, compared with smoot_ext.reference (docs/SPEC.md: masks, kept
values and, for the C++ CPU mask, every output bit; fills, delta and k_new within SPEC's
tolerances; the same error, word for word, where SPEC calls the arguments an error).

"full" cases (shapes to past 2**16) run on the native backends: both CPU row loops, and CUDA
and Triton on a GPU; "small" cases on Triton's interpreter, which is slow. The long run is
``python scripts/fuzz.py --minutes 10``; a failure here prints the line that replays its case.
The findings the fuzzer has made are KNOWN to it; each is reproduced below by a strict xfail
test, which fails once the finding is fixed (then drop it from fuzz.KNOWN and from here).
"""
import importlib.util
import json
import math
import os
import sys
from pathlib import Path

import pytest
import torch
from cases import why_missing

import smoot_ext
from smoot_ext import reference

_spec = importlib.util.spec_from_file_location("smoot_fuzz", Path(__file__).parents[1] / "scripts" / "fuzz.py")
fuzz = sys.modules.setdefault("smoot_fuzz", importlib.util.module_from_spec(_spec))
_spec.loader.exec_module(fuzz)

pytestmark = pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning",
                                        "ignore:overflow encountered:RuntimeWarning",
                                        "ignore:All-NaN slice encountered:RuntimeWarning")
BACKENDS = fuzz.backends_for("all")
GROUPS = {scale: [b for b in BACKENDS if fuzz.scale_of(b) == scale] for scale in fuzz.SCALES}
# The budget: about 15 s of one core for the full cases (each on both CPU row loops), 20 s for
# the interpreter's small ones; with 2 pytest-xdist workers the file takes about half a minute.
SEEDS = {"full": range(0, 1000), "small": range(0, 120)}
# What the CI seeds must draw at least once between them: every dimension of issue 34.
COVERAGE = [
    "M>2**16", "M>1000", "shape:empty_batch", "shape:no_units", "shape:wide_unit", "shape:tall_batch",
    *(f"x:{t}" for t in ("float16", "bfloat16", "float32", "float64")),
    *(f"x:{t}" for t in ("sliced", "transposed", "offset", "expanded", "channels_last")),
    "score:expanded", "k:expanded", "k:sliced", "logits:expanded", "logits:transposed",
    *(f"k:{t}" for t in ("int32", "int64", "zero", "all", "random", "edges", "same", "int")),
    *(f"score:{t}" for t in ("levels", "equal", "zeros", "subnormal", "magnitudes", "last_bits", "top")),
    *(f"score:{t}" for t in ("nan", "inf", "-inf", "zero", "-zero", "subnormal", "max")),
    *(f"fill:{f}" for f in ("uniform", "constant", "mean")), "abs:True", "abs:False", "triton:split",
    "unit:pixel", "unit:feature", "public:nchw", "public:btd", "public:flat", "public:lengths",
    "random:seed", "random:seed_offset", "random:generator", "update_k/op", "update_k/public",
    "logits:specials", "logits:ties", "kbounds:wide", "rounding:floor", "rounding:trunc",
    "invalid:k_negative", "invalid:k_wraps_int32", "invalid:offset", "invalid:k_int_above_M", "invalid:alpha",
    "invalid:no_classes",
]


@pytest.fixture(autouse=True)
def one_thread():
    """Cases, the reference and the comparisons on one thread (fuzz.KERNEL_THREADS: the backends')."""
    with fuzz._threads(1):
        yield


def _check(case, backends):
    if not backends:
        pytest.skip(f"no backend here runs {case.scale} cases")
    findings = [o for o in fuzz.run_case(case, backends) if o.status == "finding"]
    assert not findings, "\n".join(f"[{o.backend}] {o.what}\n  {case.describe()}\n  reproduce: "
                                   f"{case.reproducer(o.backend)}" for o in findings)


@pytest.mark.parametrize("seed", SEEDS["full"])
def test_full_case(seed):
    _check(fuzz.make_case(seed, "full"), GROUPS["full"])


@pytest.mark.parametrize("seed", SEEDS["small"])
def test_small_case(seed):
    _check(fuzz.make_case(seed, "small"), GROUPS["small"])


def test_the_seeds_cover_every_dimension():
    tags = {t for scale, seeds in SEEDS.items() for s in seeds for t in fuzz.make_case(s, scale).tags}
    missing = sorted(set(COVERAGE) - tags)
    assert not missing, f"no CI seed draws {missing}"


def test_cases_are_functions_of_their_seed():
    for seed in (3, 17, 123456789):
        a, b = fuzz.make_case(seed, "full"), fuzz.make_case(seed, "full")
        assert a.describe() == b.describe() and a.kwargs.keys() == b.kwargs.keys()
        assert all(fuzz._unchanged(s, t) for s, t in zip(a.args, b.args))
    assert fuzz.make_case(3, "small").describe() != fuzz.make_case(3, "full").describe()


@pytest.mark.skipif(why_missing("cpu", "mask") is not None, reason="the C++ CPU kernel is not built")
@pytest.mark.parametrize("wrong", ["mask", "kept", "fill_2ulp", "fill_1ulp", "error_words", "no_error", "writes"])
def test_a_wrong_result_is_a_finding(monkeypatch, wrong):
    """The checker itself: a backend that does anything but what the reference does is caught."""
    g = torch.Generator().manual_seed(0)
    x, score, k = torch.randn(2, 3, 50, generator=g), torch.randn(2, 1, 50, generator=g), torch.tensor([20, 30])
    case = fuzz.Case(0, "full", "mask", "op", (x, score, k), dict(abs=True, fill="uniform", value=0.0, seed=1,
                                                                  offset=0))
    if wrong.endswith("error"):
        case.kwargs["fill"], case.invalid = "median", "fill"
    call = fuzz._call

    def wrong_call(case, backend):
        if wrong == "error_words":
            raise ValueError("smoot::mask: fill: something else")
        if wrong == "no_error":
            return (x.clone(), torch.zeros(2, 50, dtype=torch.bool)), None
        (out, masked), state = call(case, backend)
        bits = out.view(torch.int32)
        if wrong == "mask":
            masked[0, 0] = ~masked[0, 0]
        elif wrong == "kept":
            bits[0, 0][~masked[0]] ^= 1
        elif wrong == "writes":
            x[1, 2, 3] += 1
        else:
            bits[0, 0][masked[0]] += 2 if wrong == "fill_2ulp" else 1
        return (out, masked), state

    monkeypatch.setattr(fuzz, "_call", wrong_call)
    [outcome] = fuzz.run_case(case, [b for b in BACKENDS if b.name == "cpu"][:1])
    assert outcome.status == "finding", outcome
    assert outcome.what.startswith("not the reference's bits") == (wrong == "fill_1ulp")


def test_the_long_run_script(tmp_path, capsys):
    assert fuzz.main(["--cases", "4", "--backends", "cpu", "--seed", "7", "--json", str(tmp_path / "s.json")]) == 0
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["cases_generated"] == {"full": 4} and summary["findings"] == []
    assert set(summary["cases_per_backend"]) <= {"cpu-baseline", "cpu-auto", "reference"}
    assert fuzz.main(["--case", "9", "--scale", "full", "--backends", "cpu-auto", "-v"]) == 0
    assert "case 9 (full)" in capsys.readouterr().out


# ---------------------------------------------------------------- the findings, as small reproducers

needs_cpu = pytest.mark.skipif(why_missing("cpu", "mask") is not None, reason="the C++ CPU kernel is not built")
needs_triton = pytest.mark.skipif(why_missing("triton", "mask") is not None, reason="Triton cannot run here")


def known(name: str, raises=AssertionError, where: bool = True):
    """xfail, strictly, as KNOWN finding ``name`` of scripts/fuzz.py."""
    return pytest.mark.xfail(where, strict=True, raises=raises, reason=f"KNOWN {name}: {fuzz.KNOWN[name]}")


@needs_cpu
@known("negative_zero_value")
def test_known_constant_fill_keeps_the_sign_of_zero():
    x, score, k = torch.ones(1, 1, 3), torch.ones(1, 1, 3), torch.tensor([2])
    out = torch.ops.smoot.mask(x, score, k, fill="constant", value=-0.0)[0]
    ref = reference.mask(x, score, k, fill="constant", value=-0.0)[0]
    assert math.copysign(1.0, ref[0, 0, 0]) < 0
    assert torch.equal(out.view(torch.int32), ref.view(torch.int32))


@known("value_beyond_dtype", raises=RuntimeError)
def test_known_reference_fills_a_value_beyond_the_dtype():
    x = torch.ones(1, 1, 3, dtype=torch.float16)
    out = reference.mask(x, torch.ones(1, 1, 3), torch.tensor([1]), fill="constant", value=1e30)[0]
    assert out[0, 0, 0] == math.inf


@needs_triton
@pytest.mark.parametrize("layout", ["strided", "expanded"])
def test_triton_update_k_reads_a_strided_or_expanded_k(layout):
    """Found by the fuzzer: the Triton update_k read k as if contiguous (fixed in its host code)."""
    logits = torch.zeros(3, 4, device=fuzz.cases.DEVICES["triton"])
    base = torch.tensor([10, 99, 20, 99, 30, 99], device=logits.device)
    k = base[::2] if layout == "strided" else base[:1].expand(3)
    kw = dict(alpha=0.5, mu=10.0, n=2, kmin=0, kmax=100)
    k_new, _ = torch.ops.smoot.update_k_triton(logits, logits, k, **kw)
    assert k_new.tolist() == reference.update_k(logits.cpu(), logits.cpu(), k.cpu(), **kw)[0].tolist()
    assert k_new.tolist() == ([10, 20, 30] if layout == "strided" else [10, 10, 10])


def _mean_fill_of_the_last_unit(row: list, dtype, isa: str | None = None, monkeypatch=None) -> torch.Tensor:
    """The mean fill of the last unit of a one-row x, the only one masked; the reference's if not isa."""
    x = torch.tensor(row, dtype=dtype).view(1, 1, -1)
    score = torch.ones(1, 1, x.shape[2])
    score[..., -1] = 0.0
    args = (x, score, torch.tensor([1]))
    if isa is None:
        return reference.mask(*args, fill="mean")[0][0, 0, -1]
    monkeypatch.setenv("SMOOT_CPU_ISA", isa)
    return torch.ops.smoot.mask(*args, fill="mean")[0][0, 0, -1]


@needs_cpu
@known("mean_summation_order")
def test_known_mean_of_cancelling_values_is_the_references(monkeypatch):
    big = torch.finfo(torch.float32).max
    row = [big, -big] + [1.0] * 6 + [0.0]  # the exact mean of the kept units: 0.75
    ref = _mean_fill_of_the_last_unit(row, torch.float32)
    fills = [_mean_fill_of_the_last_unit(row, torch.float32, isa, monkeypatch) for isa in ("baseline", "auto")]
    assert all(fuzz._same_bits(f, ref) for f in fills), (ref, fills)


@needs_cpu
@pytest.mark.skipif(why_missing("cpu", "mask") is None and smoot_ext._C.cpu_isa() != "avx2",
                    reason="one CPU row loop here: no AVX2")
@known("mean_summation_order")
def test_known_float64_mean_overflow_is_the_same_on_every_row_loop(monkeypatch):
    big = torch.finfo(torch.float64).max
    row = [-math.inf] + [big] * 40 + [0.0]  # the exact mean of the kept units: -inf
    fills = [_mean_fill_of_the_last_unit(row, torch.float64, isa, monkeypatch) for isa in ("baseline", "auto")]
    assert fuzz._same_bits(fills[0], fills[1]), fills


@needs_triton
@known("interpreter_bf16_subnormal", where=os.environ.get("TRITON_INTERPRET") == "1")
def test_known_bfloat16_subnormal_scores_on_triton():
    score = torch.tensor([3e-39, 1e-39, 2e-39, 0.0, 5e-39, 1.0], dtype=torch.bfloat16).view(1, 1, -1)
    x, k = torch.arange(6.0).view(1, 1, -1), torch.tensor([2])
    dev = fuzz.cases.DEVICES["triton"]
    masked = torch.ops.smoot.mask_triton(x.to(dev), score.to(dev), k.to(dev))[1].cpu()
    assert torch.equal(masked, reference.mask(x, score, k)[1])
