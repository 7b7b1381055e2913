"""Benchmark results recorded, not commented: each run appends its rows, with the machine, the
versions, the commit and the date, to ``benchmarks/results/<name>.csv`` (as Liger-Kernel's
``all_benchmark_data.csv``), so numbers can be compared across machines and commits."""
from __future__ import annotations

import argparse
import csv
import datetime
import functools
import json
import os

from smoot_ext.provenance import machine

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def add_epoch_arguments(p: argparse.ArgumentParser, name: str) -> None:
    """The options of the benchmarks that time whole epochs (epoch_overhead, lightning_overhead);
    their results go to ``<results>/<name>.csv``."""
    p.add_argument("--batch-size", type=int, default=512, help="(default: %(default)s)")
    p.add_argument("--subset", type=int, help="train on this many samples (default: all)")
    p.add_argument("--test-subset", type=int,
                   help="test on this many (default: all; keep the full run's train/test ratio, "
                        "e.g. --subset 15000 --test-subset 2500 for MNIST)")
    p.add_argument("--repeats", type=int, default=3, help="(default: %(default)s)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads, 0 = torch's default")
    add_output_arguments(p, name)


def add_output_arguments(p: argparse.ArgumentParser, name: str) -> None:
    """``--json`` and ``--results``, where ``write_outputs`` puts a run besides stdout."""
    p.add_argument("--json", help="also write the JSON result here")
    p.add_argument("--results", default=RESULTS,
                   help=f"append rows to <results>/{name}.csv, '' for none (default: %(default)s)")


@functools.cache
def environment() -> dict:
    """Where and with what a benchmark ran: the columns every results row starts with."""
    return {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            **machine(os.path.dirname(os.path.dirname(RESULTS)))}  # the checkout's top: its commit


def append(name: str, rows: list[dict], folder: str = RESULTS) -> str:
    """Appends ``rows`` (with ``environment()`` in front) to ``<folder>/<name>.csv``; returns the
    path. A file whose columns differ is rewritten with the union of both."""
    if not rows:
        return ""
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"{name}.csv")
    new = [{**environment(), **row} for row in rows]
    fields = list(dict.fromkeys(key for row in new for key in row))
    old: list[dict] | None = [] if not os.path.exists(path) else None
    if old is None:
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            if reader.fieldnames != fields:
                old = list(reader)
                fields = list(dict.fromkeys((reader.fieldnames or []) + fields))
    if old is not None:  # a new file, or new columns: (re)write the header and the old rows
        with open(path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=fields, restval="")
            writer.writeheader()
            writer.writerows(old)
    with open(path, "a", newline="") as f:
        csv.DictWriter(f, fieldnames=fields, restval="").writerows(new)
    return path


def write_outputs(name: str, result: dict, rows: list[dict], json_path: str | None, folder: str, *,
                  indent: int | None = None, show: bool = True) -> str:
    """The end of every benchmark: prints ``result`` as JSON (if ``show``), writes it to
    ``json_path`` (if any) and appends ``rows`` to ``<folder>/<name>.csv`` (if ``folder``, so
    ``--results ''`` records nothing); returns the CSV's path, '' if none."""
    if show:
        print(json.dumps(result, indent=indent))
    if json_path:
        with open(json_path, "w") as f:
            # The file is indented even where the printed line is not: it is read and diffed by people.
            json.dump(result, f, indent=indent or 1)
    return append(name, rows, folder) if folder else ""
