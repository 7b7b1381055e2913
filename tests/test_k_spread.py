"""scripts/k_spread.py: the fitted powers and the extrapolation, on trajectories of known shape."""
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "k_spread.py"


@pytest.fixture(scope="module")
def k_spread():
    spec = importlib.util.spec_from_file_location("k_spread", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _trajectory(epochs, down, up, drift):
    """min = 392 - down * e^0.5, max = 392 + up * e^1, median = 392 + drift * e."""
    return [{"epoch": e, "k_min": 392 - down * e ** 0.5, "k_median": 392 + drift * e, "k_max": 392 + up * e}
            for e in range(1, epochs + 1)]


def test_powers_drift_and_clamped_extrapolation_from_a_summary(k_spread, tmp_path):
    summary = {"k_trajectories": {"smoot": {"0": _trajectory(12, 10.0, 2.0, -0.5),
                                            "1": _trajectory(12, 10.0, 2.0, -0.5)}}}
    path = tmp_path / "summary.json"
    path.write_text(json.dumps(summary))
    r = k_spread.summarise("x", k_spread.load(f"{path}:smoot"), 392.0, 100, (156.8, 627.2))
    assert r["seeds"] == [0, 1] and r["epochs"] == 12
    assert r["min_power"] == pytest.approx(0.5) and r["max_power"] == pytest.approx(1.0)
    assert r["median_drift_per_epoch"] == pytest.approx(-0.5)
    assert r["extrapolated"]["k_min"] == pytest.approx(292.0)  # 392 - 10 * sqrt(100)
    assert r["extrapolated"]["k_median"] == pytest.approx(342.0)
    assert r["extrapolated"]["k_max"] == pytest.approx(592.0)
    far = k_spread.summarise("x", k_spread.load(f"{path}:smoot"), 392.0, 1000, (156.8, 627.2))
    assert far["extrapolated"]["k_max"] == 627.2 and far["extrapolated"]["k_min"] == 156.8  # 2392 and 76: clamped


def test_a_metrics_csv_is_one_seed_and_an_unknown_run_names_the_choices(k_spread, tmp_path):
    rows = _trajectory(5, 4.0, 1.0, 0.0)
    csv_path = tmp_path / "metrics.csv"
    csv_path.write_text("epoch,k_min,k_median,k_max,test_acc\n" +
                        "".join(f"{r['epoch']},{r['k_min']},{r['k_median']},{r['k_max']},0.9\n" for r in rows))
    seeds = k_spread.load(str(csv_path))
    epochs, k = k_spread.per_epoch(seeds)
    assert list(seeds) == [0] and np.allclose(k[:, 0], [r["k_min"] for r in rows])
    (tmp_path / "s.json").write_text(json.dumps({"k_trajectories": {"smoot": {}}}))
    with pytest.raises(SystemExit, match="no run 'sgt'.*smoot"):
        k_spread.load(f"{tmp_path / 's.json'}:sgt")
