"""The evaluation's tables (statistics, saliency methods, fills, units) drive what is computed and
rendered, and its configs check themselves, naming the option, what was expected and what came."""
import csv
import math

import captum.attr
import numpy as np
import pytest
import torch
from torch import nn

from smoot_ext.evaluation import (
    IMPUTATIONS,
    METHODS,
    RANDOM,
    REMOVAL_UNITS,
    STATISTICS,
    AttributionConfig,
    EvalConfig,
    evaluate_checkpoints,
    summarise,
    write_report,
)
from smoot_ext.evaluation.results import BY_NAME, SALIENCY_STATISTICS, statistics_for
from smoot_ext.study import comparison
from smoot_ext.study.experiment import ReproduceConfig

FAST = AttributionConfig(ig_steps=4, nt_samples=2, shap_samples=2)


def _evaluated(orders=("morf", "lerf", "random")):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(36, 3)).eval()
    x, y = torch.rand(30, 1, 6, 6), torch.randint(0, 3, (30,), generator=torch.Generator().manual_seed(1))
    cfg = EvalConfig(methods=["saliency", "input_x_gradient"], orders=list(orders), attribution=FAST,
                     grid_images=2, bootstrap=50)
    per_image, _ = evaluate_checkpoints({"a": model, "b": [model, model]}, [(x, y)], cfg)
    res = summarise(per_image, cfg)
    res.update(dataset="synthetic", config={"abs": True, "unit": "pixel", "fill": "uniform", "road_noise": 0.01,
                                            "fill_value": None, "background": [0.0]})
    return per_image, res


def test_which_statistics_the_orders_allow():
    assert [s.name for s in statistics_for(["morf"])] == ["auc_morf", "comprehensiveness"]
    assert [s.name for s in statistics_for(["lerf", "morf"])] == ["auc_morf", "auc_lerf", "srg", "comprehensiveness",
                                                                 "sufficiency"]
    assert [s.name for s in statistics_for([RANDOM])] == ["auc_random"]
    assert all(s.better in ("lower", "higher", None) for s in STATISTICS)
    assert BY_NAME["auc_morf"].title == "AUC MoRF (lower = better)"
    assert BY_NAME["auc_random"].title == "AUC random order"


@pytest.mark.parametrize("orders", [("morf", "lerf", "random"), ("morf",), ("random",)])
def test_every_statistic_of_the_table_is_summarised_and_rendered(tmp_path, orders):
    per_image, res = _evaluated(orders)
    for entry in res["models"].values():
        for m, per in entry["methods"].items():
            want = statistics_for([RANDOM] if m == RANDOM else [o for o in orders if o != RANDOM])
            for block in per.values():
                assert set(block) - {"curves"} == {s.name for s in want}
                assert all(("seeds" in block[s.name]) == (entry["checkpoints"] > 1) for s in want)
    md = write_report(res, per_image, tmp_path)["markdown"].read_text()
    for s in statistics_for(orders):
        assert s.title in md
    with (tmp_path / "per_image.csv").open() as f:
        header = next(csv.reader(f))
    assert {f"{s.name}_{m}" for s in STATISTICS for m in ("accuracy", "probability")} <= set(header)


def test_the_report_writes_the_per_image_values_the_summary_used(tmp_path):
    """PerImage.statistics is computed once; the per-image file shows those very values."""
    per_image, res = _evaluated()
    assert per_image.statistics is per_image.statistics
    srg = per_image.statistics["a"][0]["saliency"]["correct"]["srg"]
    srg[:] = 12.345  # a value no recomputation would give
    write_report(res, per_image, tmp_path)
    with (tmp_path / "per_image.csv").open() as f:
        rows = [r for r in csv.DictReader(f) if r["model"] == "a" and r["method"] == "saliency"]
    assert len(rows) == 30 and {r["srg_accuracy"] for r in rows} == {"12.3450"}


def test_the_comparison_over_seeds_renders_the_saliency_statistics():
    block = {s.name: {"mean": 10.0 + i} for i, s in enumerate(SALIENCY_STATISTICS)}
    record = {"run": "sgt", "method": "sgt", "k_rounding": "floor", "seed": 0, "epochs": 1,
              "history": [{"epoch": 1, "test_acc": 0.9, "k_min": 1, "k_median": 2, "k_max": 3}],
              "scores": {"uniform": {"levels": [0.0, 0.5], "methods": {"saliency": {"accuracy": block}}}}}
    summary = comparison.summarise_runs({"sgt": {0: record}})
    got = {q["statistic"]: q["mean"] for q in summary["runs"]["sgt"]["quantities"] if q["kind"] == "score"}
    assert got == {s.name: 10.0 + i for i, s in enumerate(SALIENCY_STATISTICS)}
    header = "| run | " + " | ".join(s.title for s in SALIENCY_STATISTICS) + " |"
    assert header in comparison.markdown(summary)


def test_every_method_names_a_captum_class_and_every_fill_describes_itself():
    for spec in METHODS.values():
        assert isinstance(getattr(captum.attr, spec.captum), type)
    cfg = {"fill_value": None, "background": [0.0], "road_noise": 0.01}
    words = {name: fill.words(cfg) for name, fill in IMPUTATIONS.items()}
    assert len(set(words.values())) == len(IMPUTATIONS)
    assert words["constant"] == "constant 0 (black in the data's units)"


@pytest.mark.parametrize("unit", list(REMOVAL_UNITS))
def test_every_unit_scores_and_spreads_as_the_op_removes(unit):
    from smoot_ext.evaluation import Imputation, remove, unit_scores

    u = REMOVAL_UNITS[unit]
    shape, maps = ((3, 2, 4, 5), (4, 5)) if u.dims != 3 else ((3, 6, 5), {"step": (6,), "element": (6, 5)}[unit])
    x = torch.rand(*shape, generator=torch.Generator().manual_seed(0))
    a = torch.randn(*shape, generator=torch.Generator().manual_seed(1))
    s = unit_scores(a, unit=unit)
    assert s.shape == (3, u.count(x))
    out, removed = remove(x, s.reshape(u.score_shape(x)), 4, Imputation("constant", 9.0), unit=unit)
    where = u.spread(removed).expand_as(x)
    assert torch.equal(out[where], torch.full_like(out[where], 9.0)) and torch.equal(out[~where], x[~where])
    assert int(removed.sum()) == 3 * 4
    assert REMOVAL_UNITS[u.maps].map_shape(x) == maps  # an image's maps are per pixel, a sequence's per its unit


@pytest.mark.parametrize("make, message", [
    (lambda: AttributionConfig(ig_steps=0), r"ig_steps: expected an integer >= 1, got 0"),
    (lambda: AttributionConfig(nt_samples=1.5), r"nt_samples: expected an integer >= 1, got 1.5"),
    (lambda: AttributionConfig(noise=-0.1), r"noise: expected a std >= 0 .*got -0.1"),
    (lambda: EvalConfig(num_test=0), r"num_test: expected an integer >= 1, got 0"),
    (lambda: EvalConfig(batch_size=0), r"batch_size: expected an integer >= 1, got 0"),
    (lambda: EvalConfig(unit="token"), r"unit: expected one of 'pixel', 'feature', 'step', 'element', got 'token'"),
    (lambda: EvalConfig(attribution={"ig_steps": 4}), r"attribution: expected an AttributionConfig, got dict"),
    (lambda: ReproduceConfig(training=["sgd"]), r"training: unknown training method 'sgd'"),
    (lambda: ReproduceConfig(k_rounding=["round"]), r"k_rounding: unknown rounding 'round'"),
    (lambda: ReproduceConfig(fills=["zeros"]), r"fills: unknown fill 'zeros'; choose from uniform"),
    (lambda: ReproduceConfig(methods=["gradcam"]), r"methods: unknown saliency method 'gradcam'"),
    (lambda: ReproduceConfig(percentages=[0, 100]), r"percentages: every value must lie in \[0, 100\)"),
    (lambda: ReproduceConfig(ig_steps=0), r"ig_steps: expected an integer >= 1, got 0"),
    (lambda: ReproduceConfig(num_test=-1), r"num_test: expected an integer >= 0, got -1"),
    (lambda: ReproduceConfig(subset=0), r"subset: expected an integer >= 1, got 0"),
    (lambda: EvalConfig(seed=-1), r"seed: expected an integer >= 0, got -1"),
    (lambda: ReproduceConfig(seeds=[2, 2]), r"seeds: each seed at most once, got \[2, 2\]"),
])
def test_configs_check_themselves(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_the_reproduction_plan():
    cfg = ReproduceConfig(training=["baseline", "smoot"], k_rounding=["floor", "trunc"], fills=["uniform", "road"],
                          num_test=0, ig_num_test=100, out="o")
    assert cfg.results.endswith("results")
    assert [tuple(r[:3]) for r in cfg.runs()] == [("baseline", "baseline", "floor"), ("smoot", "smoot", "floor"),
                                                 ("smoot-trunc", "smoot", "trunc")]
    more = ReproduceConfig(training=["sgt", "smoot"], k_update=["percent", "units"], sgt_k=[0.2985, 0.6939])
    assert [r.name for r in more.runs()] == ["sgt", "sgt-k0.2985", "sgt-k0.6939", "smoot", "smoot-percent"]
    runs = {r.name: r for r in more.runs()}
    assert runs["smoot-percent"].guided(None).k_update == "percent"
    # The fixed k of each SGT run, in MNIST's units: the paper's SMOOT minimum and maximum.
    assert [math.floor(runs[n].guided(None).k_init * 784) for n in ("sgt-k0.2985", "sgt-k0.6939")] == [234, 544]
    assert cfg.passes() == [(["saliency"], None), (["integrated_gradients"], 100)]
    assert cfg.orders("uniform", 0) == ["morf", "lerf", "random"] and cfg.orders("road", 0) == ["morf", "lerf"]
    ev = cfg.evaluation("uniform", 1)
    assert (ev.methods, ev.num_test, ev.orders) == (["integrated_gradients"], 100, ["morf", "lerf"])
    np.testing.assert_allclose(ev.levels, [i / 10 for i in range(10)])
