"""Every example of README.md's "Use it in your trainer" runs as it stands, each in a fresh
process from a file of its own, and trains SMOOT (k leaves its initial value)."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
SECTION = "## Use it in your trainer"


def examples() -> list[str]:
    text = README.read_text()
    assert SECTION in text, f"README.md has no section {SECTION!r}"
    section = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def test_the_section_holds_a_plain_loop_lightning_and_hf_example():
    codes = examples()
    assert len(codes) == 3
    assert "for x, y, index in DataLoader" in codes[0]
    assert "SaliencyGuidedCallback" in codes[1] and "SaliencyGuidedTrainer" in codes[2]


@pytest.mark.parametrize("number", range(3), ids=["plain_loop", "lightning", "hf_trainer"])
def test_example_runs_as_it_stands_and_moves_k(tmp_path, number):
    script = tmp_path / "example.py"
    script.write_text(examples()[number])
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (line,) = re.findall(r"^k min/median/max: (\S+) (\S+) (\S+)$", proc.stdout, flags=re.M)
    k_min, k_median, k_max = map(float, line)
    init = {0: 32, 1: 32, 2: 128}[number]  # half of the 8x8 or 16x16 pixels
    assert k_min <= k_median <= k_max and (k_min, k_max) != (init, init)
