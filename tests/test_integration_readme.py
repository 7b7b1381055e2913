"""Every example of README.md's "Use it in your trainer" runs as it stands, each in a fresh
process from a file of its own, with every module of the extras it does not name blocked, and
trains SMOOT (k leaves its initial value)."""
import os
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement

README = Path(__file__).resolve().parents[1] / "README.md"
SECTION = "## Use it in your trainer"


def examples() -> list[str]:
    text = README.read_text()
    assert SECTION in text, f"README.md has no section {SECTION!r}"
    section = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def named_extras() -> list[set[str]]:
    """The extras each example names (``pip install ".[a,b]"`` in the text just before it)."""
    section = README.read_text().split(SECTION, 1)[1].split("\n## ", 1)[0]
    texts = re.split(r"```python\n.*?```", section, flags=re.S)[:-1]
    return [set(m[-1].split(",")) if (m := re.findall(r'pip install "\.\[([a-z,]+)\]"', t)) else set()
            for t in texts]


def _name(dist: str) -> str:
    return re.sub(r"[-_.]+", "-", dist).lower()


def _closure(requirements: list[Requirement]) -> set[str]:
    """The distributions these requirements install, with their own unconditional requirements."""
    seen, todo = set(), [r.name for r in requirements]
    while todo:
        name = _name(todo.pop())
        if name in seen:
            continue
        seen.add(name)
        try:
            needs = [Requirement(r) for r in metadata.requires(name) or []]
        except metadata.PackageNotFoundError:
            continue
        todo += [r.name for r in needs if r.marker is None or r.marker.evaluate({"extra": ""})]
    return seen


def blocked(extras: set[str]) -> tuple[set[str], set[str]]:
    """(distributions, top-level modules) that only the extras other than ``extras`` bring."""
    reqs = [Requirement(r) for r in metadata.requires("smoot_ext")]

    def wanted(names):
        return [r for r in reqs if r.marker is None or any(r.marker.evaluate({"extra": e}) for e in names)]

    every = set(metadata.metadata("smoot_ext").get_all("Provides-Extra"))
    kept = _closure(wanted(extras))
    others = _closure(wanted(every)) - kept
    owners = metadata.packages_distributions()
    return others, {module for module, dists in owners.items() if not module.startswith("_")
                    and {_name(d) for d in dists} & others and not {_name(d) for d in dists} & kept}


# Runs before the example: an environment without those distributions, as far as a program can
# tell: `import x` fails, importlib.util.find_spec(x) is None, importlib.metadata finds no x.
PRELUDE = """import importlib.metadata as _md, re as _re, sys as _sys
_sys.modules.update(dict.fromkeys({modules!r}))
_from_name = _md.Distribution.from_name.__func__
def _hidden(cls, name):
    if _re.sub(r"[-_.]+", "-", name).lower() in {dists!r}:
        raise _md.PackageNotFoundError(name)
    return _from_name(cls, name)
_md.Distribution.from_name = classmethod(_hidden)
"""


def test_blocked_are_the_other_extras():
    assert {"sklearn", "lightning", "transformers", "captum"} <= blocked(set())[1]
    dists, modules = blocked({"train"})
    assert "sklearn" not in modules and "torchvision" not in modules and {"lightning", "transformers"} <= modules
    assert "scikit-learn" not in dists and "lightning" in dists
    assert "lightning" not in blocked({"train", "lightning"})[1]
    assert "torch" not in blocked(set())[1]  # the ops' own requirement


def test_the_prelude_hides_a_blocked_extra(tmp_path):
    dists, modules = blocked(set())
    code = PRELUDE.format(modules=sorted(modules), dists=sorted(dists)) + (
        "import importlib.util, importlib.metadata as md\n"
        "assert importlib.util.find_spec('sklearn') is None\n"
        "try:\n    md.version('scikit-learn')\nexcept md.PackageNotFoundError:\n    print('hidden')\n"
        "import torch, smoot_ext\nimport sklearn\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.stdout.strip() == "hidden" and "ModuleNotFoundError: import of sklearn halted" in proc.stderr


def test_the_section_holds_a_plain_loop_lightning_and_hf_example():
    codes = examples()
    assert len(codes) == 3
    assert "for x, y, index in DataLoader" in codes[0]
    assert "SaliencyGuidedCallback" in codes[1] and "SaliencyGuidedTrainer" in codes[2]


@pytest.mark.parametrize("number", range(3), ids=["plain_loop", "lightning", "hf_trainer"])
def test_example_runs_as_it_stands_and_moves_k(tmp_path, number):
    script = tmp_path / "example.py"
    dists, modules = blocked(named_extras()[number])
    script.write_text(PRELUDE.format(modules=sorted(modules), dists=sorted(dists)) + examples()[number])
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (line,) = re.findall(r"^k min/median/max: (\S+) (\S+) (\S+)$", proc.stdout, flags=re.M)
    k_min, k_median, k_max = map(float, line)
    init = {0: 32, 1: 32, 2: 128}[number]  # half of the 8x8 or 16x16 pixels
    assert k_min <= k_median <= k_max and (k_min, k_max) != (init, init)
