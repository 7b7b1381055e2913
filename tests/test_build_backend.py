"""The PEP 517 backend (build_backend/smoot_build.py): it compiles against the environment's own
torch and asks pip for none, takes the newest supported torch where there is none, and refuses a
torch outside the range before anything compiles. scripts/check_wheel.sh runs real builds."""
import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def backend(monkeypatch):
    pytest.importorskip("setuptools")
    spec = importlib.util.spec_from_file_location("smoot_build_under_test", ROOT / "build_backend" / "smoot_build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(sys, "path", list(sys.path))  # the hooks extend sys.path
    return module


@pytest.mark.parametrize("version, expected", [
    ("2.14.1", (2, 14, 1)), ("2.13.0+cpu", (2, 13, 0)), ("2.14.1+cu126", (2, 14, 1)),
    ("2.14.0a0+git1a2b3c", (2, 14, 0)), ("2.15.0.dev20261201+cu130", (2, 15, 0)), ("2.13", (2, 13, 0)),
])
def test_release_reads_every_torch_variant(backend, version, expected):
    assert backend.release(version) == expected


@pytest.mark.parametrize("version", ["2.13.0", "2.13.0+cpu", "2.14.1+cu126", "2.14.0a0+git1a2b3c"])
def test_a_supported_environment_torch_is_used_and_no_torch_is_required(backend, monkeypatch, tmp_path, version):
    site = tmp_path / "site-packages"
    site.mkdir()
    monkeypatch.setattr(backend, "environment_torch", lambda: version)
    monkeypatch.setattr(backend, "environment_site_packages", lambda: [str(site)])
    before = list(sys.path)
    requires = backend.get_requires_for_build_wheel()
    assert requires == backend.BUILD_TOOLS and not any(r.startswith("torch") for r in requires)
    assert backend.get_requires_for_build_editable() == backend.BUILD_TOOLS
    # the environment's site-packages comes after every isolated build path, once
    assert sys.path[:len(before)] == before and sys.path.count(str(site)) == 1 and sys.path[-1] == str(site)


def test_without_torch_the_build_takes_the_newest_supported_one(backend, monkeypatch):
    monkeypatch.setattr(backend, "environment_torch", lambda: None)
    before = list(sys.path)
    assert backend.get_requires_for_build_wheel() == backend.BUILD_TOOLS + ["torch>=2.13.0,<=2.14.1"]
    assert sys.path == before


@pytest.mark.parametrize("version", ["2.12.1+cu121", "2.15.0", "2.15.0.dev20261201+cu130", "3.0.0"])
def test_a_torch_outside_the_range_is_refused_naming_it_and_the_range(backend, monkeypatch, version):
    monkeypatch.setattr(backend, "environment_torch", lambda: version)
    with pytest.raises(SystemExit) as e:
        backend.get_requires_for_build_wheel()
    message = str(e.value)
    assert version in message and backend.SUPPORTED_TORCH in message


def test_hooks_that_run_setup_py_see_the_environment_torch(backend, monkeypatch, tmp_path):
    seen = []
    monkeypatch.setattr(backend, "environment_torch", lambda: "2.14.1")
    monkeypatch.setattr(backend, "environment_site_packages", lambda: [str(tmp_path)])
    hook = backend._with_environment_torch(lambda *a: seen.append((a, str(tmp_path) in sys.path)) or "built")
    assert hook("dist") == "built" and seen == [(("dist",), True)]


def test_the_environment_torch_is_found_in_this_interpreter(backend):
    import torch

    assert backend.release(backend.environment_torch()) == backend.release(torch.__version__)
