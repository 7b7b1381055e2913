"""scripts/gpu_check.sh: without a GPU it stops at once with exit 2, every stage it lists refers
to files that exist, the stages come in first-contact order and each test stage selects tests."""
import glob
import re
import shlex
import subprocess
import sys
from pathlib import Path

from _pytest.mark.expression import Expression

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "gpu_check.sh"


def test_exits_2_at_once_without_a_gpu(tmp_path):
    fake = tmp_path / "nvidia-smi"  # an nvidia-smi that finds no GPU, whatever this machine has
    fake.write_text("#!/bin/sh\necho 'No devices were found' >&2\nexit 6\n")
    fake.chmod(0o755)
    proc = subprocess.run(["bash", str(SCRIPT), str(tmp_path / "out")], capture_output=True, text=True,
                          timeout=30, env={"PATH": f"{tmp_path}:/usr/bin:/bin"})
    assert proc.returncode == 2
    assert "no NVIDIA GPU" in proc.stderr
    assert not (tmp_path / "out").exists()


def test_every_stage_refers_to_existing_files():
    proc = subprocess.run(["bash", str(SCRIPT), "--list"], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0
    stages = [line.split("|", 2) for line in proc.stdout.splitlines()]
    names = [name for name, _, _ in stages]
    assert {"build", "op_tests", "memcheck", "racecheck", "mask_throughput", "train_step",
            "mnist_smoot_epoch", "offsets_past_2_31"} <= set(names)
    # First contact: the quick checks most likely to fail on a first GPU come right after the
    # build, before the whole suite, the benchmark and the slow sanitizers.
    order = [names.index(n) for n in ("build", "update_k_first", "mask_float64_adversarial",
                                      "triton_select_paths", "op_tests", "mask_throughput", "memcheck")]
    assert order == sorted(order)
    assert sum(int(limit) for _, limit, _ in stages) <= 8 * 60
    for name, _, command in stages:
        paths = re.findall(r"\b(?:tests|benchmarks|scripts|python)/[\w*./-]+\.(?:py|sh)", command)
        for path in paths:
            assert glob.glob(str(ROOT / path)), f"stage {name}: {path} does not exist"
    # The shapes the issue asks the CUDA benchmark for.
    bench = dict((n, c) for n, _, c in stages)["mask_throughput"]
    assert all(s in bench for s in ("256,1,784", "256,3,1024", "64,3,50176", "1,3,150528"))


def test_each_test_stage_selects_tests():
    # A stage whose -k matches nothing would only report "no tests ran": every stage's
    # expression must select tests, and the Triton stage Triton's.
    proc = subprocess.run(["bash", str(SCRIPT), "--list"], capture_output=True, text=True, timeout=30)
    selections = {}
    for line in proc.stdout.splitlines():
        name, _, command = line.split("|", 2)
        words = shlex.split(command)
        if "pytest" in words and "-k" in words:
            files = [w for w in words if w.startswith("tests/")]
            selections[name] = (files, words[words.index("-k") + 1])
    assert {"update_k_first", "mask_float64_adversarial", "triton_select_paths", "offsets_past_2_31"} <= set(selections)
    files = sorted({f for fs, _ in selections.values() for f in fs})
    collected = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--collect-only",
                                *files], capture_output=True, text=True, timeout=120, cwd=ROOT)
    ids = [line for line in collected.stdout.splitlines() if "::" in line]
    assert ids, collected.stdout[-2000:]
    for name, (fs, expr) in selections.items():
        matches = Expression.compile(expr)
        chosen = [i for i in ids if i.split("::")[0] in fs and matches.evaluate(lambda s, i=i: s.lower() in i.lower())]
        assert chosen, f"stage {name}: -k {expr!r} selects no test"
        if name == "triton_select_paths":
            assert all("triton" in i for i in chosen)
