"""smoot_ext.models: shapes, the paper CNN's layers, DeiT-tiny's weight handling, errors."""
import pytest
import torch
from torch import nn

from smoot_ext.models import PaperCNN, build_model


@pytest.mark.parametrize("name", ["cnn", "resnet"])
@pytest.mark.parametrize("channels,size", [(1, 8), (1, 28), (3, 32)])
def test_logits_shape_and_gradient(name, channels, size):
    torch.manual_seed(0)
    model = build_model(name, channels, 7, size)
    x = torch.randn(3, channels, size, size, requires_grad=True)
    out = model(x)
    assert out.shape == (3, 7)
    out.sum().backward()
    assert x.grad.abs().sum() > 0


def test_cnn_is_the_papers():
    m = build_model("cnn", 1, 10, 28)
    assert isinstance(m, PaperCNN)
    convs = [l for l in m.modules() if isinstance(l, nn.Conv2d)]
    assert [(c.out_channels, c.kernel_size, c.stride) for c in convs] == [(32, (3, 3), (1, 1)), (64, (3, 3), (1, 1))]
    assert [d.p for d in m.modules() if isinstance(d, nn.Dropout)] == [0.25, 0.5]
    assert [(l.in_features, l.out_features) for l in m.modules() if isinstance(l, nn.Linear)] == \
        [(64 * 12 * 12, 128), (128, 10)]
    with pytest.raises(ValueError, match="image_size >= 6"):
        build_model("cnn", 1, 10, 5)


def test_unknown_model_and_bad_sizes_name_the_choices():
    with pytest.raises(ValueError, match="unknown model 'vgg'.*cnn, deit_tiny, resnet"):
        build_model("vgg", 1, 10, 8)
    with pytest.raises(ValueError, match="num_classes must be a positive int, got 0"):
        build_model("cnn", 1, 0, 8)


def test_deit_from_scratch_then_from_a_local_weights_file(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("SMOOT_DEIT_WEIGHTS", raising=False)
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "try_to_load_from_cache", lambda *a, **k: None)  # no cache
    with pytest.raises(RuntimeError, match="SMOOT_DEIT_WEIGHTS"):
        build_model("deit_tiny", 3, 10, 32, pretrained=True)
    torch.manual_seed(0)
    scratch = build_model("deit_tiny", 3, 10, 32)
    assert "from scratch" in capsys.readouterr().err
    inner = scratch.inner
    assert (len(inner.blocks), inner.embed_dim, inner.blocks[0].attn.num_heads) == (12, 192, 3)
    assert scratch(torch.randn(2, 3, 32, 32)).shape == (2, 10)  # resized to 224 inside

    # A weights file (as timm would load ImageNet weights): every tensor but the new head loads.
    ref = build_model("deit_tiny", 3, 1000, 32, pretrained=False).inner.state_dict()
    torch.save(ref, tmp_path / "deit.pth")
    monkeypatch.setenv("SMOOT_DEIT_WEIGHTS", str(tmp_path / "deit.pth"))
    loaded = build_model("deit_tiny", 3, 10, 32).inner.state_dict()
    assert torch.equal(loaded["blocks.0.attn.qkv.weight"], ref["blocks.0.attn.qkv.weight"])
    assert loaded["head.weight"].shape == (10, 192)
    monkeypatch.setenv("SMOOT_DEIT_WEIGHTS", str(tmp_path / "missing.pth"))
    with pytest.raises(FileNotFoundError, match="missing.pth"):
        build_model("deit_tiny", 3, 10, 32)
