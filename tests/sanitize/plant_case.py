"""The planted bugs of plant.cpp, called as pytest runs the real tests: scripts/sanitize_cpu.sh
--plant oob|ub runs this file (never collected by the suite itself: not named test_*.py), with
SMOOT_PLANT_LIBRARY naming the sanitized build of plant.cpp. Each test passes unless a sanitizer
stops it, so the script fails here only through the sanitizer."""
import os

import pytest
import torch

MODE = os.environ.get("SMOOT_PLANT_MODE", "oob")


@pytest.fixture(scope="module")
def plant():
    torch.ops.load_library(os.environ["SMOOT_PLANT_LIBRARY"])
    return torch.ops.smoot_plant


@pytest.mark.skipif(MODE != "oob", reason="SMOOT_PLANT_MODE is not oob")
def test_write_past_end(plant):
    # 36 bytes: unsanitized, the 37th to 40th land in the slack of malloc's chunk and nothing notices.
    assert plant.write_past_end(9).shape == (9,)


@pytest.mark.skipif(MODE != "ub", reason="SMOOT_PLANT_MODE is not ub")
def test_signed_overflow(plant):
    assert isinstance(plant.add_one(2**63 - 1), int)
