"""Runs a worker script as two CPU processes under torchrun (gloo), as the DDP tests do."""
import os
import subprocess
import sys


def run_two_processes(script, *args: str, **env: str) -> None:
    """``script`` under ``torchrun --standalone --nproc_per_node 2``; fails the test on an error."""
    env = dict(os.environ, OMP_NUM_THREADS="1", **env)
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                           "--nproc_per_node", "2", str(script), *args],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
