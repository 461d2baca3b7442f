"""What the NLG hop costs: `python -m bench.nlg` (`make bench-nlg`).

Every reply a citizen reads goes from Rasa to the content service (`POST /nlg`, bot/nlg.py)
instead of being rendered from the domain inside Rasa. This times, in one run on the same
machine, the same replies made three ways from Rasa's side:

- `domain`: Rasa's own TemplatedNaturalLanguageGenerator (what the stock bot does; the baseline);
- `content service`: bot.nlg.ContentNLG asking a real content service (`python -m console` in its
  own process, as the launcher runs it) over loopback;
- `service down`: ContentNLG with the service gone (its local copy answers).

Sequential calls, one at a time, after a warm-up: the cost of one reply, not a load test (the
load benchmark, `make bench`, includes the hop in every message it times).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
# A greeting with buttons, a form question, a reply with a placeholder filled from a slot.
REPLIES = ("utter_greet", "utter_ask_id_number", "utter_dossier_not_found")


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_service(folder: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    env = dict(
        os.environ,
        STAFF_PORT=str(port),
        BIND_HOST="127.0.0.1",
        CONTENT_DB_URL=f"sqlite:///{folder / 'content.db'}",
        SANDBOX_MODE="1",
        LOG_LEVEL="WARNING",
    )
    log = open(folder / "content.log", "wb")  # noqa: SIM115 - the process keeps it
    process = subprocess.Popen(
        [sys.executable, "-m", "console"], cwd=ROOT, env=env, stdout=log, stderr=log
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the content service exited: see {folder / 'content.log'}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return process, url
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    process.kill()
    raise RuntimeError("the content service did not start within 90 s")


async def _time(call: Callable[[], Awaitable[Any]], count: int, warmup: int) -> list[float]:
    for _ in range(warmup):
        await call()
    times = []
    for _ in range(count):
        started = time.perf_counter()
        reply = await call()
        times.append((time.perf_counter() - started) * 1000)
        if not reply or not reply.get("text"):
            raise RuntimeError("an empty reply: the benchmark would time nothing")
    return times


def _summary(times: Sequence[float]) -> tuple[float, float, float]:
    ordered = sorted(times)
    return (
        statistics.fmean(ordered),
        ordered[len(ordered) // 2],
        ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))],
    )


async def measure(count: int, warmup: int) -> list[tuple[str, str, tuple[float, float, float]]]:
    from rasa.core.nlg.generator import NaturalLanguageGenerator
    from rasa.core.nlg.response import TemplatedNaturalLanguageGenerator
    from rasa.shared.core.domain import Domain
    from rasa.shared.core.events import ActionExecuted, SlotSet, UserUttered
    from rasa.shared.core.trackers import DialogueStateTracker
    from rasa.utils.endpoints import EndpointConfig

    from bot.nlg import ContentNLG

    domain = Domain.load(str(ROOT / "bot" / "domain"))
    tracker = DialogueStateTracker.from_events(
        "bench",
        [
            ActionExecuted("action_listen"),
            UserUttered("xin chào", intent={"name": "greet", "confidence": 0.97}),
            SlotSet("language", "vi"),
            SlotSet("dossier_code", "000.00.10.H26-261110-0001"),
        ],
        slots=domain.slots,
    )
    stock = TemplatedNaturalLanguageGenerator(domain.responses)
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-nlg-") as folder:
        process, url = _start_service(Path(folder))
        try:
            config = EndpointConfig(url=url, type="bot.nlg.ContentNLG", timeout=0.5)
            content = NaturalLanguageGenerator.create(config, domain)
            assert isinstance(content, ContentNLG)
            await content.refresh()  # the local copy, as the poller would have it
            for name in REPLIES:
                if name not in domain.responses:
                    raise RuntimeError(f"{name} is not in the domain: update bench/nlg.py")

                def stock_call(name: str = name) -> Awaitable[Any]:
                    return stock.generate(name, tracker, "rest")

                def content_call(name: str = name) -> Awaitable[Any]:
                    return content.generate(
                        name, tracker, "rest", domain_responses=domain.responses
                    )

                results.append((name, "domain", _summary(await _time(stock_call, count, warmup))))
                results.append(
                    (name, "content service", _summary(await _time(content_call, count, warmup)))
                )
        finally:
            process.terminate()
            process.wait(timeout=20)
        # The service is gone: the first call fails and marks it down; then the local copy.
        for name in REPLIES:

            def down_call(name: str = name) -> Awaitable[Any]:
                return content.generate(name, tracker, "rest", domain_responses=domain.responses)

            results.append((name, "service down", _summary(await _time(down_call, count, warmup))))
        await content.close()
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.nlg", description=__doc__)
    parser.add_argument("--count", type=int, default=300, help="timed calls per reply and way")
    parser.add_argument("--warmup", type=int, default=20)
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    results = asyncio.run(measure(args.count, args.warmup))
    baseline = {name: summary for name, way, summary in results if way == "domain"}
    print(f"\n{'reply':30} {'way':16} {'mean ms':>8} {'p50 ms':>8} {'p95 ms':>8} {'+mean':>8}")
    for name, way, (mean, p50, p95) in results:
        extra = mean - baseline[name][0]
        print(f"{name:30} {way:16} {mean:8.2f} {p50:8.2f} {p95:8.2f} {extra:+8.2f}")
    print(
        f"\n{args.count} sequential calls per row after {args.warmup} warm-up calls; "
        f"1-min load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
