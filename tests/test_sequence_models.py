"""smoot_ext.models' sequence classifiers: shapes, input gradients, padding never reaching the
logits, errors."""
import importlib.util

import pytest
import torch

from smoot_ext.models import SEQUENCE_MODELS, build_model

NO_HF = pytest.mark.skipif(importlib.util.find_spec("transformers") is None, reason="needs the [hf] extra")
NAMES = [pytest.param(n, marks=NO_HF) if n == "hf-bert" else n for n in SEQUENCE_MODELS]
SERIES = [n for n in SEQUENCE_MODELS if n != "hf-bert"]  # the Hugging Face model takes text only


@pytest.mark.parametrize("name", SERIES)
def test_series_logits_and_input_gradient(name):
    torch.manual_seed(0)
    model = build_model(name, 5, 3, 12).eval()
    x = torch.randn(4, 12, 5, requires_grad=True)
    out = model(x)
    assert out.shape == (4, 3)
    out[:, 0].sum().backward()
    assert x.grad.shape == x.shape and x.grad.abs().sum() > 0


@pytest.mark.parametrize("name", NAMES)
def test_padding_never_reaches_the_logits(name):
    torch.manual_seed(0)
    model = build_model(name, 1, 2, 10, vocab_size=20).eval()
    ids = torch.randint(1, 20, (4, 10))
    lengths = torch.tensor([10, 1, 4, 7])
    other = ids.clone()
    other[torch.arange(10) >= lengths[:, None]] = 13  # anything at the padded steps
    with torch.no_grad():
        a, b = model(ids, lengths), model(other, lengths)
        full = model(ids)
    torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
    assert not torch.allclose(a[1:], full[1:]), "lengths were ignored"
    # ids and their embeddings are the same call
    torch.testing.assert_close(model(model.embed(ids), lengths), a, rtol=0, atol=1e-6)
    with torch.no_grad():
        assert torch.isfinite(model(ids, torch.tensor([0, 3, 10, 1]))).all(), "an empty row gave NaN"


def test_errors_name_the_argument():
    series = build_model("lstm", 5, 2, 8)
    with pytest.raises(ValueError, match=r"x: expected \(B, T, 5\) input, got shape \(2, 8, 4\)"):
        series(torch.randn(2, 8, 4))
    with pytest.raises(ValueError, match="x: this model takes float"):
        series(torch.zeros(2, 8, dtype=torch.long))
    with pytest.raises(ValueError, match="vocab_size: model 'cnn' takes images"):
        build_model("cnn", 1, 2, 8, vocab_size=10)
    with pytest.raises(ValueError, match="x: expected at most 8 steps, got 9"):
        build_model("transformer", 5, 2, 8)(torch.randn(1, 9, 5))
    with pytest.raises(ValueError, match="model: 'hf-bert' takes token ids"):  # before transformers is needed
        build_model("hf-bert", 5, 2, 8)
