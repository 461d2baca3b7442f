"""`python -m bench.profile`: where the milliseconds of a message go (docs/PERFORMANCE.md).

Starts the whole stack on free ports (as the end-to-end tests do), walks N conversations one
after the other (greeting, a procedure question and its follow-ups, a dossier with identity
verification, goodbye), and prints the latency per message kind, the CPU milliseconds each
process spends per message and, with ``--py-spy``, the share of Rasa's CPU samples spent in each
phase of a message (NLU, tracker store, policies, actions...), from py-spy's raw stacks.
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

from bot.launcher import Supervisor
from bot.settings import ROOT, Settings

MODEL = ROOT / "models" / "current.tar.gz"
SCRIPT = [
    "xin chào",
    "làm căn cước cần giấy tờ gì",
    "lệ phí bao nhiêu",
    "mất bao lâu",
    "hồ sơ 000.00.10.H26-261110-0001 đến đâu rồi",
    "/affirm",
    "001090001234",
    "<code>",
    "tạm biệt",
]
# Inclusive phases of Rasa's message handling, by the function that runs them (py-spy frames
# read "function (file:line)"; RemoteAction.run is lines 748-870 of rasa 3.6.21's action.py).
PHASES = {
    "whole message (handle_message)": r"handle_message \(rasa/core/processor\.py",
    "NLU (parse_message)": r"parse_message \(rasa/core/processor\.py",
    "tracker store: read": r"get_tracker \(rasa/core/processor\.py",
    "tracker store: write": r"save_tracker \(rasa/core/processor\.py",
    "  of which redaction": r"redact_event \(bot/privacy\.py",
    "policies (predict next action)": r"_predict_next_with_tracker \(rasa/core/processor\.py",
    "actions (incl. action server calls)": r"_run_action \(rasa/core/processor\.py",
    "  slot mappings (action_extract_slots)": r"run_action_extract_slots \(rasa/core/processor",
    "  action server round trips (RemoteAction)": (
        r"run \(rasa/core/actions/action\.py:(7[5-9]\d|8[0-6]\d)\)"
    ),
    "  response validation (jsonschema)": r"jsonschema/",
    "logging and masking": r"logmask\.py",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its children (a service may fork a worker)."""
    children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    total = 0.0
    for each in [str(pid), *children.split()]:
        try:
            fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def walk(rasa_url: str, identity_url: str, conversations: int) -> dict[str, list[float]]:
    latencies: dict[str, list[float]] = collections.defaultdict(list)
    with httpx.Client(timeout=60) as client:
        for _ in range(conversations):
            sender = f"profile-{uuid.uuid4().hex[:8]}"
            for text in SCRIPT:
                kind = text
                if text == "<code>":
                    sms = client.get(f"{identity_url}/sandbox/sms", params={"phone": "0912345678"})
                    text = str(sms.json()["messages"][0]["code"])
                started = time.perf_counter()
                reply = client.post(
                    f"{rasa_url}/webhooks/rest/webhook", json={"sender": sender, "message": text}
                )
                latencies[kind].append((time.perf_counter() - started) * 1000)
                if reply.status_code != 200 or not reply.json():
                    raise SystemExit(
                        f"no reply to {kind!r}: {reply.status_code} {reply.text[:200]}"
                    )
    return latencies


def phases(raw: Path) -> list[tuple[str, float]]:
    total = 0
    counts: collections.Counter[str] = collections.Counter()
    for line in raw.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        total += int(n)
        for name, pattern in PHASES.items():
            if re.search(pattern, stack):
                counts[name] += int(n)
    return [(name, 100 * counts[name] / max(1, total)) for name in PHASES]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--conversations", type=int, default=8)
    parser.add_argument("--py-spy", action="store_true", help="sample Rasa with py-spy")
    args = parser.parse_args()
    for name, value in {
        "MAX_CODES_PER_WINDOW": "100000",
        "MAX_CODES_PER_CONVERSATION": "1000",
    }.items():
        os.environ.setdefault(name, value)  # the sandbox's anti-abuse caps, raised for this run
    var_dir = Path(tempfile.mkdtemp(prefix="profile-"))
    settings = Settings(
        host="127.0.0.1",
        rasa_port=free_port(),
        actions_port=free_port(),
        identity_port=free_port(),
        portal_port=free_port(),
        webchat_port=free_port(),
        start_sandbox=True,
        sandbox_mode=True,
        model=str(MODEL),
        var_dir=var_dir,
    )
    supervisor = Supervisor(settings, str(MODEL), log_to_files=True)
    try:
        supervisor.start(timeout=300)
        pids = {s.name: s.process.pid for s in supervisor.services if s.process}
        identity_url = f"http://127.0.0.1:{settings.identity_port}"
        walk(settings.rasa_url, identity_url, 2)  # warm-up: models loaded, caches filled
        spy = None
        raw = var_dir / "rasa.pyspy.txt"
        if args.py_spy:
            spy = subprocess.Popen(
                [
                    str(Path(sys.executable).with_name("py-spy")),
                    "record",
                    "-p",
                    str(pids["rasa"]),
                    "-f",
                    "raw",
                    "-o",
                    str(raw),
                    "-r",
                    "200",
                    "-d",
                    "600",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(1)
        before = {name: cpu_seconds(pid) for name, pid in pids.items()}
        latencies = walk(settings.rasa_url, identity_url, args.conversations)
        used = {name: cpu_seconds(pid) - before[name] for name, pid in pids.items()}
        if spy is not None:
            spy.send_signal(2)  # py-spy writes its file on SIGINT
            spy.wait(30)
    finally:
        supervisor.stop()
    messages = sum(len(v) for v in latencies.values())
    every = [ms for values in latencies.values() for ms in values]
    print(f"{messages} messages, one conversation at a time")
    print(
        f"latency p50 {statistics.median(every):.0f} ms, "
        f"p95 {statistics.quantiles(every, n=20)[-1]:.0f} ms"
    )
    for kind, values in latencies.items():
        print(f"  {kind[:40]:40s} median {statistics.median(values):5.0f} ms")
    print("CPU per message:")
    for name, seconds in used.items():
        print(f"  {name:10s} {1000 * seconds / messages:6.1f} ms")
    if args.py_spy and raw.exists():
        print("Rasa's CPU samples by phase (inclusive; py-spy slows what it samples):")
        for name, share in phases(raw):
            print(f"  {name:44s} {share:5.1f} %")
    shutil.rmtree(var_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
