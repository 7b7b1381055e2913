"""The time-series benchmark's AUP / AUR (Ismail et al. 2020) against a line-by-line transcription
of its published scripts, on maps chosen to break a port: ties, constant and all-zero maps, one hot
unit, padding, random maps, a box; and the chance row and the element / step levels of a series."""
import numpy as np
import pytest
import torch
from sklearn.preprocessing import minmax_scale

from smoot_ext.evaluation import EvalConfig, evaluate_checkpoints
from smoot_ext.evaluation.localization import LOCALISATION, axis_curves, benchmark_curves
from smoot_ext.evaluation.report import markdown
from smoot_ext.evaluation.results import RANDOM
from smoot_ext.evaluation.summary import summarise
from smoot_ext.study.comparison import markdown as comparison_markdown
from smoot_ext.study.comparison import summarise_runs

# --- the oracle: TS-Interpretability-Benchmark (ayaabdelsalam91), Scripts/, transcribed -------------
# Helper.py: givenAttGetRescaledSaliency, getIndexOfXhighestFeatures, getAverageOfMaxX,
# getIndexOfAllhighestSalientValues, getRowColMaskIndex; createMasks.py (percentages 10..90);
# getPrecisionRecall.py and getFeatureTimePrecisionRecall.py (the per-sample loops, the counts);
# getAccuracyMetrics.py (np.trapz over a = 0.1, 0.2, ...). One change: np.argsort(kind="stable"),
# since the default quicksort leaves the order of ties unspecified. A sample here is its real part
# (the benchmark has no padding): (T_b, F).

def getIndexOfXhighestFeatures(array, X):
    return np.argpartition(array, int(-1 * X))[int(-1 * X):]


def getAverageOfMaxX(array, X):
    index = getIndexOfXhighestFeatures(array, X)
    return np.mean(array[index])


def getIndexOfAllhighestSalientValues(array, percentageArray):
    index = np.argsort(array, kind="stable")
    totalSaliency = np.sum(array)
    indexes = []
    X = 1
    with np.errstate(invalid="ignore", divide="ignore"):  # an all-zero map: 0/0, as in the benchmark
        for percentage in percentageArray:
            actualPercentage = percentage / 100
            index_X = index[int(-1 * X):]
            percentageDroped = np.sum(array[index_X]) / totalSaliency
            if percentageDroped < actualPercentage:
                percentageDroped_ = np.sum(array[index_X]) / totalSaliency
                if not (percentageDroped_ > actualPercentage):
                    while percentageDroped < actualPercentage and X < array.shape[0] - 1:
                        X = X + 1
                        index_X = index[int(-1 * X):]
                        percentageDroped = np.sum(array[index_X]) / totalSaliency
            elif percentageDroped > actualPercentage:
                X_ = X - 1
                index_X_ = index[int(-1 * X_):]
                percentageDroped_ = np.sum(array[index_X_]) / totalSaliency
                if not (percentageDroped_ < actualPercentage):
                    while percentageDroped > actualPercentage and X > 1:
                        X = X - 1
                        index_X = index[int(-1 * X):]
                        percentageDroped = np.sum(array[index_X]) / totalSaliency
            indexes.append(index_X)
    return indexes


def getRowColMaskIndex(index, rows, columns):
    InRow, InColumn = np.zeros(rows, dtype=bool), np.zeros(columns, dtype=bool)
    for i in index:
        InColumn[i % columns] = True
        InRow[int(i / columns)] = True
    return InRow, InColumn


def _pr(TP, FP, FN, counts, p_sum, r_sum):
    if (TP + FP) > 0:
        p_sum += TP / (TP + FP)
        counts[0] += 1
    if (TP + FN) > 0:
        r_sum += TP / (TP + FN)
        counts[1] += 1
    return p_sum, r_sum


def oracle(samples, boxes):
    """{kind: (AUP, AUR)} of the benchmark over ``samples`` ((T_b, F) maps) with truth ``boxes``."""
    percentages = list(range(10, 91, 10))
    levels = {k: [] for k in ("all", "time", "feature")}
    masks, sal = [], []
    for s in samples:
        T, F = s.shape
        rescaled = minmax_scale(np.absolute(s).reshape(1, T * F), axis=1).reshape(T, F)
        sal.append(rescaled)
        masks.append(getIndexOfAllhighestSalientValues(rescaled.flatten(), percentages))
    for p in range(len(percentages)):
        sums = {k: [0.0, 0.0] for k in levels}
        counts = {k: [0, 0] for k in levels}
        for s, box, mask in zip(sal, boxes, masks):
            T, F = s.shape
            flat = s.flatten()
            postiveIndex = mask[p]
            trueIndex = getIndexOfXhighestFeatures(box.flatten().astype(float), int(box.sum()))
            TP = sum(flat[j] for j in postiveIndex if j in trueIndex)
            FP = sum(flat[j] for j in postiveIndex if j not in trueIndex)
            FN = sum(flat[j] for j in trueIndex if j not in postiveIndex)
            sums["all"] = list(_pr(TP, FP, FN, counts["all"], *sums["all"]))
            refTime, refFeature = getRowColMaskIndex(trueIndex, T, F)
            maskTime, maskFeature = getRowColMaskIndex(postiveIndex, T, F)
            ts, fs = box.any(1).nonzero()[0], box.any(0).nonzero()[0]
            timeW = [getAverageOfMaxX(s[r, :], int(ts[-1] + 1 - ts[0])) for r in range(T)]
            featW = [getAverageOfMaxX(s[:, c], int(fs[-1] + 1 - fs[0])) for c in range(F)]
            for kind, ref, msk, w in (("time", refTime, maskTime, timeW), ("feature", refFeature, maskFeature, featW)):
                TP = sum(w[t] for t in range(len(w)) if ref[t] and msk[t])
                FP = sum(w[t] for t in range(len(w)) if not ref[t] and msk[t])
                FN = sum(w[t] for t in range(len(w)) if ref[t] and not msk[t])
                sums[kind] = list(_pr(TP, FP, FN, counts[kind], *sums[kind]))
        with np.errstate(invalid="ignore"):  # no sample counted (one map alone): NaN, where the script fails
            for k in levels:
                levels[k].append((np.float64(sums[k][0]) / counts[k][0], np.float64(sums[k][1]) / counts[k][1]))
    a, b = [], 0.1
    for _ in percentages:
        a.append(b)
        b += 0.1
    trapz = getattr(np, "trapezoid", None) or np.trapz  # np.trapz's numpy 2 name
    return {k: (trapz([v[0] for v in rows], x=a), trapz([v[1] for v in rows], x=a)) for k, rows in levels.items()}


# --- the maps ------------------------------------------------------------------------------------

T, F = 12, 10


def _box(t0, t1, f0, f1):
    box = torch.zeros(T, F, dtype=torch.bool)
    box[t0:t1, f0:f1] = True
    return box


def adversarial_batch(seed=0, n_random=24):
    """(scores (B, T, F), region, lengths): one map per case, then random maps; every box is the
    benchmark's kind (one rectangle), varying per sample."""
    g = torch.Generator().manual_seed(seed)
    cases = []
    ties = torch.randint(0, 3, (T, F), generator=g).float()  # few values: ties straddle every cut
    cases.append((ties, _box(2, 7, 3, 9), T))
    cases.append((torch.full((T, F), 0.7), _box(0, 4, 0, 4), T))  # constant: rescaled to 0
    cases.append((torch.zeros(T, F), _box(3, 9, 2, 5), T))  # all zero: undefined
    hot = torch.zeros(T, F)
    hot[5, 6] = 4.0
    cases.append((hot, _box(4, 8, 5, 8), T))  # one hot unit inside the box
    hot_out = torch.zeros(T, F)
    hot_out[0, 0] = -2.0  # signed: |.| is ranked
    cases.append((hot_out, _box(4, 8, 5, 8), T))  # one hot unit outside it
    cases.append((_box(2, 6, 1, 9).float(), _box(2, 6, 1, 9), T))  # the box itself
    cases.append((torch.rand(T, F, generator=g), _box(1, 11, 0, F), T))  # box over every feature
    padded = torch.rand(T, F, generator=g) * 3 - 1
    cases.append((padded, _box(1, 5, 2, 7), 7))  # 7 real steps of 12
    cases.append((torch.rand(T, F, generator=g).round(decimals=1), _box(5, 7, 0, 2), 9))  # ties and padding
    for _ in range(n_random):
        t0, f0 = (int(v) for v in torch.randint(0, 6, (2,), generator=g))
        t1, f1 = t0 + int(torch.randint(1, 6, (1,), generator=g)), f0 + int(torch.randint(1, 5, (1,), generator=g))
        cases.append((torch.randn(T, F, generator=g), _box(t0, t1, f0, f1), T))
    scores = torch.stack([c[0] for c in cases])
    region = torch.stack([c[1] for c in cases])
    lengths = torch.tensor([c[2] for c in cases])
    return scores, region, lengths


def _ported(scores, region, lengths):
    real = (torch.arange(T)[None, :, None] < lengths[:, None, None]).expand(-1, T, F)
    return {k: LOCALISATION[k].per_image(scores.abs(), region, real).double().numpy()
            for k in ("aup", "aur", "aup_time", "aur_time", "aup_feature", "aur_feature")}


def _oracle(scores, region, lengths):
    return oracle([s[:n].numpy().astype(np.float64) for s, n in zip(scores, lengths)],
                  [b[:n].numpy() for b, n in zip(region, lengths)])


def test_aup_aur_equal_the_published_scripts_on_adversarial_and_random_maps():
    scores, region, lengths = adversarial_batch()
    got, want = _ported(scores, region, lengths), _oracle(scores, region, lengths)
    for kind, suffix in (("all", ""), ("time", "_time"), ("feature", "_feature")):
        for i, name in enumerate(("aup", "aur")):
            # The benchmark's mean over the samples it counts is the mean of the defined per-image areas.
            assert np.nanmean(got[name + suffix]) == pytest.approx(want[kind][i], abs=1e-6), name + suffix


@pytest.mark.parametrize("case", range(9))
def test_each_adversarial_map_alone_equals_the_published_scripts(case):
    scores, region, lengths = adversarial_batch()
    one = (scores[case:case + 1], region[case:case + 1], lengths[case:case + 1])
    got = _ported(*one)
    if case in (1, 2):  # constant and all-zero maps carry no weight: the benchmark counts them nowhere
        assert all(np.isnan(v).all() for v in got.values())
        return
    want = _oracle(*one)
    for kind, suffix in (("all", ""), ("time", "_time"), ("feature", "_feature")):
        np.testing.assert_allclose(got["aup" + suffix][0], want[kind][0], atol=1e-6)
        np.testing.assert_allclose(got["aur" + suffix][0], want[kind][1], atol=1e-6)


def test_the_extreme_maps_score_what_the_formulas_say():
    scores, region, lengths = adversarial_batch(n_random=0)
    got = _ported(scores, region, lengths)
    # One hot unit inside the box: every level selects it alone, precision 1, recall 1 (the rest weighs 0).
    assert got["aup"][3] == pytest.approx(0.8) and got["aur"][3] == pytest.approx(0.8)
    # One hot unit outside the box: precision 0; the box has no weight, so recall is undefined.
    assert got["aup"][4] == 0.0 and np.isnan(got["aur"][4])
    # The box itself: only box units carry weight, so precision is 1 at every level.
    assert got["aup"][5] == pytest.approx(0.8)


def test_padding_is_never_selected_nor_rescaled():
    scores, region, lengths = adversarial_batch()
    real = (torch.arange(T)[None, :, None] < lengths[:, None, None]).expand(-1, T, F)
    want = _ported(scores, region, lengths)
    loud = torch.where(real, scores, 1e6)  # huge scores past each length change nothing
    got = _ported(loud, region | ~real, lengths)  # nor truth there
    for k in want:
        np.testing.assert_array_equal(got[k], want[k])


def test_the_selection_grows_by_saliency_mass_not_by_count():
    # One unit holds 91% of the mass: it alone reaches every level, so precision stays 1 while a
    # count-based top p% would take in the units outside the box.
    s = torch.full((1, 1, 100), 0.001)
    s[0, 0, 0], s[0, 0, 1] = 1.0, 0.0  # the min (0) keeps 0.001 at 0.001: 98 of them are 9% of the mass
    box = torch.zeros(1, 1, 100, dtype=torch.bool)
    box[0, 0, 0] = True
    precision, recall = benchmark_curves(s, box)
    assert torch.all(precision[:, 0] == 1.0) and torch.all(recall[:, 0] == 1.0)


def test_a_uniform_random_map_scores_the_benchmarks_chance_level():
    g = torch.Generator().manual_seed(1)
    s = torch.rand(200, 50, 50, generator=g)
    box = torch.zeros(200, 50, 50, dtype=torch.bool)
    box[:, 10:40, 10:40] = True  # ts-middle's box: 36% of the units
    p, r = benchmark_curves(s, box)
    aup = torch.trapezoid(p, torch.tensor([v / 10 for v in range(1, 10)], dtype=p.dtype), dim=0).mean()
    assert 0.27 < aup < 0.31  # ~0.8 * 0.36, not the plain mean's 0.36
    tp, tr = axis_curves(s, box, axis="time")
    assert 0.45 < torch.trapezoid(tp, dx=0.1, dim=0).mean() < 0.5  # every step is picked early: 30/50 of them
    with pytest.raises(ValueError, match="scores: expected \\(B, T, F\\)"):
        axis_curves(s.reshape(200, -1), box, axis="time")


def test_a_region_of_the_wrong_shape_is_named():
    with pytest.raises(ValueError, match="region: expected shape \\(2, 6\\)"):
        LOCALISATION["aup"].per_image(torch.rand(2, 6), torch.ones(2, 5, dtype=torch.bool))


# --- in the evaluation: element level by default, step level where labelled, and the chance row ----

class _FirstFeatures(torch.nn.Module):
    """Classifies a (B, T, D) series by the sum of its first two features."""

    def forward(self, x, lengths=None):
        s = x[:, :, :2].sum(dim=(1, 2))
        return torch.stack([-s, s], dim=1)


def _evaluate(box, unit="step", n=8):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 10, 6, generator=g)
    region = box.expand(n, -1, -1)
    config = EvalConfig(methods=["saliency"], unit=unit, levels=[0.0, 0.5], bootstrap=20, progress=False)
    per_image, _ = evaluate_checkpoints({"m": _FirstFeatures()}, [(x, (x[:, :, :2].sum((1, 2)) > 0).long(), region)],
                                        config)
    return per_image, config


def test_series_are_scored_per_element_and_per_step_where_the_truth_leaves_half_the_steps():
    box = torch.zeros(1, 10, 6, dtype=torch.bool)
    box[:, 2:5, :2] = True  # 3 of 10 steps: the step level is meaningful
    per_image, config = _evaluate(box)
    loc = per_image.localisation["m"][0]
    assert set(loc) == {"saliency", RANDOM}
    assert {"aup", "aup_time", "aur_feature", "step_auroc", "step_aup"} <= set(loc["saliency"])
    assert "step_aup_time" not in loc["saliency"]  # a step map has no features
    # The gradient is exactly the first two features: the element map finds the box's features.
    assert np.all(loc["saliency"]["aup_feature"] == pytest.approx(0.8))
    assert np.all(loc["saliency"]["auroc"] > 0.6)
    # Same keys for the chance row, and a random map is near chance.
    assert set(loc[RANDOM]) == set(loc["saliency"])
    assert abs(np.nanmean(loc[RANDOM]["auroc"]) - 0.5) < 0.15
    text = markdown({**summarise(per_image, config), "config": {"unit": "step", "abs": True, "fill": "uniform"},
                     "dataset": "x"})
    assert "AUROC (steps)" in text and "| chance | random map (seeded uniform) |" in text


def test_the_step_level_is_left_out_where_the_truth_covers_most_steps():
    box = torch.zeros(1, 10, 6, dtype=torch.bool)
    box[:, 1:9, :2] = True  # 8 of 10 steps: a random map would score high at step level
    for unit in ("step", "element"):  # the removal unit does not change what localisation scores
        per_image, _ = _evaluate(box, unit)
        keys = set(per_image.localisation["m"][0]["saliency"])
        assert not any(k.startswith("step_") for k in keys) and {"aup", "auroc", "aup_time"} <= keys


def test_the_chance_row_is_seeded():
    box = torch.zeros(1, 10, 6, dtype=torch.bool)
    box[:, 2:5, :2] = True
    a, _ = _evaluate(box)
    b, _ = _evaluate(box)
    np.testing.assert_array_equal(a.localisation["m"][0][RANDOM]["aup"], b.localisation["m"][0][RANDOM]["aup"])


def _record(method, aup, seed):
    loc = {"saliency": {"aup": aup + 0.01 * seed, "step_auroc": 0.7}, RANDOM: {"aup": 0.29, "step_auroc": 0.5}}
    return {"method": method, "k_rounding": "floor", "epochs": 1, "history": [{"test_acc": 1.0}],
            "scores": {"uniform": {"methods": {}, "localisation": loc}}}


def test_the_comparison_over_seeds_shows_the_chance_row_once_and_no_difference_of_it():
    found = {run: {s: _record(run, aup, s) for s in (0, 1)} for run, aup in (("baseline", 0.4), ("sgt", 0.6))}
    summary = summarise_runs(found)
    assert not [d for d in summary["differences"] if d["method"] == RANDOM]
    text = comparison_markdown(summary)
    assert "| run | AUP | AUROC (steps) |" in text
    assert text.count("| chance (random map) | 0.290 [0.290, 0.290] | 0.500 [0.500, 0.500] |") == 1
    assert "**Localisation, random**" not in text
