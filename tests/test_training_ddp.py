"""DDP: two CPU processes (gloo, torchrun) agree on the k vector and weights, as does the checkpoint."""
import os
import subprocess
import sys
from pathlib import Path

import torch

from smoot_ext.data import EpochBatchSampler
from smoot_ext.training.checkpoint import load_checkpoint
from smoot_ext.training.loop import TIMINGS

ROOT = Path(__file__).resolve().parents[1]
WORKER = """
import os, sys, torch
from smoot_ext.training.loop import TrainConfig, train
out = sys.argv[1]
r = train(TrainConfig(dataset="digits", epochs=2, subset=400, test_subset=100, batch_size=50,
                      out=out, threads=1, progress=False))
torch.save({"k": r.guided.k.cpu(), "model": r.model.state_dict(), "rows": r.history},
           os.path.join(out, "rank" + os.environ["RANK"] + ".pt"))
"""


def test_two_gloo_ranks_agree_with_each_other_and_the_checkpoint(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    out = tmp_path / "run"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                           "--nproc_per_node", "2", str(script), str(out)],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r0, r1 = (torch.load(out / f"rank{r}.pt") for r in (0, 1))
    ckpt = load_checkpoint(str(out / "checkpoint.pt"))
    assert torch.equal(r0["k"], r1["k"]) and torch.equal(r0["k"], ckpt["trainer"][0]["k"])
    assert all(torch.equal(r0["model"][n], r1["model"][n]) and torch.equal(r0["model"][n], ckpt["model"][n])
               for n in r0["model"])
    def metrics(rows):  # reduced over both ranks: equal but for each rank's own clock
        return [{k: v for k, v in row.items() if k not in TIMINGS} for row in rows]

    assert metrics(r0["rows"]) == metrics(r1["rows"]) == metrics(ckpt["history"])
    assert len(ckpt["rng"]) == 2 and not torch.equal(ckpt["rng"][0]["torch"], ckpt["rng"][1]["torch"])
    # Each rank's trainer state: the common k, its own mask generator.
    assert len(ckpt["trainer"]) == 2 and torch.equal(ckpt["trainer"][1]["k"], r1["k"])
    assert not torch.equal(ckpt["trainer"][0]["generator"], ckpt["trainer"][1]["generator"])
    # Both ranks' updates reached the common vector: k moved among the samples each rank saw
    # in the last epoch (and only k of samples trained on can have moved).
    k = r0["k"]
    for rank in (0, 1):
        seen = EpochBatchSampler(400, 50, shuffle=True, seed=0, epoch=1, rank=rank, world_size=2).indices()
        assert (k[seen] != 32).float().mean() > 0.3
