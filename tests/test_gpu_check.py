"""scripts/gpu_check.sh: without a GPU it stops at once with exit 2, and every stage it lists
refers to files that exist."""
import glob
import re
import subprocess
from pathlib import Path

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
            "mnist_smoot_epoch"} <= set(names)
    assert sum(int(limit) for _, limit, _ in stages) <= 8 * 60
    for name, _, command in stages:
        paths = re.findall(r"\b(?:tests|benchmarks|scripts|python)/[\w*./-]+\.(?:py|sh)", command)
        for path in paths:
            assert glob.glob(str(ROOT / path)), f"stage {name}: {path} does not exist"
    # The shapes the issue asks the CUDA benchmark for.
    bench = dict((n, c) for n, _, c in stages)["mask_throughput"]
    assert all(s in bench for s in ("256,1,784", "256,3,1024", "64,3,50176", "1,3,150528"))
