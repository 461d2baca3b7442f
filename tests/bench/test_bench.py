"""The load benchmark on a tiny load, so `make bench` and `make bench SCALED=1` cannot rot
unnoticed: the stock bot and the project stack, then scaled mode with two replicas (~80 s)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.procs import snapshot
from bench.run import Config, run

pytestmark = pytest.mark.e2e


def table(report: str) -> dict[tuple[str, str], dict[str, str]]:
    """The report's main table, keyed by (system, concurrency)."""
    lines = [line for line in report.splitlines() if line.startswith("| ")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    rows = {}
    for line in lines[1:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        if cells[:1] == ["system"]:
            break  # the per-service table begins
        row = dict(zip(header, cells, strict=True))
        rows[(row["system"], row["conc."])] = row
    return rows


def test_a_tiny_run_reports_both_systems_without_errors(tmp_path: Path) -> None:
    # The cached stock model in var/bench/stock/ is reused; a fresh clone trains it (~2 min).
    results, printed, path = run(Config(levels=[2], duration=6, warmup=1, out_dir=tmp_path))

    rows = table(path.read_text(encoding="utf-8"))
    for system in ("stock", "project"):
        row = rows[(system, "2")]
        assert float(row["msg/s"]) > 0
        assert row["errors"] == "0", printed
        assert row["lost"] == "0", printed
    assert rows[("project/stock", "2")]["msg/s"].endswith("x")
    assert (tmp_path / "latency.png").stat().st_size > 0

    project = next(r for r in results if r.system == "project")
    assert sum(n for kind, n in project.notes.items() if kind.startswith("verified")) >= 1, printed
    assert {"sandbox", "actions", "rasa"} <= set(project.usage)
    assert all(u.cpu_seconds > 0 for name, u in project.usage.items() if name == "rasa")
    for result in results:  # every process either system started is gone
        assert not snapshot(set(result.services.values()))


def test_a_tiny_scaled_run_spreads_over_both_replicas_without_errors(tmp_path: Path) -> None:
    # scaled-2 only: scaled-1 is the same code with one replica fewer, and starting scaled
    # mode is most of the time (~60 s); the ratios are unit-tested in test_report.py.
    results, printed, path = run(
        Config(levels=[2], duration=6, warmup=1, systems=["scaled-2"], out_dir=tmp_path)
    )

    row = table(path.read_text(encoding="utf-8"))[("scaled-2", "2")]
    assert float(row["msg/s"]) > 0
    assert row["errors"] == "0", printed
    assert row["lost"] == "0", printed
    (scaled,) = results
    assert sum(n for kind, n in scaled.notes.items() if kind.startswith("verified")) >= 1, printed
    every = {"postgres", "redis", "haproxy", "sandbox", "content", "webchat"}
    assert every | {"rasa-1", "rasa-2", "actions-1", "actions-2"} <= set(scaled.usage)
    # Conversations are hashed to replicas: at 2 conversations and several conversations each,
    # both replicas usually work, but one may take them all; the sum is what must be there.
    assert scaled.usage["rasa-1"].cpu_seconds + scaled.usage["rasa-2"].cpu_seconds > 0
    # PostgreSQL's backends start sessions of their own; they are counted with postgres.
    assert scaled.usage["postgres"].peak_rss_bytes > 0
    assert not snapshot(set(scaled.services.values()))  # every process is gone
