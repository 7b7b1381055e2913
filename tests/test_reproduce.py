"""smoot-reproduce (smoot_ext.cli.reproduce, smoot_ext.study.experiment) and the comparison
over seeds it writes (smoot_ext.study.records and .comparison): intervals, pairing by seed, resumable score files."""
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from scipy import stats

from smoot_ext import provenance
from smoot_ext.cli import reproduce
from smoot_ext.study import comparison, experiment, records
from smoot_ext.training.checkpoint import load_model

ROOT = Path(__file__).resolve().parents[1]


def _record(run: str, method: str, seed: int, srg: float, acc: float, k_median: float = 300.0) -> dict:
    block = {"accuracy": {"srg": {"mean": srg}, "auc_morf": {"mean": 50.0 - srg / 2}, "auc_lerf": {"mean": 50.0}}}
    return {"run": run, "method": method, "k_rounding": "trunc" if run.endswith("trunc") else "floor",
            "seed": seed, "epochs": 3,
            "history": [{"epoch": e, "test_acc": acc, "k_min": 200.0, "k_median": k_median + e, "k_max": 400.0}
                        for e in (1, 2, 3)],
            "scores": {"uniform": {"num_test": 10, "levels": [0.0, 0.5], "methods": {"saliency": block}}}}


def _t_half(values, confidence=0.95):
    n = len(values)
    mean = sum(values) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    return stats.t.ppf(0.5 + confidence / 2, n - 1) * sd / math.sqrt(n)


def test_intervals_over_seeds_and_paired_differences():
    a = {0: 10.0, 1: 12.0, 2: 14.0}
    b = {0: 11.0, 1: 14.0, 2: 15.0}
    found = {"sgt": {s: _record("sgt", "sgt", s, v, 0.9) for s, v in a.items()},
             "smoot": {s: _record("smoot", "smoot", s, v, 0.9) for s, v in b.items()}}
    summary = comparison.summarise_runs(found)
    q = [r for r in summary["runs"]["smoot"]["quantities"] if r["statistic"] == "srg"][0]
    assert q["n"] == 3 and q["mean"] == pytest.approx(40 / 3)
    assert q["hi"] - q["mean"] == pytest.approx(_t_half(list(b.values())))
    d = [d for d in summary["differences"] if d["statistic"] == "srg"][0]
    assert (d["a"], d["b"]) == ("sgt", "smoot") and d["mean"] == pytest.approx(4 / 3)
    # Paired over seeds: the differences 1, 2, 1; narrower than Welch's, which ignores the pairing.
    assert d["paired"]["hi"] - d["paired"]["mean"] == pytest.approx(_t_half([1.0, 2.0, 1.0]))
    assert d["paired"]["hi"] - d["paired"]["lo"] < d["welch"]["hi"] - d["welch"]["lo"]
    assert d["paired"]["seeds"] == [0, 1, 2]
    # SMOOT's final k per seed; the markdown has every run and statistic.
    k = [r for r in summary["runs"]["smoot"]["quantities"] if r["statistic"] == "k_median"][0]
    assert k["values"] == [303.0, 303.0, 303.0]
    text = comparison.markdown(summary)
    assert "| smoot - sgt | saliency uniform accuracy srg | 1.33 |" in text


def test_one_seed_has_no_interval_and_unpaired_seeds_no_paired_interval():
    found = {"baseline": {0: _record("baseline", "baseline", 0, 5.0, 0.8)},
             "sgt": {1: _record("sgt", "sgt", 1, 6.0, 0.8), 2: _record("sgt", "sgt", 2, 7.0, 0.8)}}
    summary = comparison.summarise_runs(found)
    acc = [r for r in summary["runs"]["baseline"]["quantities"] if r["kind"] == "accuracy"][0]
    assert "lo" not in acc and acc["mean"] == pytest.approx(80.0)
    assert not [r for r in summary["runs"]["baseline"]["quantities"] if r["kind"] == "k"]
    d = [d for d in summary["differences"] if d["statistic"] == "srg"][0]
    assert "paired" not in d and "welch" not in d and d["mean"] == pytest.approx(1.5)
    assert "5.00 (1 seed)" in comparison.markdown(summary)


def test_run_names():
    assert [records.run_name(m, r) for m, r in [("smoot", "floor"), ("smoot", "trunc"), ("sgt", "trunc")]] == \
        ["smoot", "smoot-trunc", "sgt"]


def test_reproduce_over_seeds_then_skips_what_is_done(tmp_path, capsys):
    out, results = tmp_path / "runs", tmp_path / "results"
    argv = ["--dataset", "digits", "--training", "sgt", "smoot", "--k-rounding", "floor", "trunc",
            "--epochs", "1", "--seeds", "0", "1", "--num-test", "60", "--ig-num-test", "20", "--ig-steps", "4",
            "--fills", "uniform", "road",
            "--threads", "1", "--no-progress", "--out", str(out), "--results", str(results)]
    assert reproduce.main(argv) == 0
    runs = ("sgt", "smoot", "smoot-trunc")
    for run in runs:
        for seed in (0, 1):
            record = json.loads((results / run / f"seed{seed}.json").read_text())
            assert (record["run"], record["seed"], record["epochs"]) == (run, seed, 1)
            assert len(record["history"]) == 1
            # Where and at what cost: the machine beside the scores, the CPU seconds per epoch and
            # of the scoring. torch's one thread is not the process's only one (BLAS, Captum), so
            # the bound is every core busy for the wall time, which a cumulative count would pass.
            assert record["machine"] == {**provenance.machine(), "threads": 1}
            cores = os.cpu_count()
            epoch = record["history"][0]
            assert 0 < epoch["cpu_s"] <= cores * epoch["time_s"] + 0.05
            assert 0 < record["scoring"]["cpu_s"] <= cores * record["scoring"]["time_s"] + 0.05
            ig = record["scores"]["uniform"]
            assert ig["num_test"] == {"saliency": 60, "random": 60, "integrated_gradients": 20}
            assert set(ig["methods"]) >= {"saliency", "integrated_gradients"}
            road = record["scores"]["road"]  # the random order once, with the first fill
            assert road["num_test"] == {"saliency": 60, "integrated_gradients": 20}
            assert road["methods"]["saliency"]["accuracy"]["srg"]["mean"] == pytest.approx(
                road["methods"]["saliency"]["accuracy"]["auc_lerf"]["mean"]
                - road["methods"]["saliency"]["accuracy"]["auc_morf"]["mean"], abs=1e-9)
            _, meta = load_model(str(out / run / f"seed{seed}" / "checkpoint.pt"))
            assert meta["config"]["k_rounding"] == ("trunc" if run == "smoot-trunc" else "floor")
            assert meta["config"]["seed"] == seed
    summary = json.loads((results / "summary.json").read_text())
    assert list(summary["runs"]) == list(runs) and summary["runs"]["smoot"]["seeds"] == [0, 1]
    for png in ("k_trajectories.png", "curves_saliency_uniform.png", "smoot/saliency_saliency.png"):
        assert (results / png).stat().st_size > 0
    before = {p: p.stat().st_mtime_ns for p in results.glob("*/seed*.json")}
    capsys.readouterr()
    assert reproduce.main(argv) == 0
    assert {p: p.stat().st_mtime_ns for p in results.glob("*/seed*.json")} == before
    assert capsys.readouterr().err.count(": done (") == 6
    # A third seed, not run: --compare-only leaves it out and compares what is done.
    (results / "summary.json").unlink()
    assert reproduce.main(argv[:argv.index("--seeds")] + ["--seeds", "0", "1", "2"] + argv[argv.index("--seeds") + 3:]
                          + ["--compare-only"]) == 0
    assert capsys.readouterr().err.count("seed 2: not done, left out") == 3
    assert not (out / "sgt" / "seed2").exists()
    assert json.loads((results / "summary.json").read_text())["runs"]["smoot"]["seeds"] == [0, 1]
    # Another epoch count: those files are not done for it, and nothing else is.
    with pytest.raises(SystemExit):
        reproduce.main([a if a != "1" or argv[i - 1] != "--epochs" else "2" for i, a in enumerate(argv)]
                       + ["--compare-only"])
    assert "--results: no finished score file in" in capsys.readouterr().err


def test_bad_options_name_the_option(tmp_path, capsys):
    for argv, message in ((["--seeds", "1", "1"], "--seeds: each seed at most once, got [1, 1]"),
                          (["--epochs", "0"], "--epochs: expected an integer >= 1, got 0"),
                          (["--k-rounding", "round"], "--k-rounding: invalid choice: 'round'")):
        with pytest.raises(SystemExit):
            reproduce.main(argv + ["--dataset", "digits", "--out", str(tmp_path)])
        assert message in capsys.readouterr().err


def test_a_model_scored_on_another_test_set_is_an_error():
    history = [{"test_acc": 0.98}]
    experiment.check_same_test_set({"accuracy": {"mean": 97.6}}, history, None, "c.pt")  # a few flips
    experiment.check_same_test_set({"accuracy": {"mean": 15.0}}, history, 1000, "c.pt")  # a subset: not comparable
    with pytest.raises(ValueError, match=r"c.pt: accuracy 15.00% on the evaluation's test set, but 98.00%"):
        experiment.check_same_test_set({"accuracy": {"mean": 15.0}}, history, None, "c.pt")


def test_compare_only_needs_no_captum_and_gives_the_committed_summary(tmp_path):
    """The committed synthetic comparison, recompared from its score files in a process where
    captum cannot be imported: the same summary.json, byte for byte."""
    committed = ROOT / "docs" / "results" / "synthetic-compare"
    for path in committed.glob("*/seed*.json"):
        (tmp_path / path.parent.name).mkdir(exist_ok=True)
        shutil.copyfile(path, tmp_path / path.parent.name / path.name)
    argv = ["--compare-only", "--dataset", "synthetic", "--epochs", "10", "--seeds", "0", "1", "2", "3", "4",
            "--k-rounding", "floor", "trunc", "--k-update", "units", "percent",
            "--sgt-k", "0.2", "0.3", "0.4", "0.5", "0.6", "0.7", "0.8",
            "--num-test", "0", "--results", str(tmp_path), "--out", str(tmp_path)]
    code = ("import sys; sys.modules['captum'] = None; from smoot_ext.cli.reproduce import main; "
            f"sys.exit(main({argv!r}))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "captum" not in proc.stderr
    assert (tmp_path / "summary.json").read_bytes() == (committed / "summary.json").read_bytes()


def test_provenance_names_the_checkout_commit_and_no_other(tmp_path):
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    if head.returncode != 0:
        pytest.skip("not a git checkout")
    assert provenance.commit(str(ROOT)).removesuffix("-dirty") == head.stdout.strip()
    # A folder inside a checkout (an installed package under .venv) is not that checkout's commit.
    inner = ROOT / "smoot_ext"
    assert provenance.commit(str(inner)) == "unknown"
    assert provenance.commit(str(tmp_path)) == "unknown"
    m = provenance.machine(str(tmp_path))
    assert m["commit"] == "unknown" and m["cpu"] and m["cpu_count"] >= 1


def _overview(*args) -> tuple[list[str], dict[str, list[str]]]:
    """The overview's header cells and its rows' cells by their first cell."""
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "results_overview.py"), *map(str, args)],
                          capture_output=True, text=True, check=True)
    head, rule, *rows = proc.stdout.splitlines()
    assert rule.count("---") == head.count("|") - 1
    cells = [row.strip("| ").split(" | ") for row in rows]
    return head.strip("| ").split(" | "), {c[0]: c for c in cells}


def _summary_folder(tmp_path: Path, name: str, aup_diff: dict, seeds: int = 3) -> Path:
    """A summary.json as smoot-reproduce writes it: the baseline's test accuracy, its AUP and the
    random map's, and one SGT - baseline AUP difference (``aup_diff``)."""
    def quantity(kind, method, statistic, mean, metric=""):
        q = {"kind": kind, "method": method, "metric": metric, "statistic": statistic, "fill": "uniform",
             "mean": mean, "values": [mean] * seeds, "n": seeds}
        return q | ({"lo": mean - 0.01, "hi": mean + 0.01} if seeds > 1 else {})
    runs = {r: {"seeds": list(range(seeds)), "epochs": [40], "quantities": [
        quantity("accuracy", "", "test_acc", 99.5), quantity("localisation", "saliency", "aup", 0.41),
        quantity("localisation", "random", "aup", 0.29)]} for r in ("baseline", "sgt", "smoot")}
    diff = {"a": "baseline", "b": "sgt", "kind": "localisation", "method": "saliency", "metric": "",
            "statistic": "aup", "fill": "uniform", **aup_diff}
    folder = tmp_path / name
    folder.mkdir()
    not_scored = {"min_accuracy": 90, "runs": [{"run": "smoot", "seed": 3, "accuracy": 51.0}]}
    (folder / "summary.json").write_text(json.dumps({"runs": runs, "differences": [diff], "not_scored": not_scored}))
    return folder


def _eraser_evaluation(comp: float, f1: float) -> dict:
    """One model's run_evaluation results with ERASER entries for saliency and the random map."""
    def entry(c, f):
        return {"comprehensiveness_delete": {"mean": c, "lo": c - 0.01, "hi": c + 0.01, "points": [c] * 5},
                "token_f1": f}
    model = {"accuracy": {"mean": 100.0}, "methods": {"saliency": {}},
             "eraser": {"saliency": entry(comp, f1), "random": entry(0.1, 0.2)}}
    return {"models": {"m": model}, "num_test": 10, "levels": [0.0, 0.5]}


def test_eraser_scores_reach_the_records_the_summary_and_its_table():
    found = {}
    for run, comp in (("baseline", 0.3), ("sgt", 0.5)):
        for seed in (0, 1):
            rec = {"method": run, "k_rounding": "floor", "epochs": 1, "history": [{"test_acc": 1.0}], "scores": {}}
            records.add_scores(rec["scores"], "uniform", _eraser_evaluation(comp + 0.01 * seed, 0.4 + 0.1 * seed))
            found.setdefault(run, {})[seed] = rec
    summary = comparison.summarise_runs(found)
    (diff,) = [d for d in summary["differences"]
               if d["kind"] == "eraser" and d["statistic"] == "comprehensiveness_delete"]
    assert diff["method"] == "saliency" and diff["paired"]["mean"] == pytest.approx(0.2)
    assert not [d for d in summary["differences"] if d["method"] == "random"]
    text = comparison.markdown(summary)
    assert "| run | Comprehensiveness (deleted) | Token F1 |" in text
    assert "| sgt | 0.505 [0.441, 0.569] | 0.450 [-0.185, 1.085] |" in text
    assert text.count("| chance (random map) | 0.100 [0.100, 0.100] | 0.200 [0.200, 0.200] |") == 1


def test_results_overview_shows_chance_baseline_and_each_paired_difference(tmp_path):
    paired = {"mean": 0.05, "lo": 0.02, "hi": 0.08}
    head, rows = _overview(_summary_folder(tmp_path, "ts-a", {"mean": 0.05, "paired": paired}))
    row = rows["ts-a, saliency"]
    assert row[head.index("scored seeds: baseline/sgt/smoot/smoot-trunc")] == "3/3/3 (+1)/0"
    assert row[head.index("test acc.: baseline")] == "99.50 [99.49, 99.51]"
    assert row[head.index("AUP: chance")] == "0.290 [0.280, 0.300]"
    assert row[head.index("AUP: baseline")] == "0.410 [0.400, 0.420]"
    # SGT - baseline, bold: its interval leaves out 0; pairs without a stored difference print "-".
    assert row[head.index("AUP: baseline") + 1] == "**+0.050 [0.020, 0.080]**"
    assert row[head.index("AUP: baseline") + 2] == "-"
    assert row[head.index("SRG: baseline")] == "-"


def test_results_overview_shows_only_the_columns_asked_for(tmp_path):
    head, rows = _overview(_summary_folder(tmp_path, "ts-d", {"mean": 0.05}), "--columns", "AUP")
    assert [h for h in head if h.startswith(("AUP", "AUR", "SRG"))] == ["AUP: chance", "AUP: baseline"]
    assert len(rows["ts-d, saliency"]) == len(head) == 3 + 2 + 3


def test_results_overview_counts_the_cells_resolved_on_each_side(tmp_path):
    up = _summary_folder(tmp_path, "ts-e", {"mean": 0.05, "paired": {"mean": 0.05, "lo": 0.02, "hi": 0.08}})
    flat = _summary_folder(tmp_path, "ts-f", {"mean": 0.0, "paired": {"mean": 0.0, "lo": -0.02, "hi": 0.02}})
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "results_overview.py"), str(up), str(flat),
                           "--counts", "--columns", "AUP"], capture_output=True, text=True, check=True)
    table = proc.stdout.split("\n\n")[1].splitlines()
    cells = {tuple(r.strip("| ").split(" | ")[:2]): r.strip("| ").split(" | ")[2:] for r in table[2:]}
    # The baseline's and SGT's AUP (0.41 [0.40, 0.42]) lie above chance (0.29) in both folders.
    assert cells[("AUP", "baseline - chance")] == ["2", "0", "2"]
    assert cells[("AUP", "sgt - chance")] == ["2", "0", "2"]
    assert cells[("AUP", "sgt - baseline")] == ["1", "0", "2"]


def test_results_overview_shows_a_tiny_resolved_difference_in_exponent_form(tmp_path):
    paired = {"mean": -2e-4, "lo": -3e-4, "hi": -1e-4}
    head, rows = _overview(_summary_folder(tmp_path, "ts-b", {"mean": -2e-4, "paired": paired}))
    assert rows["ts-b, saliency"][head.index("AUP: baseline") + 1] == "**-2.0e-04 [-3.0e-04, -1.0e-04]**"


def test_results_overview_prints_a_one_seed_summary_without_intervals(tmp_path):
    head, rows = _overview(_summary_folder(tmp_path, "ts-c", {"mean": 0.05}, seeds=1))
    row = rows["ts-c, saliency"]
    assert row[head.index("AUP: chance")] == "0.290"
    assert row[head.index("AUP: baseline") + 1] == "+0.050"


def test_the_committed_sequences_overview_is_the_scripts_output_on_the_committed_folders():
    results = ROOT / "docs" / "results" / "seq"
    folders = sorted(f for f in results.iterdir() if f.is_dir())
    assert folders, "docs/results/seq holds the sequence grid's folders"
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "results_overview.py"), *map(str, folders)],
                          capture_output=True, text=True, check=True)
    assert proc.stdout == (results / "overview.md").read_text()


def test_paired_table_turns_each_stored_pair_to_the_reference_and_counts_resolved_differences(tmp_path):
    key = {"kind": "score", "fill": "uniform", "method": "saliency", "metric": "accuracy", "statistic": "srg"}
    runs = {r: {"quantities": [{**key, "mean": m, "lo": m - 1, "hi": m + 1, "n": 3}]}
            for r, m in (("a", 50.0), ("ref", 55.0), ("c", 56.0))}
    diffs = [{"a": "a", "b": "ref", **key, "paired": {"mean": 5.0, "lo": 4.0, "hi": 6.0}},  # stored ref - a
             {"a": "ref", "b": "c", **key, "paired": {"mean": 1.0, "lo": -0.5, "hi": 2.5}}]
    (tmp_path / "summary.json").write_text(json.dumps({"confidence": 0.95, "runs": runs, "differences": diffs}))
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "paired_table.py"), str(tmp_path),
                           "--runs", "a", "ref", "c", "--reference", "ref"], capture_output=True, text=True, check=True)
    row = [line for line in proc.stdout.splitlines() if line.startswith("| Saliency, uniform: SRG")][0]
    cells = row.strip("| ").split(" | ")
    assert cells[1:] == ["50.00 [49.00, 51.00]", "55.00 [54.00, 56.00]", "56.00 [55.00, 57.00]",
                         "**-5.00 [-6.00, -4.00]**", "+1.00 [-0.50, 2.50]"]
    assert "- a - ref: 1 of 1 score differences leave out 0" in proc.stdout
    assert "- c - ref: 0 of 1 score differences leave out 0" in proc.stdout
