"""`make bench`: the stock bot, then the project stack, each at every concurrency level.

python -m bench                  # levels 1, 20, 50; 5 s warm-up + 30 s measured per level
python -m bench --quick          # smoke run: levels 1 and 5, 1 s warm-up + 5 s measured
python -m bench --scaled         # stock, then scaled mode with 1 and then 2 Rasa replicas
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from bench.load import REQUEST_TIMEOUT, LevelResult, Script, run_level
from bench.procs import Sampler
from bench.scripts import ProjectScript, stock_script
from bench.stock import STOCK_DIR, build_stock, rasa_version
from bench.systems import (
    ACTION_SERVERS,
    BENCH_LIMITS,
    PROJECT_MODEL,
    System,
    project_stack,
    replicas_of,
    stock_bot,
)
from bot.settings import ROOT, VAR

OUT_DIR = VAR / "bench"
# Every system the benchmark knows, in the order a run measures them (stock first).
SYSTEMS = ("stock", "project", "scaled-1", "scaled-2")
SCALED_SYSTEMS = ["stock", "scaled-1", "scaled-2"]


@dataclass
class Config:
    levels: list[int] = field(default_factory=lambda: [1, 20, 50])
    duration: float = 30.0  # measured seconds per level
    warmup: float = 5.0  # seconds per level before measuring, not counted
    systems: list[str] = field(default_factory=lambda: ["stock", "project"])
    out_dir: Path = OUT_DIR
    stock_dir: Path = STOCK_DIR
    deadline: float = 1800.0  # the whole run, stock training included

    @classmethod
    def quick(cls, **overrides: object) -> Config:
        values: dict[str, object] = {
            "levels": [1, 5],
            "duration": 5.0,
            "warmup": 1.0,
            "deadline": 900.0,
        }
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]


def _measure(system: System, script: Script, config: Config) -> list[LevelResult]:
    sampler = Sampler(system.services)
    results = []
    for level in config.levels:
        result = asyncio.run(
            run_level(system, script, level, config.duration, config.warmup, sampler)
        )
        system.alive()
        rate = result.answered / result.duration if result.duration else 0.0
        print(
            f"bench: {system.name:<8} {level:>3} conversations: {result.answered} messages,"
            f" {rate:.1f}/s, {result.error_count} errors, {result.apologies} apologies,"
            f" {result.lost} lost",
            flush=True,
        )
        results.append(result)
    return results


def _git_commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "?"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def _settings_lines(config: Config, load_before: tuple[float, ...]) -> list[str]:
    load_after = os.getloadavg()
    lines = [
        f"- run: {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, commit {_git_commit()},"
        f" Rasa {rasa_version()}, project model {PROJECT_MODEL.relative_to(ROOT)}",
        f"- machine: {os.cpu_count()} CPUs ({_cpu_model()}), Python {platform.python_version()};"
        f" load average {load_before[0]:.2f} before, {load_after[0]:.2f} after (the load"
        " generator runs on the same machine; other work on it shows here)",
        f"- levels {', '.join(map(str, config.levels))} concurrent closed-loop conversations,"
        f" each {config.warmup:g} s warm-up (not counted) then {config.duration:g} s measured;"
        f" a message without a reply in {REQUEST_TIMEOUT:g} s is an error",
        "- REST channel on loopback; stock: `rasa init` project as generated (in-memory tracker"
        " store, no action server)",
    ]
    if "project" in config.systems:
        lines.append(
            "- project: bot.launcher in embedded sandbox mode (SQLite tracker store, one Rasa,"
            " one action server, sandbox APIs, content service, web chat)"
        )
    scaled = [name for name in config.systems if name.startswith("scaled-")]
    if scaled:
        lines.append(
            f"- {', '.join(scaled)}: bot.launcher in scaled sandbox mode with that many Rasa"
            f" replicas and {ACTION_SERVERS} action servers behind HAProxy (conversations hashed"
            " to replicas by sender), PostgreSQL tracker store, Redis lock store and shared state,"
            " sandbox APIs, content service, web chat; CPU and RSS counted for every process of"
            " each (PostgreSQL's backends included, although each starts a session of its own)"
        )
    lines.append(
        "- sandbox limits raised for the benchmark only: "
        + ", ".join(f"{k}={v}" for k, v in BENCH_LIMITS.items())
    )
    return lines


def run(config: Config) -> tuple[list[LevelResult], str, Path]:
    """The systems one after the other; every process they started is stopped on return."""
    load_before = os.getloadavg()
    logs = config.out_dir / "logs"
    results: list[LevelResult] = []
    if "stock" in config.systems:
        model = build_stock(config.stock_dir)
        print("bench: starting the stock bot", flush=True)
        up = time.monotonic()
        with stock_bot(model, logs) as system:
            print(f"bench: stock bot up in {time.monotonic() - up:.0f}s", flush=True)
            results += _measure(system, stock_script, config)
    for name in (n for n in SYSTEMS if n in config.systems and n != "stock"):
        replicas = replicas_of(name)
        what = "the project stack" if replicas is None else f"scaled mode, {replicas} replica(s)"
        print(f"bench: starting {what}", flush=True)
        with tempfile.TemporaryDirectory(prefix=f"bench-{name}-") as tmp:
            try:
                up = time.monotonic()
                with project_stack(Path(tmp), replicas=replicas) as system:
                    print(f"bench: {name} up in {time.monotonic() - up:.0f}s", flush=True)
                    results += _measure(system, ProjectScript(), config)
            finally:  # keep the services' logs, the rest of the temporary var/ goes
                shutil.rmtree(logs / name, ignore_errors=True)
                if (Path(tmp) / "logs").is_dir():
                    shutil.copytree(Path(tmp) / "logs", logs / name)
    from bench.report import write_report

    printed, path = write_report(results, config.out_dir, _settings_lines(config, load_before))
    return results, printed, path


class _Stop(Exception):
    """A signal or the run's deadline: unwind, so every `finally` stops its processes."""


def _raise(signum: int, _frame: object) -> None:
    raise _Stop(signal.Signals(signum).name)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: levels 1 and 5, 5 s")
    parser.add_argument("--levels", type=int, nargs="+", help="concurrency levels")
    parser.add_argument("--duration", type=float, help="measured seconds per level")
    parser.add_argument("--warmup", type=float, help="warm-up seconds per level")
    parser.add_argument(
        "--scaled",
        action="store_true",
        help="stock, then scaled mode with 1 and 2 Rasa replicas (instead of embedded mode)",
    )
    parser.add_argument("--systems", nargs="+", choices=SYSTEMS, help="default: stock project")
    parser.add_argument("--out", type=Path, help=f"report folder (default {OUT_DIR})")
    args = parser.parse_args(argv)
    overrides = {
        name: value
        for name, value in (
            ("levels", args.levels),
            ("duration", args.duration),
            ("warmup", args.warmup),
            ("systems", args.systems or (SCALED_SYSTEMS if args.scaled else None)),
            ("out_dir", args.out),
        )
        if value is not None
    }
    config = Config.quick(**overrides) if args.quick else Config(**overrides)  # type: ignore[arg-type]
    for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGALRM):
        signal.signal(signum, _raise)
    signal.alarm(int(config.deadline))
    started = time.monotonic()
    try:
        _, printed, path = run(config)
    except (KeyboardInterrupt, _Stop) as exc:
        reason = "deadline" if str(exc) == "SIGALRM" else "interrupted"
        print(f"bench: {reason}; every process it started is stopped", file=sys.stderr)
        sys.exit(130)
    except RuntimeError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        sys.exit(1)
    finally:
        signal.alarm(0)
    print(f"\n{printed}\n\nbench: {time.monotonic() - started:.0f}s; report in {path}")
