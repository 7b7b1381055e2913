"""ERASER's measures of token rationales (DeYoung et al., ACL 2020), for text.

Ported from the published code: ``rationale_benchmark/metrics.py`` (jayded/eraserbenchmark:
``_instances_aopc``, ``score_hard_rationale_predictions``, ``partial_match_score``, ``_auprc``,
``_score_aggregator``) and the baseline models' ``remove_tokens`` / ``regenerate_tokens``
(Eraser-Benchmark-Baseline-Models, ``soft_encoder_model.py``), which pick the tokens.

Faithfulness, on ERASER's probability scale (0..1), of the class predicted on the full input:

- at each bin b of ``BINS`` the top ceil(b * n) of a document's n tokens by saliency are taken
  (ties: the later token first, a stable argsort's last entries);
- comprehensiveness AOPC: mean over bins and documents of p(full) - p(without those tokens);
  sufficiency AOPC: the same with only those tokens kept (lower = more sufficient);
- removal ``delete``: the tokens are cut out and the document shortened (ERASER's); ``replace``:
  they stay in place, filled as the evaluation's removal curves fill (the fill's own AOPC).

Agreement of the map with the known rationale (``masks``), each document's real tokens only:

- token F1: the top-k tokens, k = the document's rationale size, against the rationale tokens;
  macro = the mean of per-document F1 (ERASER's ``instance_macro``), micro = pooled counts;
- IOU F1: the predicted and true rationales as spans (maximal runs of adjacent tokens); a
  predicted span is a match when its best intersection over union with a true span is at least
  ``IOU_THRESHOLD``; macro = F1 of the mean per-document precision and recall;
- AUPRC: per document, the area under sklearn's precision-recall curve of the soft scores
  (ERASER's ``_auprc``), and sklearn's average precision over documents holding both kinds of
  token (``_score_aggregator``).
"""
from __future__ import annotations

import numpy as np
import torch

from .imputation import Imputation, remove
from .perturbation import forward
from .statistics import bootstrap
from .units import REMOVAL_UNITS

BINS = (0.01, 0.05, 0.1, 0.2, 0.5)  # ERASER's --aopc_thresholds default
IOU_THRESHOLD = 0.5  # ERASER's --iou_thresholds default
REMOVALS = ("delete", "replace")
CURVES = tuple(f"{kind}_{r}" for r in REMOVALS for kind in ("comprehensiveness", "sufficiency"))
TOKEN = REMOVAL_UNITS["step"]  # a whole token, however the evaluation's curves remove
COUNTS = ("token_tp", "token_pred", "token_truth", "iou_tp", "iou_pred", "iou_truth")


def bin_counts(lengths: torch.Tensor, bins=BINS) -> torch.Tensor:
    """(L, B) tokens per bin: ERASER's math.ceil(len * bin), the product in float64 as Python's."""
    return torch.ceil(torch.tensor(bins, dtype=torch.float64)[:, None] * lengths.double().cpu()[None]).long()


def real_tokens(lengths: torch.Tensor, steps: int) -> torch.Tensor:
    """(B, T) True at each document's first ``lengths[b]`` tokens."""
    return torch.arange(steps, device=lengths.device) < lengths[:, None]


def top_tokens(scores: torch.Tensor, lengths: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """(B, T) True at each document's ``k[b]`` highest-scoring real tokens, as ERASER's
    ``np.argsort(attn)[-k:]`` over the real tokens, the sort stable (so ties go to the later
    token; numpy's default sort leaves their order open)."""
    B, T = scores.shape
    real = real_tokens(lengths.to(scores.device), T)
    order = torch.sort(scores.float(), dim=1, stable=True).indices
    order = order.gather(1, torch.sort(real.gather(1, order).int(), dim=1, stable=True).indices)  # padding first
    rank = torch.empty_like(order).scatter_(1, order, torch.arange(T, device=scores.device).expand(B, T))
    return real & (rank >= T - k.to(scores.device)[:, None])


def delete_tokens(x: torch.Tensor, removed: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Cuts the ``removed`` (B, T) tokens out of x (B, T, ...): the kept real tokens move to the
    front in their order, zeros (padding, which the models never read) fill the rest. Returns
    (x', the shortened lengths)."""
    keep = real_tokens(lengths.to(x.device), x.shape[1]) & ~removed
    order = torch.sort((~keep).int(), dim=1, stable=True).indices  # kept tokens first, in order
    index = order.reshape(*order.shape, *([1] * (x.dim() - 2))).expand_as(x)
    spread = keep.reshape(*keep.shape, *([1] * (x.dim() - 2)))
    return (x * spread).gather(1, index), keep.sum(dim=1)


def _replace_tokens(x, removed, lengths, imputation: Imputation, seed: int) -> torch.Tensor:
    """The ``removed`` tokens filled in place by the imputation (the removal curves' fill)."""
    score = (~removed).float().reshape(TOKEN.score_shape(x))  # exactly the removed ones rank lowest
    return remove(x, score, removed.sum(dim=1), imputation, unit="step", seed=seed, lengths=lengths)[0]


@torch.no_grad()
def aopc_drops(model, x: torch.Tensor, scores: torch.Tensor, lengths: torch.Tensor, logits: torch.Tensor,
               imputation: Imputation, *, seed: int = 0, forward_batch: int = 1024) -> dict[str, torch.Tensor]:
    """{curve of ``CURVES``: (B, L) p(full) - p(altered)} of the class predicted on the full input,
    one column per bin; x (B, T, D) is the model's input (token embeddings)."""
    predicted = logits.argmax(dim=1)
    full = torch.softmax(logits.float(), dim=1).gather(1, predicted[:, None])
    real = real_tokens(lengths.to(x.device), x.shape[1])
    counts = bin_counts(lengths).to(x.device)
    top = torch.stack([top_tokens(scores, lengths, k) for k in counts])  # (L, B, T)
    removed = {"comprehensiveness": top, "sufficiency": real & ~top}
    L, B = counts.shape
    out = {}
    for curve in CURVES:
        kind, how = curve.split("_")
        rows = removed[kind].reshape(L * B, -1)
        xs, ls = x.repeat(L, *([1] * (x.dim() - 1))), lengths.repeat(L)
        if how == "delete":
            xs, ls = delete_tokens(xs, rows, ls)
        else:
            xs = _replace_tokens(xs, rows, ls, imputation, seed)
        p = torch.softmax(forward(model, xs, forward_batch, ls).float(), dim=1).gather(1, predicted.repeat(L)[:, None])
        out[curve] = (full - p.view(L, B).T).cpu()
    return out


def spans(flags) -> list[tuple[int, int]]:
    """[start, end) of each maximal run of True in a 1-D sequence of flags."""
    f = np.concatenate([[False], np.asarray(flags, dtype=bool), [False]])
    edges = np.flatnonzero(f[1:] != f[:-1])
    return list(zip(edges[::2].tolist(), edges[1::2].tolist()))


def iou_matches(pred: list[tuple[int, int]], truth: list[tuple[int, int]], threshold: float = IOU_THRESHOLD) -> int:
    """Predicted spans whose best IOU with a true span is >= ``threshold`` (partial_match_score)."""
    def iou(p, t):
        inter = max(0, min(p[1], t[1]) - max(p[0], t[0]))
        union = (p[1] - p[0]) + (t[1] - t[0]) - inter
        return 0.0 if union == 0 else inter / union
    return sum(max((iou(p, t) for t in truth), default=0.0) >= threshold for p in pred)


def soft_scores(scores: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """One document's (area under the precision-recall curve, average precision); the latter NaN
    where every token is of one kind (ERASER discards those), the former NaN where no token is
    in the rationale (sklearn's recall is 0/0 there)."""
    from sklearn.metrics import auc, average_precision_score, precision_recall_curve  # ~1 s of imports: here

    t = truth.astype(int)
    if not t.any():
        return float("nan"), float("nan")
    precision, recall, _ = precision_recall_curve(t, scores)
    ap = float(average_precision_score(t, scores)) if not t.all() else float("nan")
    return float(auc(recall, precision)), ap


def agreement(scores: torch.Tensor, truth: torch.Tensor, lengths: torch.Tensor) -> dict[str, np.ndarray]:
    """Per document: the token and span counts of ``COUNTS`` (prediction: the top-k tokens, k the
    rationale's size) and the soft scores' "auprc" and "average_precision", over its real tokens."""
    truth = truth.to(scores.device) & real_tokens(lengths.to(scores.device), scores.shape[1])
    pred = top_tokens(scores, lengths, truth.sum(dim=1))
    s, t, p = scores.float().cpu().numpy(), truth.cpu().numpy(), pred.cpu().numpy()
    out = {k: np.zeros(len(s), dtype=np.int64) for k in COUNTS}
    out["auprc"], out["average_precision"] = np.zeros(len(s)), np.zeros(len(s))
    for i, n in enumerate(lengths.tolist()):
        ps, ts = spans(p[i, :n]), spans(t[i, :n])
        row = (int((p[i] & t[i]).sum()), int(p[i].sum()), int(t[i].sum()), iou_matches(ps, ts), len(ps), len(ts))
        for k, v in zip(COUNTS, row):
            out[k][i] = v
        out["auprc"][i], out["average_precision"][i] = soft_scores(s[i, :n], t[i, :n])
    return out


def score_batch(model, x: torch.Tensor, scores: torch.Tensor, truth: torch.Tensor, lengths: torch.Tensor | None,
                logits: torch.Tensor, imputation: Imputation, *, seed: int,
                forward_batch: int | None) -> dict[str, np.ndarray]:
    """Every per-document value of one batch: the AOPC drops (B, L) and the agreement counts."""
    if lengths is None:
        lengths = torch.full((x.shape[0],), x.shape[1], dtype=torch.int64, device=x.device)
    drops = aopc_drops(model, x, scores, lengths, logits, imputation, seed=seed, forward_batch=forward_batch)
    return {**{k: v.numpy() for k, v in drops.items()}, **agreement(scores, truth, lengths)}


def concat(batches: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {k: np.concatenate([b[k] for b in batches]) for k in batches[0]}


def _f1(p: float, r: float) -> float:
    return 0.0 if p == 0 or r == 0 else 2 * p * r / (p + r)


def _ratio(a, b) -> np.ndarray:
    """a / b where b > 0, else 0 (ERASER's value for an empty prediction or truth)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return np.divide(a, b, out=np.zeros_like(a), where=b > 0)


def token_f1(v: dict[str, np.ndarray]) -> dict[str, float]:
    """score_hard_rationale_predictions on tokens: macro over the documents with a rationale or a
    prediction, micro over their pooled tokens."""
    has = (v["token_pred"] > 0) | (v["token_truth"] > 0)
    tp, pred, truth = v["token_tp"][has], v["token_pred"][has], v["token_truth"][has]
    p, r = _ratio(tp, pred), _ratio(tp, truth)
    macro = float(np.mean([_f1(a, b) for a, b in zip(p, r)])) if has.any() else float("nan")
    micro = _f1(float(_ratio(tp.sum(), pred.sum())), float(_ratio(tp.sum(), truth.sum())))
    return {"token_f1": macro, "token_f1_micro": micro}


def iou_f1(v: dict[str, np.ndarray]) -> dict[str, float]:
    """partial_match_score at ``IOU_THRESHOLD``: macro precision over the documents with a predicted
    span, macro recall over those with a true span; micro over the pooled spans."""
    tp, pred, truth = v["iou_tp"], v["iou_pred"], v["iou_truth"]
    macro_p = float(_ratio(tp, pred)[pred > 0].mean()) if (pred > 0).any() else 0.0
    macro_r = float(_ratio(tp, truth)[truth > 0].mean()) if (truth > 0).any() else 0.0
    micro = _f1(float(_ratio(tp.sum(), truth.sum())), float(_ratio(tp.sum(), pred.sum())))
    return {"iou_f1": _f1(macro_r, macro_p), "iou_f1_micro": micro}


def _nanmean(v: np.ndarray) -> float:
    return float(np.nanmean(v)) if np.isfinite(v).any() else float("nan")


def summarise_checkpoint(v: dict[str, np.ndarray]) -> dict[str, float]:
    """One checkpoint's ERASER numbers from its per-document values."""
    out = {curve: float(v[curve].mean()) for curve in CURVES}
    out.update(token_f1(v), **iou_f1(v), auprc=_nanmean(v["auprc"]),
               average_precision=_nanmean(v["average_precision"]))
    return out


def summarise(checkpoints: list[dict[str, dict[str, np.ndarray]]], config) -> dict:
    """{method: {number: value}} of one model, the mean over its checkpoints; each AOPC as
    {"mean", "lo", "hi", "points"} (bootstrap over documents of the per-document mean over
    checkpoints; points: one value per bin)."""
    out = {}
    for method in checkpoints[0]:
        runs = [c[method] for c in checkpoints]
        numbers = [summarise_checkpoint(r) for r in runs]
        entry = {k: float(np.mean([n[k] for n in numbers])) for k in numbers[0] if k not in CURVES}
        drops = np.stack([np.mean([r[curve] for r in runs], axis=0) for curve in CURVES], axis=1)  # (N, C, L)
        mean, lo, hi = bootstrap(drops.mean(axis=2), resamples=config.bootstrap, confidence=config.confidence,
                                 seed=config.seed)
        for i, curve in enumerate(CURVES):
            entry[curve] = {"mean": float(mean[i]), "lo": float(lo[i]), "hi": float(hi[i]),
                            "points": drops[:, i].mean(axis=0).tolist()}
        out[method] = entry
    return out


HEADINGS = {"comprehensiveness_delete": "Comprehensiveness (deleted)",
            "sufficiency_delete": "Sufficiency (deleted)",
            "comprehensiveness_replace": "Comprehensiveness (replaced)",
            "sufficiency_replace": "Sufficiency (replaced)"}
AGREEMENT = ("token_f1", "token_f1_micro", "iou_f1", "iou_f1_micro", "auprc", "average_precision")


def csv_rows(results: dict) -> tuple[list[str], list[list]]:
    """eraser.csv: one row per model x saliency method."""
    header = ["model", "method"] + [f"{c}_{k}" for c in CURVES for k in ("mean", "lo", "hi")] + list(AGREEMENT)
    rows = [[name, m] + [f"{e[c][k]:.4f}" for c in CURVES for k in ("mean", "lo", "hi")]
            + [f"{e[k]:.4f}" for k in AGREEMENT]
            for name, entry in results["models"].items() for m, e in entry.get("eraser", {}).items()]
    return header, rows


def markdown_table(results: dict) -> list[str]:
    """The report's ERASER section (nothing when no model has ERASER numbers)."""
    rows = [(name, m, e) for name, entry in results["models"].items() for m, e in entry.get("eraser", {}).items()]
    if not rows:
        return []
    conf = f"{100 * results['bootstrap']['confidence']:g}%"
    lines = ["## ERASER (DeYoung et al. 2020): faithfulness and agreement with the rationale", "",
             f"AOPC over the top {', '.join(f'{100 * b:g}%' for b in BINS)} of each document's tokens, drop of the "
             f"probability (0..1) of the class predicted on the full input [{conf} bootstrap interval]; tokens "
             "deleted (the document shortened, ERASER's) or replaced by the evaluation's fill. Comprehensiveness: "
             "higher = better; sufficiency: lower = better. Token F1 and IOU F1 (IOU >= 0.5): the top-k tokens "
             "(k = the rationale's size), macro over documents; AUPRC: of the soft scores, per document. "
             "`random`: i.i.d. uniform scores (chance).", "",
             "| Model | Saliency | " + " | ".join(HEADINGS[c] for c in CURVES) + " | Token F1 | IOU F1 | AUPRC |",
             "|---|---|" + "---|" * (len(CURVES) + 3)]
    for name, m, e in rows:
        cells = [f"{e[c]['mean']:.3f} [{e[c]['lo']:.3f}, {e[c]['hi']:.3f}]" for c in CURVES]
        cells += [f"{e[k]:.3f}" for k in ("token_f1", "iou_f1", "auprc")]
        lines.append(f"| {name} | {m} | " + " | ".join(cells) + " |")
    return lines + [""]
