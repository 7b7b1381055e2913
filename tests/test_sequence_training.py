"""Saliency-guided training on sequence models: k of each sample's own length, padding never
masked, tokens masked in embedding space, and smoot-train end to end on each new dataset."""
import importlib.util

import pytest
import torch

import smoot_ext.training.guided as guided
from smoot_ext.cli import train as train_cli
from smoot_ext.data import DATASETS, load_dataset
from smoot_ext.models import SEQUENCE_MODELS, build_model
from smoot_ext.training.checkpoint import load_model
from smoot_ext.training.guided import GuidedConfig, SaliencyGuidedTraining

FAST = ["--threads", "1", "--no-progress", "--epochs", "1", "--subset", "64", "--test-subset", "32"]


@pytest.fixture
def mask_calls(monkeypatch):
    """Every smoot_ext.mask call of the step: (x, k, lengths, unit) and its mask."""
    calls = []

    def spy(x, score, k, **kw):
        out, m = guided_mask(x, score, k, **kw)
        calls.append(dict(x=x, k=k, lengths=kw["lengths"], unit=kw["unit"], mask=m))
        return out, m

    guided_mask = guided.mask
    monkeypatch.setattr(guided, "mask", spy)
    return calls


def _text(n=32):
    b = load_dataset("text-rationale", subset=n, seed=0)
    return b, build_model("bilstm", 1, b.num_classes, b.image_size, vocab_size=b.vocab_size)


@pytest.mark.parametrize("unit", ["pixel", "feature"])
def test_sgt_masks_a_fraction_of_each_samples_own_tokens(mask_calls, unit):
    b, model = _text()
    sgt = SaliencyGuidedTraining(model, GuidedConfig(method="sgt", unit=unit, k_init=0.5), num_samples=32,
                                 input_shape=(b.image_size,), lengths=b.train.lengths)
    x, y, idx = b.train.__getitems__(list(range(32)))
    sgt.loss(x, y, idx).loss.backward()
    (call,) = mask_calls
    E = model.embed_dim
    assert call["x"].shape == (32, b.image_size, E) and call["x"].is_floating_point()  # embeddings
    per_token = 1 if unit == "pixel" else E
    assert torch.equal(call["k"], (b.train.lengths * per_token) // 2)
    assert torch.equal(call["lengths"], b.train.lengths)
    masked = call["mask"] if unit == "pixel" else call["mask"].any(2)
    assert not (masked & (torch.arange(b.image_size) >= b.train.lengths[:, None])).any()
    assert model.embedding.weight.grad.abs().sum() > 0  # the embedding trains
    own_k = ((b.train.lengths * per_token) // 2).float()
    assert sgt.k_stats() == {"min": own_k.min().item(), "median": own_k.median().item(),
                             "max": own_k.max().item(), "mean": own_k.mean().item()}
    assert sgt.k_stats()["min"] < sgt.k_stats()["max"]  # the lengths differ, so do their k


def test_smoot_k_stays_within_each_samples_bounds():
    b, model = _text()
    L = b.train.lengths
    sgt = SaliencyGuidedTraining(model, GuidedConfig(method="smoot", mu=200.0), num_samples=32,
                                 input_shape=(b.image_size,), lengths=L)
    assert torch.equal(sgt.k, L // 2)
    x, y, idx = b.train.__getitems__(list(range(32)))
    for _ in range(3):
        sgt.loss(x, y, idx)
    low, high = (0.2 * L.double()).floor().long(), (0.8 * L.double()).floor().long()
    assert ((sgt.k >= low) & (sgt.k <= high)).all()
    assert not torch.equal(sgt.k, L // 2), "k did not move (mu = 200)"


def test_lengths_and_embeddings_errors():
    b, model = _text()
    with pytest.raises(ValueError, match=r"lengths: expected one per training sample, shape \(32,\), got \(5,\)"):
        SaliencyGuidedTraining(model, GuidedConfig(), num_samples=32, input_shape=(40,), lengths=torch.ones(5))
    with pytest.raises(ValueError, match="shared_forward: expected False for a model that embeds"):
        SaliencyGuidedTraining(model, GuidedConfig(shared_forward=True), num_samples=32, input_shape=(40,))


def test_help_lists_the_sequence_datasets_and_models(capsys):
    with pytest.raises(SystemExit):
        train_cli.main(["--help"])
    text = capsys.readouterr().out
    for name in DATASETS + SEQUENCE_MODELS:
        assert name in text


@pytest.mark.parametrize("dataset, model, extra", [
    ("ts-middle", "lstm", []),
    ("ts-moving-rare-feature", "transformer", ["--unit", "feature"]),
    ("ts-rare-time", "tcn", ["--method", "sgt"]),
    ("text-rationale", "bilstm", []),
    ("text-rationale", "transformer", ["--method", "sgt", "--unit", "feature"]),
    pytest.param("text-rationale", "hf-bert", ["--method", "smoot"], marks=pytest.mark.skipif(
        importlib.util.find_spec("transformers") is None, reason="needs the [hf] extra")),
])
def test_short_runs_train_and_reload(tmp_path, dataset, model, extra):
    out = tmp_path / "run"
    assert train_cli.main(FAST + ["--dataset", dataset, "--model", model, "--out", str(out)] + extra) == 0
    trained, meta = load_model(str(out / "checkpoint.pt"))
    test = load_dataset(dataset, test_subset=32, seed=0).test
    kw = {} if test.lengths is None else {"lengths": test.lengths}
    with torch.no_grad():
        acc = (trained(test.inputs, **kw).argmax(1) == test.labels).float().mean().item()
    assert acc == pytest.approx(meta["metrics"]["test_acc"])
    assert meta["kind"] == load_dataset(dataset).kind


def test_image_model_on_sequences_names_the_fitting_ones(capsys):
    with pytest.raises(SystemExit):
        train_cli.main(FAST + ["--dataset", "ts-middle", "--model", "cnn"])
    assert "--model: dataset 'ts-middle' holds series data: expected one of lstm, bilstm, transformer, " \
           "tcn, hf-bert, got 'cnn'" in capsys.readouterr().err
