"""The benchmarks still run: each script on a small size, as `make bench` runs it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).parent.parent / "bench"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("script", "arguments"),
    [
        ("ingest.py", ["--entries", "200"]),
        ("selection.py", ["--subscribers", "200", "--entries", "30"]),
        ("import_csv.py", ["--subscribers", "300"]),
        ("learning_cost.py", ["--readers", "400", "--voters", "20", "--papers", "300"]),
        ("delivery.py", ["--subscribers", "300", "--peer", "--peer-count", "10"]),
        ("delivery.py", ["--subscribers", "300", "--newsletters", "3"]),
        ("signed_cost.py", []),
        ("latency.py", ["--subscribers", "200", "--connections", "4", "--rtt-ms", "0,20"]),
    ],
)
def test_each_benchmark_runs_and_ends_with_its_summary_line(
    script: str, arguments: list[str]
) -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH / script), *arguments],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    last = done.stdout.strip().splitlines()[-1]
    assert last.startswith("bench "), last
    if script in ("delivery.py", "latency.py"):
        assert "exactly_once=yes" in last


def test_the_ranking_evaluation_says_when_its_data_is_absent(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH / "eval_ranking.py"), "--data", str(tmp_path / "none")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "no evaluation data at" in done.stderr and "DIGEST_EVAL_DATA" in done.stderr
