"""The report and the sampler on made-up inputs: any set of systems, not only stock and project.

The figures are invented; what is tested is the report code (which rows, which ratios, the
plot) and that the sampler counts a service's children that start sessions of their own.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench.load import Conversation, LevelResult, count_user_events
from bench.procs import Sampler, Usage, snapshot
from bench.report import colours, ratio_pairs, system_order, write_report
from bench.run import SCALED_SYSTEMS, SYSTEMS, main
from bench.systems import System, replicas_of, system_name
from bot.rasa_server import ACTION_SERVER_DOWN
from tests.bench.test_bench import table


def made_up(system: str, concurrency: int, rate: float, latency: float) -> LevelResult:
    """A level that answered ``rate`` messages/s for 10 s, every message in ``latency`` s."""
    result = LevelResult(system=system, concurrency=concurrency, duration=10.0)
    result.latencies = [latency] * int(rate * 10)
    result.usage = {"rasa": Usage(cpu_seconds=rate, peak_rss_bytes=500 * 1024 * 1024)}
    return result


def test_scaled_run_reports_every_system_and_its_ratios(tmp_path: Path) -> None:
    systems = (("stock", 20, 0.05), ("scaled-1", 8, 0.2), ("scaled-2", 12, 0.1))
    results = [
        made_up(system, level, rate * level, latency)
        for system, rate, latency in systems
        for level in (1, 20)
    ]
    printed, path = write_report(results, tmp_path, ["- settings"])

    rows = table(path.read_text(encoding="utf-8"))
    for level in ("1", "20"):
        for system in ("stock", "scaled-1", "scaled-2"):
            assert float(rows[(system, level)]["msg/s"]) > 0
        assert set(rows) >= {
            ("scaled-1/stock", level),
            ("scaled-2/stock", level),
            ("scaled-2/scaled-1", level),
        }
    assert ("project/stock", "1") not in rows
    assert rows[("scaled-2/scaled-1", "1")]["msg/s"] == "1.50x"
    assert rows[("scaled-2/scaled-1", "20")]["p50 ms"] == "0.50x"
    assert rows[("scaled-1/stock", "1")]["msg/s"] == "0.40x"
    # One level's rows together, systems in the order they ran, then the ratios.
    systems = [line.split()[0] for line in printed.splitlines()[1:]]
    assert systems[:6] == [
        "stock",
        "scaled-1",
        "scaled-2",
        "scaled-1/stock",
        "scaled-2/stock",
        "scaled-2/scaled-1",
    ]
    assert (tmp_path / "latency.png").stat().st_size > 0
    assert "# Load benchmark: stock, scaled-1, scaled-2" in path.read_text(encoding="utf-8")


def test_the_usual_run_reports_as_before(tmp_path: Path) -> None:
    results = [made_up("stock", 1, 20, 0.05), made_up("project", 1, 10, 0.1)]
    printed, path = write_report(results, tmp_path, [])
    rows = table(path.read_text(encoding="utf-8"))
    assert set(rows) == {("stock", "1"), ("project", "1"), ("project/stock", "1")}
    assert rows[("project/stock", "1")]["msg/s"] == "0.50x"


def test_ratios_need_their_base() -> None:
    assert ratio_pairs(["scaled-2", "scaled-1"]) == [("scaled-2", "scaled-1")]
    assert ratio_pairs(["project", "scaled-2"]) == []
    assert ratio_pairs(["stock", "project", "scaled-2", "scaled-1"]) == [
        ("project", "stock"),
        ("scaled-1", "stock"),
        ("scaled-2", "stock"),
        ("scaled-2", "scaled-1"),
    ]


def test_every_system_gets_a_colour_of_its_own() -> None:
    names = ["stock", "project", "scaled-1", "scaled-2", "scaled-3", "scaled-4", "other"]
    given = colours(names)
    assert list(given) == system_order(names)
    assert len(set(given.values())) == len(names)
    assert given["stock"] == "tab:blue" and given["project"] == "tab:red"


def test_system_names() -> None:
    assert SYSTEMS[0] == "stock"
    assert [replicas_of(name) for name in SYSTEMS[1:]] == [None, 1, 2]
    assert [system_name(replicas_of(name)) for name in SYSTEMS[1:]] == list(SYSTEMS[1:])
    assert set(SCALED_SYSTEMS) <= set(SYSTEMS)
    for wrong in ("scaled-0", "scaled-x", "stock"):
        with pytest.raises(ValueError):
            replicas_of(wrong)


def test_systems_accepts_the_scaled_names() -> None:
    with pytest.raises(SystemExit) as refused:
        main(["--systems", "scaled-3"])
    assert refused.value.code == 2  # argparse: not a choice


def test_sampler_counts_children_that_start_sessions_of_their_own() -> None:
    # As PostgreSQL's backends do: the service's session leader forks a child that calls
    # setsid(), so the session holds the leader alone.
    child = (
        "import os, time\n"
        "os.setsid()\n"
        "deadline = time.process_time() + 0.5\n"
        "while time.process_time() < deadline: pass\n"
        "time.sleep(30)\n"
    )
    leader = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import subprocess, sys; subprocess.run([sys.executable, '-c', {child!r}])",
        ],
        start_new_session=True,
    )
    try:
        sampler = Sampler({"service": leader.pid}, interval=0.05)
        sampler.start()
        time.sleep(1.5)
        usage = sampler.stop()
        found = snapshot({leader.pid})
        assert len(found) == 2, found  # the leader and its child in a session of its own
        assert {session for session, _, _ in found.values()} == {leader.pid}
        assert usage["service"].cpu_seconds >= 0.3
    finally:
        os.killpg(leader.pid, 15)
        for pid in snapshot({leader.pid}):
            try:
                os.kill(pid, 15)
            except ProcessLookupError:
                pass
        leader.wait(timeout=10)


async def test_apologies_are_counted_from_the_tracker_in_the_measured_window() -> None:
    # The reply to a turn whose custom actions were late is the apology: an answered message,
    # but not the answer; the tracker's bot events say which reply it was.
    def apology(at: float) -> dict[str, Any]:
        return {"event": "bot", "timestamp": at, "metadata": {"utter_action": ACTION_SERVER_DOWN}}

    events = [
        {"event": "user", "timestamp": 90.0},
        apology(95.0),  # warm-up: not counted
        {"event": "user", "timestamp": 101.0},
        apology(102.0),
        {"event": "bot", "timestamp": 102.5, "metadata": {"utter_action": "utter_greet"}},
        {"event": "user", "timestamp": 103.0},
    ]

    def answer(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/conversations/rest:c1/tracker"
        return httpx.Response(200, json={"events": events})

    system = System("scaled-2", "http://rasa", "t", {}, lambda sender: f"rest:{sender}")
    result = LevelResult(system="scaled-2", concurrency=1, measure_from_wall=100.0)
    result.conversations = [Conversation(sender="c1", answered=3)]
    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as client:
        await count_user_events(client, system, result)
    assert result.apologies == 1
    assert result.user_events == 3 and result.lost == 0
