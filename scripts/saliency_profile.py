#!/usr/bin/env python
"""Where a trained series model's |gradient| goes, inside and outside the box (issue 32: why a
model's saliency localises below chance). Over the test set: the mean |d logit_y / d x| of each
(step, feature), its mean inside and outside the box, and its profile over steps and over
features, each split by whether the step (feature) lies in the box of a fixed-box shape.

    python scripts/saliency_profile.py runs/seq/ts-middle-tcn/baseline/seed0/checkpoint.pt \\
        --out docs/results/seq/profiles/ts-middle-tcn-baseline

writes <out>.json and <out>.png (the mean |gradient| map, the box outlined, and the two profiles).
"""
import argparse
import json
from pathlib import Path

import torch

from smoot_ext.data import load_dataset
from smoot_ext.evaluation.plots import save_figure
from smoot_ext.training.checkpoint import load_model
from smoot_ext.training.saliency import input_gradient


def profile(model, x: torch.Tensor, y: torch.Tensor, box: torch.Tensor, batch: int = 250) -> dict:
    """The mean |gradient| map (T, F) and its split by the box (N, T, F bool)."""
    g = torch.cat([input_gradient(model, x[i:i + batch], y[i:i + batch]).abs() for i in range(0, len(x), batch)])
    return {"map": g.mean(0), "in_box": g[box].mean().item(), "out_of_box": g[~box].mean().item(),
            "box_share": box.float().mean().item(), "gradient_share_in_box": (g * box).sum().item() / g.sum().item()}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint")
    p.add_argument("--out", required=True, type=Path, help="output path without suffix (.json and .png)")
    args = p.parse_args(argv)
    model, meta = load_model(args.checkpoint)
    test = load_dataset(meta["dataset"]).test
    result = profile(model, test.inputs.float(), test.labels, test.masks)
    grad_map = result.pop("map")
    fixed = bool((test.masks == test.masks[0]).all())  # the box's place is the same in every sample
    box = test.masks[0] if fixed else test.masks.float().mean(0) > 0.5
    result |= {"checkpoint": args.checkpoint, "dataset": meta["dataset"], "model": meta["model"],
               "fixed_box": fixed, "per_step": grad_map.mean(1).tolist(), "per_feature": grad_map.mean(0).tolist(),
               "box_steps": box.any(1).nonzero().flatten().tolist(),
               "box_features": box.any(0).nonzero().flatten().tolist()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(result, separators=(",", ":")) + "\n")
    save_figure(_figure(grad_map, box, result), args.out.with_suffix(".png"), dpi=100)
    print(f"{meta['dataset']} {meta['model']}: mean |gradient| in box {result['in_box']:.4g}, "
          f"out of box {result['out_of_box']:.4g}; {100 * result['gradient_share_in_box']:.1f}% of the "
          f"gradient's mass on {100 * result['box_share']:.1f}% of the elements")
    return 0


def _figure(grad_map: torch.Tensor, box: torch.Tensor, result: dict):
    import matplotlib.pyplot as plt

    fig, (a, b, c) = plt.subplots(1, 3, figsize=(12, 3.6))
    a.imshow(grad_map.T, aspect="auto", origin="lower", cmap="magma")
    a.contour(box.T.float(), levels=[0.5], colors="cyan", linewidths=1)
    a.set(xlabel="time step", ylabel="feature", title=f"{result['dataset']} {result['model']}: mean |gradient|")
    for ax, values, inside, name in ((b, result["per_step"], result["box_steps"], "time step"),
                                     (c, result["per_feature"], result["box_features"], "feature")):
        ax.bar(range(len(values)), values, color=["tab:orange" if i in inside else "tab:gray"
                                                  for i in range(len(values))])
        ax.set(xlabel=f"{name} (orange: in the box)", ylabel="mean |gradient|")
    fig.tight_layout()
    return fig


if __name__ == "__main__":
    raise SystemExit(main())
