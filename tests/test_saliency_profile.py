"""scripts/saliency_profile.py: the gradient's split by the box, on models whose gradient is known."""
import sys
from pathlib import Path

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import saliency_profile  # noqa: E402

sys.path.pop(0)


class Weighted(nn.Module):
    """logits (s, -s) with s = sum of w * x: d logit_y / d x = +-w, |gradient| = |w| everywhere."""

    def __init__(self, w: torch.Tensor):
        super().__init__()
        self.w = nn.Parameter(w)

    def forward(self, x):
        s = (x * self.w).sum(dim=(1, 2))
        return torch.stack([s, -s], dim=1)


def test_the_split_follows_the_weights_in_and_out_of_the_box():
    n, T, F = 6, 5, 4
    box = torch.zeros(n, T, F, dtype=torch.bool)
    box[:, 1:3, 2:4] = True  # 4 of 20 elements, not symmetric in time and features
    w = torch.full((T, F), 0.5)
    w[1:3, 2:4] = 2.0
    x, y = torch.randn(n, T, F), torch.tensor([0, 1, 0, 1, 1, 0])
    out = saliency_profile.profile(Weighted(w), x, y, box, batch=4)  # two batches
    assert torch.allclose(out["map"], w)
    assert out["in_box"] == 2.0 and out["out_of_box"] == 0.5 and abs(out["box_share"] - 0.2) < 1e-6
    assert abs(out["gradient_share_in_box"] - 8.0 / (8.0 + 8.0)) < 1e-6  # 4 x 2.0 against 16 x 0.5
    # The transpose of the box would split the same map differently: the axes are not mixed up.
    swapped = torch.zeros(n, T, F, dtype=torch.bool)
    swapped[:, 2:4, 1:3] = True
    assert saliency_profile.profile(Weighted(w), x, y, swapped)["in_box"] < 2.0
