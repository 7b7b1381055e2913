"""Saliency evaluation: attributions, removal curves end to end, localisation, report, plots, errors.

The removal curves against a literal loop, the imputations, and the statistics have their own
files (test_evaluation_perturbation.py, _imputation.py, _statistics.py)."""
import warnings

import matplotlib.image as mpimg
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.metrics import roc_auc_score
from torch import nn

from smoot_ext.evaluation import (
    ATTRIBUTION_METHODS,
    RANDOM,
    AttributionConfig,
    EvalConfig,
    attribute,
    auroc,
    check_levels,
    check_methods,
    evaluate_checkpoints,
    plot_removal_curves,
    plot_saliency_grid,
    precision_at_region,
    removal_curves,
    summarise,
    unit_scores,
    write_report,
)
from smoot_ext.evaluation.imputation import Imputation

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
FAST = AttributionConfig(ig_steps=8, nt_samples=3, shap_samples=3)


class Linear(nn.Module):
    """logits = W x + b on flattened images: every attribution has a closed form."""

    def __init__(self, shape, classes=3, seed=0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.w = nn.Parameter(torch.randn(classes, int(np.prod(shape)), generator=g))
        self.b = nn.Parameter(torch.zeros(classes))

    def forward(self, x):
        return x.flatten(1) @ self.w.T + self.b


class IgnoresInput(nn.Module):
    """Constant logits; x * 0 keeps x in the graph so the gradients exist (and are zero)."""

    def __init__(self, classes=3):
        super().__init__()
        self.b = nn.Parameter(torch.arange(classes, dtype=torch.float32))

    def forward(self, x):
        return (x.flatten(1) * 0).sum(1, keepdim=True) + self.b


# --- attributions -----------------------------------------------------------------------------

def test_attributions_match_closed_forms_on_a_linear_model():
    model = Linear((1, 4, 4)).eval()
    x = torch.rand(5, 1, 4, 4)
    y = torch.tensor([0, 1, 2, 1, 0])
    w = model.w.detach()[y].view(5, 1, 4, 4)
    kw = dict(baseline=0.25, data_range=1.0, config=FAST)
    torch.testing.assert_close(attribute(model, x, y, "saliency", **kw), w)
    torch.testing.assert_close(attribute(model, x, y, "input_x_gradient", **kw), x * w)
    torch.testing.assert_close(attribute(model, x, y, "integrated_gradients", **kw), (x - 0.25) * w)
    torch.testing.assert_close(attribute(model, x, y, "deeplift", **kw), (x - 0.25) * w)
    # SmoothGrad of a linear model: the gradient at every noisy copy is w.
    torch.testing.assert_close(attribute(model, x, y, "smoothgrad", **kw), w)
    gs = attribute(model, x, y, "gradient_shap", **kw)
    assert gs.shape == x.shape and torch.isfinite(gs).all()


def test_attribution_is_repeatable_with_a_seed():
    model = Linear((1, 4, 4)).eval()
    x, y = torch.rand(3, 1, 4, 4), torch.tensor([0, 1, 2])
    a = attribute(model, x, y, "gradient_shap", baseline=0.0, data_range=1.0, config=FAST, seed=3)
    b = attribute(model, x, y, "gradient_shap", baseline=0.0, data_range=1.0, config=FAST, seed=3)
    torch.testing.assert_close(a, b)


def test_unit_scores_sum_abs_over_channels():
    a = torch.tensor([[[[1.0, -2.0]], [[-3.0, 0.5]]]])   # (1, 2, 1, 2)
    torch.testing.assert_close(unit_scores(a, unit="pixel"), torch.tensor([[4.0, 2.5]]))
    torch.testing.assert_close(unit_scores(a, unit="pixel", abs=False), torch.tensor([[-2.0, -1.5]]))
    torch.testing.assert_close(unit_scores(a, unit="feature"), torch.tensor([[1.0, 2.0, 3.0, 0.5]]))


# --- removal curves end to end ---------------------------------------------------------------

BLACK = Imputation("constant", 0.0)


def test_removal_takes_the_most_salient_units_first():
    """A model that reads a single pixel: MoRF by a saliency that ranks that pixel first kills it
    at the first unit removed; LeRF keeps it until the last."""
    class ReadsPixel(nn.Module):
        def forward(self, x):  # class 1 iff pixel (0, 0) is bright
            v = x[:, 0, 0, 0]
            return torch.stack([0.5 - v, v - 0.5], dim=1)

    x = torch.zeros(4, 1, 3, 3)
    x[:, 0, 0, 0] = 1.0
    y = torch.ones(4, dtype=torch.long)
    first = torch.zeros(4, 9)
    first[:, 0] = 5.0
    levels = [0, 1 / 9, 8 / 9 - 1e-6, 8 / 9]  # none, the first, all but two, all but the last
    morf, _ = removal_curves(ReadsPixel(), x, y, first, levels, order="morf", imputation=BLACK)
    lerf, _ = removal_curves(ReadsPixel(), x, y, first, levels, order="lerf", imputation=BLACK)
    assert morf.sum(0).tolist() == [4, 0, 0, 0]
    assert lerf.sum(0).tolist() == [4, 4, 4, 4]


@pytest.mark.parametrize("fill", ["constant", "uniform", "mean", "road"])
def test_a_model_that_ignores_its_input_has_flat_curves(fill):
    x = torch.rand(40, 1, 6, 6)
    y = torch.randint(0, 3, (40,), generator=torch.Generator().manual_seed(1))
    cfg = EvalConfig(methods=["saliency", "integrated_gradients"], fill=fill, attribution=FAST, grid_images=2,
                     bootstrap=50)
    per_image, _ = evaluate_checkpoints({"flat": IgnoresInput()}, [(x[:25], y[:25]), (x[25:], y[25:])], cfg)
    res = summarise(per_image, cfg)
    entry = res["models"]["flat"]
    clean = 100.0 * (y == 2).float().mean().item()  # argmax of the constant logits is class 2
    assert entry["accuracy"]["mean"] == pytest.approx(clean)
    for m in ("saliency", "integrated_gradients"):
        acc = entry["methods"][m]["accuracy"]
        for o in ("morf", "lerf"):
            assert acc["curves"][o]["mean"] == pytest.approx([clean] * 10)
        assert acc["auc_morf"]["mean"] == pytest.approx(clean * 0.9)
        assert acc["srg"]["mean"] == pytest.approx(0.0) and acc["srg"]["lo"] == acc["srg"]["hi"] == 0.0
    assert entry["methods"][RANDOM]["accuracy"]["auc_random"]["mean"] == pytest.approx(clean * 0.9)


# --- synthetic ground truth -------------------------------------------------------------------

def _region_task(n=200, side=8, seed=0):
    """Images of noise whose class is the sign of the mean of a fixed 3x3 region, and a model
    that reads exactly that region: the region is the perfect saliency map."""
    g = torch.Generator().manual_seed(seed)
    region = torch.zeros(side, side, dtype=torch.bool)
    region[2:5, 3:6] = True
    y = torch.randint(0, 2, (n,), generator=g)
    x = torch.rand(n, 1, side, side, generator=g)
    x[:, 0][:, region] = torch.where(y.bool(), 0.9, 0.1).unsqueeze(1) + 0.05 * torch.rand(n, 9, generator=g)

    class ReadsRegion(nn.Module):
        def forward(self, x):
            v = x[:, 0][:, region].mean(dim=1) - 0.5
            return torch.stack([-v, v], dim=1)

    return x, y, region.expand(n, side, side), ReadsRegion()


@pytest.fixture(scope="module")
def synthetic():
    """The trainer's synthetic set and a matched-filter model that is perfect on it: its
    templates are the per-class mean of the training squares, max-pooled over positions."""
    from smoot_ext.data import load_dataset

    bundle = load_dataset("synthetic", test_subset=200, seed=0)
    tr, side = bundle.train, 6
    patches = tr.images[:, 0][tr.masks].view(-1, side, side)  # each image's square, row-major

    class Matched(nn.Module):
        def __init__(self):
            super().__init__()
            t = torch.stack([patches[tr.labels == c].mean(0) for c in range(bundle.num_classes)])
            self.w = nn.Parameter(t.sign().unsqueeze(1))

        def forward(self, x):
            return F.conv2d(x, self.w).amax(dim=(2, 3))

    model = Matched().eval()
    te = bundle.test
    assert (model(te.images).argmax(1) == te.labels).float().mean() > 0.99
    return te.images, te.labels, te.masks, model


def test_perfect_saliency_drops_accuracy_faster_than_random(synthetic):
    x, y, region, model = synthetic
    levels = [i / 10 for i in range(10)]
    perfect = region.reshape(len(x), -1).float()
    rnd = torch.rand(perfect.shape, generator=torch.Generator().manual_seed(1))
    curves = {}
    for name, scores, order in (("morf", perfect, "morf"), ("lerf", perfect, "lerf"), ("random", rnd, "random")):
        correct, _ = removal_curves(model, x, y, scores, levels, order=order, imputation=BLACK)
        curves[name] = 100.0 * correct.float().mean(0).numpy()
    assert curves["morf"][0] == curves["random"][0] == curves["lerf"][0] > 99.0
    # 20% of 256 pixels covers the 36-pixel square: the class evidence is gone.
    assert curves["morf"][2] < 30.0 < curves["random"][2]
    # LeRF removes the square last: at the last levels only it and a few noise pixels are left.
    assert curves["lerf"][8] > 90.0
    auc = {k: np.trapezoid(v, levels) for k, v in curves.items()}
    assert auc["morf"] < auc["random"] - 20.0 < auc["lerf"] - 20.0


def test_gradient_saliency_of_the_matched_filter_lies_in_the_region(synthetic):
    x, y, region, model = synthetic
    cfg = EvalConfig(methods=["saliency", "input_x_gradient"], attribution=FAST, grid_images=2, bootstrap=50)
    per_image, _ = evaluate_checkpoints({"matched": model}, [(x, y, region)], cfg)
    res = summarise(per_image, cfg)
    share = region.float().mean().item()  # 36 / 256: what a random map scores in precision
    entry = res["models"]["matched"]
    for m in ("saliency", "input_x_gradient"):
        loc, acc = entry["localisation"][m], entry["methods"][m]["accuracy"]
        assert loc["precision_at_region"] > 0.9 > share and loc["auroc"] > 0.9
        assert acc["auc_morf"]["hi"] < entry["methods"][RANDOM]["accuracy"]["auc_random"]["lo"]
        assert acc["srg"]["lo"] > 0.0


def test_localisation_of_perfect_and_random_maps():
    _, _, region, _ = _region_task(n=50)
    flat = region.reshape(50, -1)
    assert precision_at_region(flat.float(), flat).tolist() == [1.0] * 50
    assert auroc(flat.float(), flat).tolist() == [1.0] * 50
    assert auroc(-flat.float(), flat).tolist() == [0.0] * 50
    rnd = torch.rand(50, 64, generator=torch.Generator().manual_seed(0))
    assert 0.3 < auroc(rnd, flat).mean() < 0.7


def test_auroc_matches_sklearn_with_ties():
    g = torch.Generator().manual_seed(0)
    scores = torch.randint(0, 5, (6, 30), generator=g).float()  # many ties
    region = torch.rand(6, 30, generator=g) < 0.3
    want = [roc_auc_score(region[i].numpy(), scores[i].numpy()) for i in range(6)]
    np.testing.assert_allclose(auroc(scores, region).numpy(), want, rtol=1e-6)


def test_localisation_is_undefined_for_an_empty_region():
    scores, region = torch.rand(2, 5), torch.zeros(2, 5, dtype=torch.bool)
    assert torch.isnan(auroc(scores, region)).all() and torch.isnan(precision_at_region(scores, region)).all()


# --- end to end: report and plots -------------------------------------------------------------

def test_report_and_plots_are_written_and_valid(tmp_path):
    x, y, region, model = _region_task(n=60)
    cfg = EvalConfig(methods=["saliency", "input_x_gradient"], attribution=FAST, grid_images=3,
                     background=0.0, bootstrap=100)
    models = {"reads-region": model, "ignores-input": IgnoresInput(classes=2)}
    per_image, maps = evaluate_checkpoints(models, [(x[:30], y[:30], region[:30]), (x[30:], y[30:], region[30:])], cfg)
    res = summarise(per_image, cfg)
    res.update(dataset="synthetic", config={"abs": True, "unit": "pixel", "fill": "uniform", "road_noise": 0.01,
                                            "fill_value": None, "background": [0.0]})
    figures = plot_removal_curves(res, tmp_path) + plot_saliency_grid(maps, tmp_path)
    assert sorted(p.name for p in figures) == ["curves_input_x_gradient.png", "curves_saliency.png",
                                               "saliency_input_x_gradient.png", "saliency_saliency.png"]
    for p in figures:
        assert p.read_bytes()[:8] == PNG_SIGNATURE
        img = mpimg.imread(p)
        assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 100
    paths = write_report(res, per_image, tmp_path, figures)
    md = paths["markdown"].read_text()
    assert "| Model | Saliency | AUC MoRF (lower = better) | AUC LeRF (higher = better) | SRG" in md
    assert "x from 0 to 0.9" in md and "x = 0 included" in md  # the AUC convention
    assert "Precision@region" in md and "curves_saliency.png" in md
    loc = res["models"]["reads-region"]["localisation"]["saliency"]
    assert loc["precision_at_region"] == pytest.approx(1.0) and loc["auroc"] == pytest.approx(1.0)
    # one row per model, curve (each method's MoRF and LeRF, the random order), metric and level
    assert len(paths["curves_csv"].read_text().splitlines()) == 1 + 2 * 5 * 2 * 10
    assert len(paths["per_image_csv"].read_text().splitlines()) == 1 + 2 * 3 * 60
    assert maps["saliency"]["saliency"]["reads-region"].shape == (3, 8, 8)


# --- bad input --------------------------------------------------------------------------------

def test_unknown_method_is_named():
    with pytest.raises(ValueError, match=r"methods: unknown saliency method 'gradcam'.*saliency"):
        check_methods(["saliency", "gradcam"])
    with pytest.raises(ValueError, match="^methods:"):
        EvalConfig(methods=["nope"])


@pytest.mark.parametrize("bad", [[0, 0.5, 1.0], [-0.1, 0.5], [0.2], [0, 0.2, 0.1], [0, 1.5]])
def test_bad_levels_are_named(bad):
    with pytest.raises(ValueError, match="^levels:"):
        check_levels(bad)
    with pytest.raises(ValueError, match="^levels:"):
        EvalConfig(levels=bad)


@pytest.mark.parametrize("option, kwargs", [("fill", {"fill": "zeros"}), ("orders", {"orders": ["morf", "up"]}),
                                            ("orders", {"orders": []}), ("road_noise", {"road_noise": -1.0}),
                                            ("bootstrap", {"bootstrap": 0}), ("confidence", {"confidence": 1.0}),
                                            ("forward_batch", {"forward_batch": 0})])
def test_bad_options_are_named(option, kwargs):
    with pytest.raises(ValueError, match=f"^{option}:"):
        EvalConfig(**kwargs)


def test_attribution_refuses_training_mode():
    with pytest.raises(ValueError, match="eval mode"):
        attribute(Linear((1, 2, 2)).train(), torch.rand(1, 1, 2, 2), torch.tensor([0]), "saliency",
                  baseline=0.0, data_range=1.0)


def test_every_listed_method_runs():
    model = Linear((1, 4, 4)).eval()
    for m in ATTRIBUTION_METHODS:
        a = attribute(model, torch.rand(2, 1, 4, 4), torch.tensor([0, 1]), m, baseline=0.0, data_range=1.0,
                      config=FAST)
        assert a.shape == (2, 1, 4, 4)


def test_constant_fill_may_differ_per_channel():
    x = torch.ones(2, 2, 2, 2)
    seen = []

    class Spy(nn.Module):
        def forward(self, x):
            seen.append(x.clone())
            return torch.zeros(x.shape[0], 2)

    scores = torch.tensor([[4.0, 3.0, 2.0, 1.0]] * 2)  # pixel 0 first
    removal_curves(Spy(), x, torch.zeros(2, dtype=torch.long), scores, [0, 0.25], order="morf",
                   imputation=Imputation("constant", (0.5, -1.0)))
    removed = seen[-1][2:]  # after x itself (level 0)
    torch.testing.assert_close(removed[:, :, 0, 0], torch.tensor([[0.5, -1.0]] * 2))
    assert (removed[:, :, 0, 1:] == 1).all() and (removed[:, :, 1] == 1).all()
    with pytest.raises(ValueError, match="background"):
        removal_curves(Spy(), x, torch.zeros(2, dtype=torch.long), scores, [0, 0.25],
                       imputation=Imputation("constant", (1, 2, 3)))


def test_deeplift_warns_when_the_model_has_no_nonlinearity_modules():
    x, y = torch.rand(2, 1, 4, 4), torch.tensor([0, 1])
    with pytest.warns(UserWarning, match="deeplift: the model has no nn.ReLU"):
        attribute(Linear((1, 4, 4)).eval(), x, y, "deeplift", baseline=0.0, data_range=1.0)
    with_relu = nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 2)).eval()
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        attribute(with_relu, x, y, "deeplift", baseline=0.0, data_range=1.0)
    assert not [w for w in seen if "deeplift: the model" in str(w.message)]
