"""The CPU benchmarks run end to end on tiny inputs and report consistent numbers (each in its own
process: they set glibc's allocator for the whole process). Timings themselves are not checked."""
import csv
import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from smoot_ext import allocator
from smoot_ext.evaluation.perturbation import default_forward_batch

ROOT = Path(__file__).resolve().parents[1]


def _run(script: str, *args: str, tmp_path) -> None:
    env = {**os.environ, "SMOOT_DATA_DIR": str(tmp_path / "no-data")}  # random / built-in data
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), *args], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]


def _benchmark_module(name: str):
    sys.path.insert(0, str(ROOT / "benchmarks"))  # the scripts import their siblings as top-level modules
    try:
        return importlib.import_module(name)
    finally:
        sys.path.pop(0)


def test_write_outputs_prints_writes_and_records_the_same_run(tmp_path, capsys):
    record = _benchmark_module("record")
    result, rows = {"rows": [{"a": 1, "b": "x"}]}, [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}]
    path = record.write_outputs("demo", result, rows, str(tmp_path / "r.json"), str(tmp_path))
    assert json.loads(capsys.readouterr().out) == json.loads((tmp_path / "r.json").read_text()) == result
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        got = list(reader)
    env = list(record.environment())
    assert path == str(tmp_path / "demo.csv") and reader.fieldnames == env + ["a", "b"]
    assert [(r["a"], r["b"]) for r in got] == [("1", "x"), ("2", "y")]
    # show=False prints nothing; --results '' records nothing.
    assert record.write_outputs("none", result, rows, None, "", show=False) == ""
    assert capsys.readouterr().out == ""


def test_train_step_times_every_entry_and_records_them(tmp_path):
    train_step = _benchmark_module("train_step")
    ENTRIES, FLOOR_PARTS = train_step.ENTRIES, train_step.FLOOR_PARTS
    _run("train_step.py", "--devices", "cpu", "--batch-sizes", "8", "--rounds", "1", "--warmup", "0",
         "--threads", "1", "--json", str(tmp_path / "ts.json"), "--results", str(tmp_path),
         tmp_path=tmp_path)
    run = json.loads((tmp_path / "ts.json").read_text())
    (table,) = run["tables"]
    entries = table["entries"]
    parts = {f"floor.{p}" for p in FLOOR_PARTS}
    assert set(entries) == set(ENTRIES) | parts
    assert entries["baseline"]["vs_baseline"] == 1.0 and entries["peer"]["vs_peer"] == 1.0
    assert all(e["median_ms"] > 0 for e in entries.values())
    # One round: the floor's time is the sum of its parts.
    total = sum(entries[p]["median_ms"] for p in parts)
    assert abs(entries["floor"]["median_ms"] - total) <= 1e-6 * total
    with open(tmp_path / "train_step.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["entry"] for r in rows] == list(entries) and all(r["commit"] not in ("", "unknown") for r in rows)


def test_epoch_overhead_splits_an_epoch_into_its_parts(tmp_path):
    _run("epoch_overhead.py", "--dataset", "digits", "--subset", "96", "--test-subset", "32",
         "--batch-size", "32", "--repeats", "1", "--methods", "sgt,smoot", "--threads", "1",
         "--json", str(tmp_path / "eo.json"), "--results", str(tmp_path), tmp_path=tmp_path)
    result = json.loads((tmp_path / "eo.json").read_text())
    assert result["steps"] == 3 and set(result["methods"]) == {"sgt", "smoot"}
    for got in result["methods"].values():
        (rep,) = got["repeats"]
        assert set(rep["parts"]) >= {"steps", "loop", "test", "checkpoint"}
        # The epoch holds its steps and more; the bare loop ran as many steps.
        assert rep["epoch"] >= rep["parts"]["steps"][0] > 0 and rep["overhead"] >= 1.0
        assert rep["alone"][0] > 0
    with open(tmp_path / "epoch_overhead.csv", newline="") as f:
        assert [r["method"] for r in csv.DictReader(f)] == ["sgt", "smoot"]


def test_mask_share_gives_each_workloads_share(tmp_path):
    _run("mask_share.py", "--devices", "cpu", "--batch-size", "8", "--rounds", "2", "--warmup", "0",
         "--threads", "1", "--json", str(tmp_path / "ms.json"), "--results", str(tmp_path), tmp_path=tmp_path)
    rows = json.loads((tmp_path / "ms.json").read_text())["rows"]
    assert [(r["workload"], r["method"]) for r in rows] == [
        (w, m) for w in ("cnn", "lstm", "lstm-feature", "bilstm-text") for m in ("sgt", "smoot")]
    for r in rows:
        assert r["step_ms"] > 0 and r["mask_ms"] > 0
        assert r["share"] == r["mask_ms"] / r["step_ms"]
        assert (r["update_k_ms"] == "") == (r["method"] == "sgt")
    with open(tmp_path / "mask_share.csv", newline="") as f:
        assert len(list(csv.DictReader(f))) == len(rows)


@pytest.mark.parametrize("malloc", [[], ["--default-malloc"]])
def test_forward_batch_times_each_batch_and_ours_at_the_default(malloc, tmp_path, monkeypatch):
    _run("forward_batch.py", "--datasets", "digits", "--threads", "1", "--repeats", "2", "--batches", "64", *malloc,
         "--json", str(tmp_path / "fb.json"), "--results", str(tmp_path), tmp_path=tmp_path)
    rows = json.loads((tmp_path / "fb.json").read_text())["rows"]
    kept = {r["freed_memory_kept"] for r in rows}
    assert len(kept) == 1
    if malloc:
        assert kept == {False}
    monkeypatch.setattr(allocator, "_kept", kept.pop())  # the default batch is the run's
    default = default_forward_batch(torch.zeros(1, 1, 8, 8))  # digits
    assert sorted((r["loop"], r["batch"]) for r in rows) == sorted(
        [("floor", 64), ("floor", default), ("removal_curves", default)])
    floor = [r for r in rows if r["loop"] == "floor"]
    # Each is relative to the fastest floor batch: that one is exactly 1, none below it.
    assert min(r["over_fastest_min"] for r in floor) == 1.0 and min(r["over_fastest_median"] for r in floor) == 1.0
    assert all(r["over_fastest_min"] >= 1.0 for r in floor)
    for r in rows:
        assert r["default_batch"] == (r["batch"] == default) and r["calls"] >= 1 and r["min_s"] <= r["median_s"]
    with open(tmp_path / "forward_batch.csv", newline="") as f:
        assert len(list(csv.DictReader(f))) == len(rows)
