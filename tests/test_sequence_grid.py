"""scripts/sequence_grid.py names only datasets and models that exist, and its --list is the grid."""
import subprocess
import sys
from pathlib import Path

from smoot_ext.data import DATASETS
from smoot_ext.models import SEQUENCE_MODELS
from smoot_ext.ops import UNITS

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import sequence_grid  # noqa: E402

sys.path.pop(0)


def test_every_setting_is_a_dataset_and_a_sequence_model():
    grid = sequence_grid.grid()
    assert len(grid) == 10 * 3 + 6 * 3 + 2 + 3 * 2
    for name, (dataset, model, unit) in grid.items():
        assert dataset in DATASETS and model in SEQUENCE_MODELS and unit in (None, *UNITS)
        assert name == f"{dataset}-{model}" + ("-element" if unit else "")


def test_list_prints_each_settings_command_and_refuses_unknown_ones():
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "sequence_grid.py"), "--list", "--only",
                          "ts-middle-tcn", "ts-rare-time-gp-tcn", "ts-middle-tcn-element", "--", "--seeds", "0"],
                         capture_output=True, text=True, check=True).stdout.splitlines()
    assert [line.split(":")[0] for line in out] == ["ts-middle-tcn", "ts-rare-time-gp-tcn", "ts-middle-tcn-element"]
    assert "--dataset ts-rare-time-gp --model tcn --epochs" in out[1] and out[1].endswith("--seeds 0")
    assert "--dataset ts-middle --model tcn --unit feature --epochs" in out[2]
    assert "runs/seq/ts-middle-tcn-element" in out[2] and "--unit" not in out[0]
    bad = subprocess.run([sys.executable, str(ROOT / "scripts" / "sequence_grid.py"), "--only", "ts-nope-tcn"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "--only: unknown settings ['ts-nope-tcn']" in bad.stderr
