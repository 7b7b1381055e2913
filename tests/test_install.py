"""The package as installed: its build record and the torch check, info, extras, entry points."""
import importlib.metadata
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import smoot_ext
from smoot_ext import _build, _extras

ROOT = Path(__file__).resolve().parents[1]


def _python(*args, env=None, cwd=None):
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, **(env or {})), cwd=cwd or "/")


def test_no_tracked_file_names_the_workplace_folder():
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True)
    if files.returncode != 0:
        pytest.skip("not a git checkout")
    offenders = [name for name in files.stdout.decode().split("\0")
                 if name and "../" + "shared" in (ROOT / name).read_text(errors="replace")]
    assert offenders == []


def test_build_record_names_the_running_torch():
    import torch

    info = _build.built_with()
    assert info["torch"] == torch.__version__
    assert isinstance(info["cuda_kernels"], bool) and (info["cuda_kernels"] or info["why_no_cuda"])


def test_a_build_for_another_torch_is_refused_with_both_versions_and_the_fix(monkeypatch):
    import torch

    record = dict(_build.built_with(), torch="2.99.0+cu999")
    monkeypatch.setattr(_build, "built_with", lambda: record)
    with pytest.raises(ImportError) as e:
        _build.check_build()
    msg = str(e.value)
    assert "2.99.0+cu999" in msg and torch.__version__ in msg and _build.BUILD_COMMAND in msg


def test_an_unbuilt_package_says_how_to_build(monkeypatch):
    monkeypatch.setattr(_build, "built_with", lambda: None)
    with pytest.raises(ImportError, match=r"not built.*pip install \."):
        _build.check_build()


def test_info_reports_build_runtime_backends_and_isa():
    proc = _python("-m", "smoot_ext.info", "--json", env={"SMOOT_CPU_ISA": "baseline"})
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info["smoot_ext"] == smoot_ext.__version__
    assert info["cpu_isa"] == "baseline"
    assert info["built"]["torch"] == info["running"]["torch"]
    cpu = info["backends"]["mask/cpu"]
    assert cpu["available"][0] == "cpu" and cpu["available"][-1] == "reference"
    cuda = info["backends"]["update_k/cuda"]
    for name in ("cuda", "triton", "cpu"):
        assert name in cuda["available"] or cuda["missing"][name]  # each absent one says why
    text = _python("-m", "smoot_ext.info")
    assert text.returncode == 0 and "CPU mask row loops" in text.stdout and "mask/cpu" in text.stdout


def test_info_dict_is_the_same_as_the_command():
    info = smoot_ext.build_info()
    assert set(info) >= {"smoot_ext", "built", "running", "cpu_isa", "backends"}
    assert info["cpu_isa"] in ("avx2", "baseline")


def test_a_missing_extra_is_named():
    with pytest.raises(ImportError, match=r"\[train\] extra.*no_such_module_x.*pip install 'smoot_ext\[train\]'"):
        _extras.require("train", "os", "no_such_module_x")
    # Without captum the evaluation imports (the comparison over seeds needs none); computing an
    # attribution names the extra.
    proc = _python("-c", "import sys; sys.modules['captum'] = None; import torch, smoot_ext.evaluation as e; "
                         "import smoot_ext.cli.reproduce; print('imported'); "
                         "e.attribute(torch.nn.Flatten().eval(), torch.rand(1, 1, 2, 2), torch.tensor([0]), "
                         "'saliency', baseline=0.0, data_range=1.0)")
    assert proc.stdout.strip() == "imported", proc.stderr
    assert proc.returncode != 0 and "(captum not installed): pip install 'smoot_ext[eval]'" in proc.stderr


def test_the_ops_import_none_of_the_extras():
    proc = _python("-c", "import sys, torch; before = set(sys.modules); import smoot_ext; print(sorted("
                         "m for m in ('torchvision', 'timm', 'captum', 'matplotlib', 'sklearn', 'tqdm') "
                         "if m in set(sys.modules) - before))")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_console_scripts_point_at_the_command_lines():
    scripts = {ep.name: ep for ep in importlib.metadata.entry_points(group="console_scripts")
               if ep.name.startswith("smoot-")}
    assert set(scripts) == {"smoot-train", "smoot-evaluate", "smoot-reproduce"}
    for ep in scripts.values():
        assert callable(ep.load())


@pytest.mark.parametrize("script", ["python/train.py", "python/evaluate.py", "python/reproduce.py"])
def test_front_ends_run_from_anywhere(script):
    proc = _python(str(ROOT / script), "--help")
    assert proc.returncode == 0, proc.stderr
    assert "usage:" in proc.stdout
