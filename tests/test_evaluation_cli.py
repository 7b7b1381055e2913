"""smoot-evaluate (smoot_ext.cli.evaluate) end to end on digits checkpoints from the trainer, its
files, its repeatability, and its errors (each naming its cause, none leaving a report behind)."""
import csv
import json
import os
import re
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pytest
import torch

from smoot_ext.cli import evaluate as evaluate_cli
from smoot_ext.evaluation import pipeline
from smoot_ext.evaluation.report import npz_key
from smoot_ext.evaluation.results import STATISTICS
from smoot_ext.evaluation.statistics import trapezoid_auc
from smoot_ext.models import build_model
from smoot_ext.training import GuidedConfig
from smoot_ext.training.checkpoint import FORMAT, save_checkpoint

FAST = ["--num-test", "60", "--batch-size", "32", "--ig-steps", "4", "--grid-images", "2", "--bootstrap", "200",
        "--no-progress"]


def _checkpoint(path, method, k=None, seed=0, dataset="digits", image_size=8):
    """A checkpoint in the trainer's format: an untrained CNN is enough for the pipeline."""
    torch.manual_seed(seed)
    model = build_model("cnn", 1, 10, image_size)
    meta = {"dataset": dataset, "model": "cnn", "method": method, "in_channels": 1, "num_classes": 10,
            "image_size": image_size, "num_units": image_size ** 2, "epoch": 1, "config": {},
            "k_stats": {"min": k[0], "median": k[1], "max": k[2], "mean": k[1]} if k else
            {"min": 0, "median": 0, "max": 0, "mean": 0}}
    save_checkpoint(str(path), {"format": FORMAT, "meta": meta, "model": model.state_dict()})
    return str(path)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Digits checkpoints written by the trainer itself: a baseline and SMOOT with two seeds."""
    from smoot_ext.training.loop import TrainConfig, train

    root = tmp_path_factory.mktemp("runs")
    paths = {}
    for method, seed in (("baseline", 0), ("smoot", 0), ("smoot", 1)):
        out = root / f"{method}-{seed}"
        train(TrainConfig(guided=GuidedConfig(method=method), dataset="digits", epochs=3, seed=seed, threads=1,
                          progress=False, out=str(out)))
        paths[(method, seed)] = str(out / "checkpoint.pt")
    return paths


def _run(argv):
    return evaluate_cli.main(argv)


def test_more_test_images_than_there_are_means_all_of_them(tmp_path, trained):
    """The default --num-test (1000) on digits (360 test images), as after the default training."""
    out = tmp_path / "eval"
    argv = ["--checkpoints", trained[("smoot", 0)], *FAST, "--num-test", "1000", "--methods", "saliency"]
    assert _run([*argv, "--orders", "morf", "lerf", "--out", str(out)]) == 0
    res = json.loads((out / "results.json").read_text())
    assert res["num_test"] == 360
    assert res["models"]["smoot"]["methods"]["saliency"]["accuracy"]["srg"]["lo"] > 0.0  # trained: faithful


def test_cli_writes_the_report(tmp_path, trained):
    out = tmp_path / "eval"
    smoot = f"{trained[('smoot', 0)]},{trained[('smoot', 1)]}"
    assert _run(["--checkpoints", trained[("baseline", 0)], f"SMOOT={smoot}", *FAST, "--out", str(out)]) == 0
    res = json.loads((out / "results.json").read_text())
    assert res["num_test"] == 60 and res["dataset"] == "digits" and list(res["models"]) == ["baseline", "SMOOT"]
    assert res["models"]["SMOOT"]["checkpoints"] == 2 and len(res["models"]["SMOOT"]["info"]) == 2
    for name, entry in res["models"].items():
        for m in ("saliency", "integrated_gradients"):
            for metric in ("accuracy", "probability"):
                block = entry["methods"][m][metric]
                for stat in ("auc_morf", "auc_lerf", "srg"):
                    s = block[stat]
                    assert s["lo"] <= s["mean"] <= s["hi"]
                    assert ("seeds" in s) == (name == "SMOOT")
                assert block["srg"]["mean"] == pytest.approx(block["auc_lerf"]["mean"] - block["auc_morf"]["mean"])
            acc = entry["methods"][m]["accuracy"]
            assert acc["curves"]["morf"]["mean"][0] == pytest.approx(entry["accuracy"]["mean"])  # nothing removed
            assert acc["curves"]["lerf"]["mean"][0] == pytest.approx(entry["accuracy"]["mean"])
    seeds = res["models"]["SMOOT"]["methods"]["saliency"]["accuracy"]["srg"]["seeds"]
    assert np.mean(seeds["values"]) == pytest.approx(seeds["mean"]) and seeds["lo"] < seeds["mean"] < seeds["hi"]
    diffs = {(d["method"], d["metric"], d["statistic"]): d for d in res["differences"]}
    d = diffs[("saliency", "accuracy", "srg")]
    assert (d["a"], d["b"]) == ("baseline", "SMOOT") and d["lo"] <= d["mean"] <= d["hi"]
    sm, base = (res["models"][n]["methods"]["saliency"]["accuracy"]["srg"]["mean"] for n in ("SMOOT", "baseline"))
    assert d["mean"] == pytest.approx(sm - base)

    md = (out / "report.md").read_text()
    assert "| Model | Saliency | AUC MoRF (lower = better) | AUC LeRF (higher = better) | SRG = LeRF - MoRF" in md
    assert "## Differences between models" in md and "## Across checkpoints (seeds)" in md
    assert "x from 0 to 0.9" in md  # the AUC convention
    row = next(line for line in md.splitlines() if line.startswith("| SMOOT | saliency |"))
    assert row.count("[") == len(STATISTICS)  # every statistic (all orders were scored), each with its interval
    for name in ("curves_saliency", "curves_integrated_gradients", "saliency_saliency",
                 "saliency_integrated_gradients"):
        png = out / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and mpimg.imread(png).ndim == 3
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging folder left


def test_the_forward_batch_is_taken_and_the_time_is_written_by_phase(tmp_path, trained, capsys):
    out = tmp_path / "eval"
    argv = ["--checkpoints", trained[("smoot", 0)], *FAST, "--methods", "saliency", "--forward-batch", "7"]
    assert _run([*argv, "--out", str(out)]) == 0
    res = json.loads((out / "results.json").read_text())
    assert res["config"]["forward_batch"] == 7
    timing = json.loads((out / "timing.json").read_text())
    phases = pipeline.phases(timing)
    assert list(phases) == ["loading", "clean forward", "attribution: saliency", "removal: masking",
                            "removal: forwards", "scoring: other", "bootstrap", "plots", "report"]
    assert all(v >= 0 for v in phases.values()) and timing["plots_s"] > 0 and timing["report_s"] > 0
    # The scoring's parts add up to the scoring: "scoring: other" is what is left, never negative.
    assert sum(phases[k] for k in list(phases)[1:6]) == pytest.approx(timing["scoring_s"])
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("time by phase: "))
    assert len(re.findall(r"\d s(,|$)", line)) == len(phases)


def test_per_image_files_reproduce_the_summary(tmp_path, trained):
    """Any statistic can be recomputed from per_image.npz; per_image.csv holds the per-image AUCs."""
    out = tmp_path / "eval"
    assert _run(["--checkpoints", f"smoot={trained[('smoot', 0)]}", *FAST, "--out", str(out)]) == 0
    res = json.loads((out / "results.json").read_text())
    z = np.load(out / "per_image.npz")
    levels = z["levels"]
    assert z["labels"].shape == (60,) and len(set(z["index"].tolist())) == 60
    morf = trapezoid_auc(levels, 100.0 * z[npz_key("smoot", 0, "saliency", "morf", "correct")])
    lerf = trapezoid_auc(levels, 100.0 * z[npz_key("smoot", 0, "saliency", "lerf", "probability")])
    block = res["models"]["smoot"]["methods"]["saliency"]
    assert morf.mean() == pytest.approx(block["accuracy"]["auc_morf"]["mean"])
    assert lerf.mean() == pytest.approx(block["probability"]["auc_lerf"]["mean"])
    with (out / "per_image.csv").open() as f:
        rows = [r for r in csv.DictReader(f) if r["method"] == "saliency"]
    assert len(rows) == 60
    np.testing.assert_allclose([float(r["auc_morf_accuracy"]) for r in rows], morf, atol=1e-3)


def test_a_rerun_gives_the_same_numbers(tmp_path, trained):
    argv = ["--checkpoints", trained[("smoot", 0)], *FAST, "--orders", "morf", "random", "--methods", "saliency"]
    for name in ("a", "b"):
        assert _run([*argv, "--out", str(tmp_path / name)]) == 0
    a, b = (json.loads((tmp_path / n / "results.json").read_text()) for n in ("a", "b"))
    assert a["models"] == b["models"] and a["differences"] == b["differences"]
    assert a["models"]["smoot"]["methods"]["random"]["accuracy"]["auc_random"]["hi"] > 0.0


def test_road_fill_runs_end_to_end(tmp_path, trained):
    out = tmp_path / "eval"
    assert _run(["--checkpoints", trained[("smoot", 0)], *FAST, "--methods", "saliency", "--fill", "road",
                 "--levels", "0", "0.25", "0.5", "--out", str(out)]) == 0
    res = json.loads((out / "results.json").read_text())
    assert res["levels"] == [0.0, 0.25, 0.5] and res["config"]["fill"] == "road"
    assert "ROAD's noisy linear imputation" in (out / "report.md").read_text()


def test_the_library_takes_the_config_whole_and_leaves_it_as_it_was(tmp_path):
    config = pipeline.EvalConfig(methods=["saliency"], orders=["morf"], num_test=20, batch_size=8, grid_images=1,
                                 bootstrap=20, progress=False)
    before = repr(config)
    res = pipeline.run_evaluation([_checkpoint(tmp_path / "b.pt", "baseline")], config, out=str(tmp_path / "e"))
    assert repr(config) == before  # the data's background went into the run's own copy
    assert res["num_test"] == 20 and res["config"]["batch_size"] == 8
    assert res["config"]["background"] != list(config.background)


# --- bad input: a clear error naming the cause, and no report ---------------------------------------

def _corrupt(tmp_path):
    path = tmp_path / "corrupt.pt"
    good = Path(_checkpoint(tmp_path / "good.pt", "baseline")).read_bytes()
    path.write_bytes(good[: len(good) // 2])  # a checkpoint cut short
    return str(path)


def _garbage(tmp_path):
    path = tmp_path / "garbage.pt"
    path.write_bytes(b"not a checkpoint at all")
    return str(path)


def _foreign(tmp_path):
    path = tmp_path / "x.pt"
    torch.save({"weights": 1}, path)
    return str(path)


def _wrong_shape(tmp_path):
    """Says digits, but its model takes 16x16 images."""
    return _checkpoint(tmp_path / "wide.pt", "baseline", image_size=16)


@pytest.mark.parametrize("make, extra, message", [
    (lambda t: "/nonexistent/ckpt.pt", [], r"--checkpoints: checkpoint file '/nonexistent/ckpt.pt' does not exist"),
    (_corrupt, [], r"--checkpoints: cannot read checkpoint '.*corrupt.pt' \(corrupt"),
    (_garbage, [], r"--checkpoints: cannot read checkpoint '.*garbage.pt'"),
    (_foreign, [], r"--checkpoints: '.*x.pt' is not a smoot_ext checkpoint"),
    (_wrong_shape, [], r"--checkpoints: '.*wide.pt' takes 1x16x16 inputs .* digits has 1x8x8 images"),
    (None, ["--dataset", "synthetic"], r"--checkpoints: '.*b.pt' was trained on 'digits', but the test set is "
                                       r"'synthetic'"),
    (None, ["--orders", "morf", "sideways"], r"--orders: unknown order 'sideways'"),
    (None, ["--fill", "zeros"], r"--fill: unknown fill 'zeros'; choose from uniform, constant, mean, road"),
    (None, ["--methods", "gradcam"], r"--methods: unknown saliency method 'gradcam'"),
    (None, ["--levels", "0", "0.5", "1"], r"--levels: every level must lie in \[0, 1\).*\[1.0\]"),
    (None, ["--levels", "-0.1", "0.5"], r"--levels: every level must lie in \[0, 1\)"),
    (None, ["--levels", "0", "50", "90"], r"--levels: every level must lie in \[0, 1\)"),
    (None, ["--percentages", "0", "50", "100"], r"--percentages: every value must lie in \[0, 100\)"),
    (None, ["--num-test", "-3"], r"--num-test"),
    (None, ["--ig-steps", "0"], r"--ig-steps"),
    (None, ["--grid-images", "0"], r"--grid-images"),
    (None, ["--bootstrap", "0"], r"--bootstrap"),
    (None, ["--forward-batch", "0"], r"--forward-batch: expected an integer >= 1, got 0"),
    (None, ["--fill", "constant", "--fill-value", "1", "2"],
     r"--fill-value: expected 1 value or one per channel \(1\)"),
])
def test_bad_input_is_named_and_writes_nothing(tmp_path, capsys, make, extra, message):
    ckpt = make(tmp_path) if make else _checkpoint(tmp_path / "b.pt", "baseline")
    out = tmp_path / "eval"
    with pytest.raises(SystemExit) as e:
        _run(["--checkpoints", ckpt, *FAST, *extra, "--out", str(out)])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert re.search(message, err), err
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".eval")]


def test_checkpoints_of_different_datasets_are_refused(tmp_path, capsys):
    a = _checkpoint(tmp_path / "a.pt", "baseline")
    b = _checkpoint(tmp_path / "b.pt", "smoot", dataset="synthetic", image_size=16)
    with pytest.raises(SystemExit):
        _run(["--checkpoints", a, b, *FAST, "--out", str(tmp_path / "eval")])
    assert "has dataset 'synthetic', but" in capsys.readouterr().err


def test_an_out_folder_with_other_files_is_not_replaced(tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(SystemExit):
        _run(["--checkpoints", _checkpoint(tmp_path / "b.pt", "baseline"), *FAST, "--out", str(out)])
    assert "--out: folder" in capsys.readouterr().err
    assert (out / "notes.txt").read_text() == "keep me" and len(list(out.iterdir())) == 1


def test_a_failure_while_writing_leaves_the_previous_report(tmp_path, monkeypatch):
    ckpt = _checkpoint(tmp_path / "b.pt", "baseline")
    out = tmp_path / "eval"
    argv = ["--checkpoints", ckpt, *FAST, "--methods", "saliency", "--out", str(out)]
    assert _run(argv) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def half_then_fail(results, per_image, out_dir, figures=()):
        (Path(out_dir) / "results.json").write_text("{half")
        raise OSError("disk full")

    monkeypatch.setattr(pipeline, "write_report", half_then_fail)
    with pytest.raises(OSError, match="disk full"):
        _run([*argv, "--seed", "1"])
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(os.listdir(tmp_path)) == ["b.pt", "eval"]  # the staging folder is gone too
