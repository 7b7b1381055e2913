"""ERASER's measures (smoot_ext.evaluation.eraser) against a literal transcription of the
published functions, on adversarial documents: tied and all-zero scores, one-token documents,
adjacent rationale tokens, padding beyond each length."""
from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from itertools import chain

import numpy as np
import pytest
import torch
from sklearn.metrics import auc, average_precision_score, precision_recall_curve

from smoot_ext.evaluation import EvalConfig
from smoot_ext.evaluation import eraser as E
from smoot_ext.evaluation.imputation import Imputation
from smoot_ext.evaluation.runner import evaluate_checkpoints
from smoot_ext.models import build_model

# --- transcription -------------------------------------------------------------------------------
# jayded/eraserbenchmark, rationale_benchmark/metrics.py (commit 3ae7641a): Rationale,
# _f1, _keyed_rationale_from_list, partial_match_score, score_hard_rationale_predictions,
# _auprc, _score_aggregator and _instances_aopc as published (logging and unused fields left
# out). The token choice is Eraser-Benchmark-Baseline-Models' remove_tokens / regenerate_tokens
# (Rationale_model/models/classifiers/soft_encoder_model.py), with np.argsort's kind pinned to
# "stable": the published default sort leaves the order of tied scores open.


@dataclass(eq=True, frozen=True)
class Rationale:
    ann_id: str
    docid: str
    start_token: int
    end_token: int

    def to_token_level(self):
        ret = []
        for t in range(self.start_token, self.end_token):
            ret.append(Rationale(self.ann_id, self.docid, t, t + 1))
        return ret


def _f1(_p, _r):
    if _p == 0 or _r == 0:
        return 0
    return 2 * _p * _r / (_p + _r)


def _keyed_rationale_from_list(rats):
    ret = defaultdict(set)
    for r in rats:
        ret[(r.ann_id, r.docid)].add(r)
    return ret


def partial_match_score(truth, pred, thresholds):
    ann_to_rat = _keyed_rationale_from_list(truth)
    pred_to_rat = _keyed_rationale_from_list(pred)

    num_classifications = {k: len(v) for k, v in pred_to_rat.items()}
    num_truth = {k: len(v) for k, v in ann_to_rat.items()}
    ious = defaultdict(dict)
    for k in set(ann_to_rat.keys()) | set(pred_to_rat.keys()):
        for p in pred_to_rat.get(k, []):
            best_iou = 0.0
            for t in ann_to_rat.get(k, []):
                num = len(set(range(p.start_token, p.end_token)) & set(range(t.start_token, t.end_token)))
                denom = len(set(range(p.start_token, p.end_token)) | set(range(t.start_token, t.end_token)))
                iou = 0 if denom == 0 else num / denom
                if iou > best_iou:
                    best_iou = iou
            ious[k][p] = best_iou
    scores = []
    for threshold in thresholds:
        threshold_tps = dict()
        for k, vs in ious.items():
            threshold_tps[k] = sum(int(x >= threshold) for x in vs.values())
        micro_r = sum(threshold_tps.values()) / sum(num_truth.values()) if sum(num_truth.values()) > 0 else 0
        micro_p = sum(threshold_tps.values()) / sum(num_classifications.values()) if sum(num_classifications.values()) > 0 else 0  # noqa: E501
        micro_f1 = _f1(micro_r, micro_p)
        macro_rs = list(threshold_tps.get(k, 0.0) / n if n > 0 else 0 for k, n in num_truth.items())
        macro_ps = list(threshold_tps.get(k, 0.0) / n if n > 0 else 0 for k, n in num_classifications.items())
        macro_r = sum(macro_rs) / len(macro_rs) if len(macro_rs) > 0 else 0
        macro_p = sum(macro_ps) / len(macro_ps) if len(macro_ps) > 0 else 0
        macro_f1 = _f1(macro_r, macro_p)
        scores.append({'threshold': threshold,
                       'micro': {'p': micro_p, 'r': micro_r, 'f1': micro_f1},
                       'macro': {'p': macro_p, 'r': macro_r, 'f1': macro_f1}})
    return scores


def score_hard_rationale_predictions(truth, pred):
    scores = dict()
    truth = set(truth)
    pred = set(pred)
    micro_prec = len(truth & pred) / len(pred)
    micro_rec = len(truth & pred) / len(truth)
    micro_f1 = _f1(micro_prec, micro_rec)
    scores['instance_micro'] = {'p': micro_prec, 'r': micro_rec, 'f1': micro_f1}

    ann_to_rat = _keyed_rationale_from_list(truth)
    pred_to_rat = _keyed_rationale_from_list(pred)
    instances_to_scores = dict()
    for k in set(ann_to_rat.keys()) | (pred_to_rat.keys()):
        if len(pred_to_rat.get(k, set())) > 0:
            instance_prec = len(ann_to_rat.get(k, set()) & pred_to_rat.get(k, set())) / len(pred_to_rat[k])
        else:
            instance_prec = 0
        if len(ann_to_rat.get(k, set())) > 0:
            instance_rec = len(ann_to_rat.get(k, set()) & pred_to_rat.get(k, set())) / len(ann_to_rat[k])
        else:
            instance_rec = 0
        instance_f1 = _f1(instance_prec, instance_rec)
        instances_to_scores[k] = {'p': instance_prec, 'r': instance_rec, 'f1': instance_f1}
    macro_prec = sum(instance['p'] for instance in instances_to_scores.values()) / len(instances_to_scores)
    macro_rec = sum(instance['r'] for instance in instances_to_scores.values()) / len(instances_to_scores)
    macro_f1 = sum(instance['f1'] for instance in instances_to_scores.values()) / len(instances_to_scores)
    scores['instance_macro'] = {'p': macro_prec, 'r': macro_rec, 'f1': macro_f1}
    return scores


def _auprc(truth, preds):
    if len(preds) == 0:
        return 0.0
    assert len(truth.keys() and preds.keys()) == len(truth.keys())
    aucs = []
    for k, true in truth.items():
        pred = preds[k]
        true = [int(t) for t in true]
        precision, recall, _ = precision_recall_curve(true, pred)
        aucs.append(auc(recall, precision))
    return np.average(aucs)


def _score_aggregator(truth, preds, score_function, discard_single_class_answers):
    if len(preds) == 0:
        return 0.0
    assert len(truth.keys() and preds.keys()) == len(truth.keys())
    scores = []
    for k, true in truth.items():
        pred = preds[k]
        if (all(true) or all(not x for x in true)) and discard_single_class_answers:
            continue
        true = [int(t) for t in true]
        scores.append(score_function(true, pred))
    return np.average(scores)


def _instances_aopc(instances, thresholds, key):
    dataset_scores = []
    for inst in instances:
        kls = inst['classification']
        beta_0 = inst['classification_scores'][kls]
        instance_scores = []
        for score in filter(lambda x: x['threshold'] in thresholds, sorted(inst['thresholded_scores'], key=lambda x: x['threshold'])):  # noqa: E501
            beta_k = score[key][kls]
            delta = beta_0 - beta_k
            instance_scores.append(delta)
        assert len(instance_scores) == len(thresholds)
        dataset_scores.append(instance_scores)
    dataset_scores = np.array(dataset_scores)
    final_score = np.average(dataset_scores)
    position_scores = np.average(dataset_scores, axis=0).tolist()
    return final_score, position_scores


def remove_tokens(sentence, attn, threshold):
    max_length = math.ceil(len(sentence) * threshold)
    top_ind = np.argsort(attn, kind="stable")[:-max_length]
    return [x for i, x in enumerate(sentence) if i in top_ind]


def regenerate_tokens(sentence, attn, threshold):
    max_length = math.ceil(len(sentence) * threshold)
    top_ind = np.argsort(attn, kind="stable")[-max_length:]
    return [x for i, x in enumerate(sentence) if i in top_ind]


# --- adversarial documents -----------------------------------------------------------------------

T = 33
LENGTHS = [1, 2, 7, 30, 33, 10, 21, 5]


def _documents(seed: int = 0):
    """(ids (B, T), scores (B, T), truth (B, T), lengths): scores tied in few values, one row all
    zeros, padding holding the highest scores and random rationales with adjacent tokens."""
    g = torch.Generator().manual_seed(seed)
    lengths = torch.tensor(LENGTHS)
    B = len(LENGTHS)
    real = torch.arange(T) < lengths[:, None]
    ids = torch.randint(1, 20, (B, T), generator=g).masked_fill(~real, 0)
    scores = torch.randint(0, 4, (B, T), generator=g).float()
    scores[2] = 0.0
    scores[~real] = 99.0
    truth = (torch.rand(B, T, generator=g) < 0.3) & real
    truth[0, 0] = True  # the one-token document is all rationale
    truth[3, 4:8] = True  # a span of four
    return ids, scores, truth, lengths


def _doc(t: torch.Tensor, b: int, n: int) -> list:
    return t[b, :n].tolist()


# --- the token choice and the removal ------------------------------------------------------------

def test_bins_take_the_ceil_of_the_fraction_as_eraser():
    lengths = torch.arange(0, 300)
    assert E.bin_counts(lengths).tolist() == [[math.ceil(n * b) for n in lengths.tolist()] for b in E.BINS]
    # a product that float64 rounds up (0.07 * 100 = 7.000000000000001) is rounded up as in Python
    assert E.bin_counts(torch.tensor([100]), (0.07,)).item() == math.ceil(0.07 * 100) == 8


def test_deleted_and_kept_tokens_are_remove_tokens_and_regenerate_tokens():
    ids, scores, _, lengths = _documents()
    for b_i, b in enumerate(E.BINS):
        top = E.top_tokens(scores, lengths, E.bin_counts(lengths)[b_i])
        real = E.real_tokens(lengths, T)
        for removed, published in ((top, remove_tokens), (real & ~top, regenerate_tokens)):
            out, kept = E.delete_tokens(ids, removed, lengths)
            for i, n in enumerate(LENGTHS):
                want = published(_doc(ids, i, n), scores[i, :n].numpy(), b)
                assert out[i, :kept[i]].tolist() == want, (b, i)
                assert (out[i, kept[i]:] == 0).all()


def test_deletion_moves_embeddings_with_their_tokens():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(2, 5, 4, generator=g)
    removed = torch.tensor([[True, False, True, False, False], [False] * 5])
    out, kept = E.delete_tokens(x, removed, torch.tensor([5, 3]))
    assert kept.tolist() == [3, 3]
    assert torch.equal(out[0, :3], x[0, [1, 3, 4]]) and torch.equal(out[1, :3], x[1, :3])
    assert (out[0, 3:] == 0).all() and (out[1, 3:] == 0).all()


def test_top_tokens_leave_padding_out_and_take_none_for_k_zero():
    scores = torch.tensor([[1.0, 1.0, 9.0, 9.0]])
    assert E.top_tokens(scores, torch.tensor([2]), torch.tensor([1])).tolist() == [[False, True, False, False]]
    assert not E.top_tokens(scores, torch.tensor([2]), torch.tensor([0])).any()


# --- AOPC ----------------------------------------------------------------------------------------

def _model(seed: int = 0):
    torch.manual_seed(seed)
    return build_model("bilstm", 1, 2, T, vocab_size=20).eval()


def _published_instances(model, ids, scores, lengths):
    """ERASER's result instances, each document (and each altered one) embedded and run on its
    own, its tokens chosen by the published functions; zeros pad it (an empty document is zeros)."""
    def probs(tokens):
        x = torch.cat([model.embed(torch.tensor(tokens, dtype=torch.long)), torch.zeros(T - len(tokens), 64)])
        with torch.no_grad():
            p = torch.softmax(model(x[None], lengths=torch.tensor([len(tokens)])), dim=1)[0]
        return {str(c): float(v) for c, v in enumerate(p)}

    instances = []
    for i, n in enumerate(lengths.tolist()):
        doc, attn = _doc(ids, i, n), scores[i, :n].numpy()
        full = probs(doc)
        instances.append({"classification": max(full, key=full.get), "classification_scores": full,
                          "thresholded_scores": [
                              {"threshold": b,
                               "comprehensiveness_classification_scores": probs(remove_tokens(doc, attn, b)),
                               "sufficiency_classification_scores": probs(regenerate_tokens(doc, attn, b))}
                              for b in E.BINS]})
    return instances


def test_aopc_with_deletion_is_instances_aopc():
    model = _model()
    ids, scores, _, lengths = _documents(1)
    x = model.embed(ids).detach()
    with torch.no_grad():
        logits = model(x, lengths=lengths)
    got = E.aopc_drops(model, x, scores, lengths, logits, Imputation("uniform"), forward_batch=64)
    instances = _published_instances(model, ids, scores, lengths)
    for curve, key in (("comprehensiveness_delete", "comprehensiveness_classification_scores"),
                       ("sufficiency_delete", "sufficiency_classification_scores")):
        final, points = _instances_aopc(instances, list(E.BINS), key)
        assert got[curve].double().mean().item() == pytest.approx(final, abs=1e-6)
        assert got[curve].double().mean(0).tolist() == pytest.approx(points, abs=1e-6)


def test_aopc_with_replacement_fills_the_chosen_tokens_in_place():
    model = _model(1)
    ids, scores, _, lengths = _documents(2)
    x = model.embed(ids).detach()
    with torch.no_grad():
        logits = model(x, lengths=lengths)
    got = E.aopc_drops(model, x, scores, lengths, logits, Imputation("constant", (0.0,)), forward_batch=64)
    predicted = logits.argmax(1)
    p0 = torch.softmax(logits, 1).gather(1, predicted[:, None])[:, 0]
    real = E.real_tokens(lengths, T)
    for b_i, k in enumerate(E.bin_counts(lengths)):
        top = E.top_tokens(scores, lengths, k)
        for curve, removed in (("comprehensiveness_replace", top), ("sufficiency_replace", real & ~top)):
            with torch.no_grad():
                logits_k = model(x * ~removed[..., None], lengths=lengths)
            p = torch.softmax(logits_k, 1).gather(1, predicted[:, None])[:, 0]
            assert got[curve][:, b_i].tolist() == pytest.approx((p0 - p).tolist(), abs=1e-6)


# --- agreement -----------------------------------------------------------------------------------

def _published_agreement(scores, truth, lengths):
    """Token F1, IOU F1 (0.5), AUPRC and average precision as ERASER scores hard predictions
    (spans of the top-k tokens, k = the rationale's size, chosen as regenerate_tokens does) and
    soft ones, over the documents with a rationale."""
    gold, pred, soft_t, soft_p = [], [], {}, {}
    for i, n in enumerate(lengths.tolist()):
        t = truth[i, :n].numpy()
        if not t.any():
            continue
        k = int(t.sum())
        top = set(np.argsort(scores[i, :n].numpy(), kind="stable")[-k:].tolist())
        gold += [Rationale(str(i), "d", s, e) for s, e in E.spans(t)]
        pred += [Rationale(str(i), "d", s, e) for s, e in E.spans([j in top for j in range(n)])]
        soft_t[str(i)], soft_p[str(i)] = t.tolist(), scores[i, :n].tolist()
    tokens = score_hard_rationale_predictions(list(chain.from_iterable(r.to_token_level() for r in gold)),
                                              list(chain.from_iterable(r.to_token_level() for r in pred)))
    iou = partial_match_score(gold, pred, [0.5])[0]
    return {"token_f1": tokens["instance_macro"]["f1"], "token_f1_micro": tokens["instance_micro"]["f1"],
            "iou_f1": iou["macro"]["f1"], "iou_f1_micro": iou["micro"]["f1"], "auprc": _auprc(soft_t, soft_p),
            "average_precision": _score_aggregator(soft_t, soft_p, average_precision_score, True)}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_agreement_is_erasers_token_f1_iou_f1_and_auprc(seed):
    _, scores, truth, lengths = _documents(seed)
    truth[5] = False  # a document without a rationale: no prediction either, left out
    got = E.summarise_checkpoint({**E.agreement(scores, truth, lengths),
                                  **{c: np.zeros((len(LENGTHS), len(E.BINS))) for c in E.CURVES}})
    want = _published_agreement(scores, truth, lengths)
    for key, value in want.items():
        assert got[key] == pytest.approx(value, abs=1e-12), key


def test_a_perfect_map_agrees_fully_and_a_reversed_one_hardly():
    _, _, truth, lengths = _documents()

    def numbers(scores):
        return E.summarise_checkpoint({**E.agreement(scores, truth, lengths),
                                       **{c: np.zeros((1, 1)) for c in E.CURVES}})

    perfect, reversed_ = numbers(truth.float()), numbers(-truth.float())
    for key in ("token_f1", "token_f1_micro", "iou_f1", "iou_f1_micro", "auprc", "average_precision"):
        assert perfect[key] == 1.0, key
    # only the one-token document, all rationale, is still found
    assert reversed_["token_f1"] == 1 / len(LENGTHS) and reversed_["auprc"] < 0.5


def test_spans_are_maximal_runs():
    assert E.spans([True, True, False, True, False, False, True]) == [(0, 2), (3, 4), (6, 7)]
    assert E.spans([]) == [] and E.spans([False, False]) == []


# --- the evaluation reports them -----------------------------------------------------------------

def test_evaluation_of_token_ids_reports_eraser_for_every_method_and_chance():
    model = _model(2)
    ids, _, truth, lengths = _documents(3)
    y = torch.tensor([0, 1] * 4)
    config = EvalConfig(methods=["saliency"], levels=[0.0, 0.5], unit="step", progress=False, bootstrap=50)
    per_image, _ = evaluate_checkpoints({"a": [model, _model(3)]}, [(ids[:5], y[:5], truth[:5], lengths[:5]),
                                                                    (ids[5:], y[5:], truth[5:], lengths[5:])], config)
    runs = per_image.eraser["a"]
    assert len(runs) == 2 and list(runs[0]) == ["saliency", "random"]
    assert runs[0]["saliency"]["comprehensiveness_delete"].shape == (8, len(E.BINS))
    assert runs[0]["saliency"]["token_truth"].tolist() == truth.sum(1).tolist()
    summary = E.summarise(runs, config)
    for method in ("saliency", "random"):
        entry = summary[method]
        for curve in E.CURVES:
            assert entry[curve]["lo"] <= entry[curve]["mean"] <= entry[curve]["hi"]
            assert len(entry[curve]["points"]) == len(E.BINS)
        assert 0.0 <= entry["token_f1"] <= 1.0 and 0.0 <= entry["auprc"] <= 1.0
    results = {"models": {"a": {"eraser": summary}, "b": {}}, "bootstrap": {"confidence": 0.95}}
    table = E.markdown_table(results)
    assert table[0].startswith("## ERASER") and sum(line.startswith("| a | ") for line in table) == 2
    header, rows = E.csv_rows(results)
    assert [r[:2] for r in rows] == [["a", "saliency"], ["a", "random"]] and len(rows[0]) == len(header)
    assert E.markdown_table({"models": {"b": {}}}) == []
