"""`make bench`: the stock bot, then the project stack, each at every concurrency level.

python -m bench                  # levels 1, 20, 50; 5 s warm-up + 30 s measured per level
python -m bench --quick          # smoke run: levels 1 and 5, 1 s warm-up + 5 s measured
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
from bench.systems import BENCH_LIMITS, PROJECT_MODEL, System, project_stack, stock_bot
from bot.settings import ROOT, VAR

OUT_DIR = VAR / "bench"


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
            f"bench: {system.name:<7} {level:>3} conversations: {result.answered} messages,"
            f" {rate:.1f}/s, {result.error_count} errors, {result.lost} lost",
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
    return [
        f"- run: {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, commit {_git_commit()},"
        f" Rasa {rasa_version()}, project model {PROJECT_MODEL.relative_to(ROOT)}",
        f"- machine: {os.cpu_count()} CPUs ({_cpu_model()}), Python {platform.python_version()};"
        f" load average {load_before[0]:.2f} before, {load_after[0]:.2f} after (the load"
        " generator runs on the same machine; other work on it shows here)",
        f"- levels {', '.join(map(str, config.levels))} concurrent closed-loop conversations,"
        f" each {config.warmup:g} s warm-up (not counted) then {config.duration:g} s measured;"
        f" a message without a reply in {REQUEST_TIMEOUT:g} s is an error",
        "- REST channel on loopback; stock: `rasa init` project as generated (in-memory tracker"
        " store, no action server); project: bot.launcher in sandbox mode (SQLite tracker store,"
        " action server, sandbox APIs, web chat)",
        "- sandbox limits raised for the benchmark only: "
        + ", ".join(f"{k}={v}" for k, v in BENCH_LIMITS.items()),
    ]


def run(config: Config) -> tuple[list[LevelResult], str, Path]:
    """Both systems one after the other; every process they started is stopped on return."""
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
    if "project" in config.systems:
        print("bench: starting the project stack", flush=True)
        with tempfile.TemporaryDirectory(prefix="bench-project-") as tmp:
            try:
                up = time.monotonic()
                with project_stack(Path(tmp)) as system:
                    print(f"bench: project stack up in {time.monotonic() - up:.0f}s", flush=True)
                    results += _measure(system, ProjectScript(), config)
            finally:  # keep the services' logs, the rest of the temporary var/ goes
                shutil.rmtree(logs / "project", ignore_errors=True)
                if (Path(tmp) / "logs").is_dir():
                    shutil.copytree(Path(tmp) / "logs", logs / "project")
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
    parser.add_argument("--systems", nargs="+", choices=["stock", "project"])
    parser.add_argument("--out", type=Path, help=f"report folder (default {OUT_DIR})")
    args = parser.parse_args(argv)
    overrides = {
        name: value
        for name, value in (
            ("levels", args.levels),
            ("duration", args.duration),
            ("warmup", args.warmup),
            ("systems", args.systems),
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
