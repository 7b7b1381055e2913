"""smoot-evaluate (smoot_ext.cli.evaluate) end to end on a tiny digits checkpoint, and its errors."""
import json
from pathlib import Path

import matplotlib.image as mpimg
import pytest
import torch

from smoot_ext.cli import evaluate as evaluate_cli
from smoot_ext.models import build_model
from smoot_ext.training.checkpoint import FORMAT, save_checkpoint

ROOT = Path(__file__).resolve().parents[1]


def _cli():
    return evaluate_cli


def _checkpoint(path, method, k=None, seed=0):
    """A checkpoint in the trainer's format: an untrained digits CNN is enough for the pipeline."""
    torch.manual_seed(seed)
    model = build_model("cnn", 1, 10, 8)
    meta = {"dataset": "digits", "model": "cnn", "method": method, "in_channels": 1, "num_classes": 10,
            "image_size": 8, "num_units": 64, "epoch": 1, "config": {},
            "k_stats": {"min": k[0], "median": k[1], "max": k[2], "mean": k[1]} if k else
            {"min": 0, "median": 0, "max": 0, "mean": 0}}
    save_checkpoint(str(path), {"format": FORMAT, "meta": meta, "model": model.state_dict()})
    return str(path)


def test_cli_writes_the_report(tmp_path):
    base = _checkpoint(tmp_path / "b.pt", "baseline")
    smoot = _checkpoint(tmp_path / "s.pt", "smoot", k=(13, 30, 51), seed=1)
    out = tmp_path / "eval"
    rc = _cli().main(["--checkpoints", base, f"SMOOT={smoot}", "--methods", "saliency", "integrated_gradients",
                      "--num-test", "40", "--batch-size", "16", "--ig-steps", "4", "--grid-images", "3",
                      "--out", str(out)])
    assert rc == 0
    res = json.loads((out / "results.json").read_text())
    assert res["num_test"] == 40 and res["dataset"] == "digits"
    assert list(res["models"]) == ["baseline", "SMOOT"]
    assert res["models"]["SMOOT"]["info"]["k_median"] == 30
    for entry in res["models"].values():
        for c in entry["curves"].values():
            assert len(c["accuracy"]) == 10 and 0.0 <= c["auc"] <= 90.0
            assert c["accuracy"][0] == pytest.approx(entry["accuracy"])  # 0% removed = clean
    md = (out / "report.md").read_text()
    assert "| SMOOT | 40 | 13 | 30 | 51 |" in md and "## Accuracy drop: integrated_gradients" in md
    for name in ("curves_saliency", "curves_integrated_gradients", "saliency_saliency",
                 "saliency_integrated_gradients"):
        png = out / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert mpimg.imread(png).ndim == 3


@pytest.mark.parametrize("args, option", [
    (["--checkpoints", "/nonexistent/ckpt.pt"], "--checkpoints"),
    (["--methods", "gradcam"], "--methods"),
    (["--percentages", "0", "50", "120"], "--percentages"),
    (["--percentages", "-10", "50"], "--percentages"),
    (["--num-test", "-3"], "--num-test"),
    (["--ig-steps", "0"], "--ig-steps"),
    (["--grid-images", "0"], "--grid-images"),
    (["--fill", "zeros"], "--fill"),
])
def test_cli_bad_input_names_the_option(tmp_path, capsys, args, option):
    ckpt = _checkpoint(tmp_path / "b.pt", "baseline")
    argv = ["--checkpoints", ckpt, "--out", str(tmp_path / "eval")]
    argv = args + argv[2:] if args[0] == "--checkpoints" else argv + args
    with pytest.raises(SystemExit) as e:
        _cli().main(argv)
    assert e.value.code == 2
    assert option in capsys.readouterr().err


def test_cli_rejects_a_file_that_is_not_a_checkpoint(tmp_path, capsys):
    bad = tmp_path / "x.pt"
    torch.save({"weights": 1}, bad)
    with pytest.raises(SystemExit):
        _cli().main(["--checkpoints", str(bad), "--out", str(tmp_path / "eval")])
    assert "not a smoot_ext checkpoint" in capsys.readouterr().err
