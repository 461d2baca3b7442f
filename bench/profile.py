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
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

from bench.procs import Sampler
from bench.systems import project_stack

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
    var_dir = Path(tempfile.mkdtemp(prefix="profile-"))
    raw = var_dir / "rasa.pyspy.txt"
    # The stack as the benchmark starts it (bench.systems), its CPU read as the benchmark does.
    with project_stack(var_dir) as system:
        walk(system.rasa_url, system.identity_url, 2)  # warm-up: model loaded, caches filled
        spy = None
        if args.py_spy:
            spy = subprocess.Popen(
                [
                    str(Path(sys.executable).with_name("py-spy")),
                    "record",
                    "-p",
                    str(system.services["rasa"]),
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
        sampler = Sampler(system.services)
        sampler.start()
        latencies = walk(system.rasa_url, system.identity_url, args.conversations)
        used = {name: usage.cpu_seconds for name, usage in sampler.stop().items()}
        if spy is not None:
            spy.send_signal(2)  # py-spy writes its file on SIGINT
            spy.wait(30)
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
