"""benchmarks/lightning_overhead.py runs end to end on tiny digits: both epochs did the same work
(the same k), the ratios are the medians of the repeats', and a row is recorded."""
import csv
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_lightning_overhead_times_the_same_work_and_records_a_row(tmp_path):
    env = {**os.environ, "SMOOT_DATA_DIR": str(tmp_path / "no-data")}
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "lightning_overhead.py"), "--dataset", "digits",
                           "--subset", "64", "--test-subset", "32", "--batch-size", "32", "--repeats", "2",
                           "--threads", "1", "--note", "test", "--json", str(tmp_path / "lo.json"),
                           "--results", str(tmp_path)], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((tmp_path / "lo.json").read_text())
    reps = result["per_repeat"]
    assert len(reps) == 2 and result["same_k"] and all(rep["same_k"] for rep in reps)
    for rep in reps:
        for who in ("smoot_train", "lightning"):
            assert 0 < rep[who]["epoch_s"] <= rep[who]["call_s"] and rep[who]["epoch_cpu_s"] > 0
        assert rep["epoch_ratio"] == rep["lightning"]["epoch_s"] / rep["smoot_train"]["epoch_s"]
    assert result["epoch_ratio"] == statistics.median(rep["epoch_ratio"] for rep in reps)
    with open(tmp_path / "lightning_overhead.csv", newline="") as f:
        (row,) = csv.DictReader(f)
    assert row["note"] == "test" and row["dataset"] == "digits" and float(row["epoch_ratio"]) == result["epoch_ratio"]
    assert row["commit"] and row["lightning"]
