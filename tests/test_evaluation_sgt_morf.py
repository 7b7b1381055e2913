"""evaluation.sgt_morf: the official SGT code's MoRF accuracy, against a transcription of its
published steps (saliency_guided_training, Scripts/Helper.py: getSalinecyAugmnetedBatch with
"Grad", get_SingleMask, fill_SingleMask with "trueMask"), on random, tied and degenerate maps."""
import pytest
import torch
from torch import nn

from smoot_ext.evaluation.sgt_morf import SGT_DROPS, morf_accuracy, random_morf_accuracy, remove_most_salient


def _published_masked_batch(model, images, targets, percentage):
    """The published steps, one image at a time, as written there (autograd for Captum's Saliency)."""
    x = images.detach().clone().requires_grad_(True)
    logits = model(x)
    grad, = torch.autograd.grad(logits.gather(1, targets[:, None]).sum(), x)
    saliency = grad.abs().mean(1).abs()
    temp = images.detach().clone()
    for i in range(temp.shape[0]):
        fattr = saliency[i]
        k = max(1, int(len(fattr) * len(fattr) * percentage))
        _, idx = torch.topk(fattr.flatten(), k, largest=True)
        mask = torch.zeros_like(fattr.flatten(), dtype=torch.bool)
        mask[idx] = True
        mask = mask.reshape(fattr.shape)
        image = temp[i]
        channels, num_masks = image.shape[0], mask.sum()
        mask = mask.repeat(channels, 1, 1)
        value = image[0, 0, 0]
        image[mask] = value.repeat(num_masks).reshape(num_masks, -1).T.flatten()
        temp[i] = image
    return temp


def _published_accuracy(model, images, targets, drops):
    out = []
    for d in drops:
        masked = images if d == 0 else _published_masked_batch(model, images, targets, d / 100.0)
        with torch.no_grad():
            out.append(100.0 * (model(masked).argmax(1) == targets).sum().item() / len(targets))
    return out


class Sparse(nn.Module):
    """Reads only the left half of the image: the right half's saliency is exactly 0 (ties)."""

    def __init__(self, size=8):
        super().__init__()
        torch.manual_seed(3)
        self.linear = nn.Linear(size * size, 10)
        with torch.no_grad():
            self.linear.weight.view(10, size, size)[:, :, size // 2:] = 0

    def forward(self, x):
        return self.linear(torch.tanh(x.flatten(1)))


def _cnn():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 64, 10)).eval()


@pytest.mark.parametrize("make_model", [_cnn, lambda: Sparse().eval()], ids=["cnn", "ties"])
@pytest.mark.parametrize("images", ["random", "background", "constant"])
def test_port_equals_the_published_steps(make_model, images):
    model = make_model()
    g = torch.Generator().manual_seed(1)
    x = torch.rand(40, 1, 8, 8, generator=g)
    if images == "background":  # a blank border, as MNIST's: the fill value is 0
        x[:, :, :2] = 0
    elif images == "constant":  # every pixel alike
        x = torch.full_like(x, 0.3)
    y = torch.randint(0, 10, (40,), generator=g)
    assert morf_accuracy(model, x, y, batch_size=16) == _published_accuracy(model, x, y, SGT_DROPS)
    for d in (5, 30, 90):
        sal = _published_saliency(model, x, y)
        assert torch.equal(remove_most_salient(x, sal, d / 100), _published_masked_batch(model, x, y, d / 100))


def _published_saliency(model, x, y):
    x = x.detach().clone().requires_grad_(True)
    grad, = torch.autograd.grad(model(x).gather(1, y[:, None]).sum(), x)
    return grad.abs().mean(1).abs()


def test_k_is_at_least_one_pixel_and_rounds_down():
    x = torch.arange(64, dtype=torch.float32).reshape(1, 1, 8, 8) + 1
    sal = x[:, 0]
    one = remove_most_salient(x, sal, 0.001)  # int(0.064) = 0, so one pixel
    assert (one != x).sum() == 1 and one[0, 0, 7, 7] == x[0, 0, 0, 0]
    assert (remove_most_salient(x, sal, 0.3) != x).sum() == 19  # int(19.2)


def test_chance_level_and_bad_input():
    model, g = _cnn(), torch.Generator().manual_seed(2)
    x, y = torch.rand(30, 1, 8, 8, generator=g), torch.randint(0, 10, (30,), generator=g)
    chance = random_morf_accuracy(model, x, y, seed=4)
    assert chance[0] == morf_accuracy(model, x, y)[0] and chance == random_morf_accuracy(model, x, y, seed=4)
    with pytest.raises(ValueError, match="model: expected eval mode"):
        morf_accuracy(model.train(), x, y)
    with pytest.raises(ValueError, match=r"x: expected \(N, 1, H, H\) images"):
        morf_accuracy(model.eval(), torch.rand(2, 3, 8, 8), y[:2])


def test_the_script_scores_checkpoints_beside_chance(tmp_path):
    import importlib.util
    import json
    from pathlib import Path

    from smoot_ext.cli import train as train_cli

    for seed in (0, 1):
        assert train_cli.main(["--epochs", "1", "--subset", "200", "--test-subset", "60", "--threads", "1",
                               "--no-progress", "--seed", str(seed), "--out", str(tmp_path / f"s{seed}")]) == 0
    spec = importlib.util.spec_from_file_location("sgt_morf", Path(__file__).parents[1] / "scripts" / "sgt_morf.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    paths = ",".join(str(tmp_path / f"s{s}" / "checkpoint.pt") for s in (0, 1))
    assert script.main(["--checkpoints", f"smoot={paths}", "--num-test", "50", "--out", str(tmp_path / "m")]) == 0
    m = json.loads((tmp_path / "m.json").read_text())["models"]["smoot"]
    assert len(m["curves"]) == 2 and len(m["mean"]) == len(SGT_DROPS) == len(m["chance_mean"])
    assert m["mean"][0] == m["chance_mean"][0]  # nothing removed: the clean accuracy both ways
    lo, hi = m["mean_interval"]
    assert all(a <= v <= b for a, v, b in zip(lo, m["mean"], hi))
    assert (tmp_path / "m.csv").read_text().splitlines()[0].startswith("model,curve,drop0,drop10")
