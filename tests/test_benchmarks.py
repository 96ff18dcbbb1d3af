"""The benchmark command works end to end (tiny inputs): it proves the scripts run, not any figure."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_the_benchmark_command_measures_load_and_delta_next_to_their_baselines(tmp_path: Path) -> None:
    command = [
        sys.executable,
        str(ROOT / "benchmarks" / "run.py"),
        "--sizes",
        "300KB",
        "--delta-establishments",
        "12",
        "--latencies",
        "0",
        "0.05",
        "--concurrency",
        "4",
        "--data",
        str(tmp_path / "data"),
        "--results",
        str(tmp_path / "results"),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr

    figures = json.loads((tmp_path / "results" / "bench.json").read_text())
    assert figures["cpus"] >= 1 and len(figures["load_average_before"]) == 3
    [load] = figures["load"]
    assert load["entities"] > 0
    for mode in ("one_reader", "load"):
        assert load[f"{mode}_s"] > 0 and load[f"{mode}_cpu_s"] > 0
        assert load[f"{mode}_wall_ratio"] > 0 and load[f"{mode}_cpu_ratio"] > 0
        assert load[f"{mode}_peak_mb"] > 0
    assert [row["latency_ms"] for row in figures["delta"]] == [0, 50]
    for row in figures["delta"]:
        assert row["establishments"] == 12
        assert row["cpu_ms_per_establishment"] > 0 and row["peak_mb"] > 0
    assert figures["delta"][1]["network_alone_s"] == pytest.approx(12 * 0.05 / 4)
    assert figures["delta"][1]["effective_parallelism"] > 0
    assert "| latency_ms |" in done.stdout  # the printed tables
    assert not list((tmp_path / "data").glob("bench-*.sqlite3*"))  # stores removed without --keep
