"""Rasa's Sanic workers (RASA_WORKERS), and a worker that dies is replaced.

Rasa runs ``SANIC_WORKERS`` processes on one port when its lock store works across processes
(bot/lock_store.py). Sanic 21.12 forks them and waits for each to end: one that crashes (killed
for memory, say) is never replaced, and the server goes on at half strength without a word,
while the launcher, which watches the main process only, sees nothing wrong. Here the main
process checks its workers twice a second and forks a new one for each that exited, until it is
asked to stop. The code is Sanic 21.12's ``serve_multiple`` (sanic/server/runners.py) with that
loop instead of its ``join``.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import time
from signal import SIGINT, SIGTERM, Signals
from signal import signal as signal_func
from typing import Any

logger = logging.getLogger("bot.workers")

CHECK_SECONDS = 0.5


def serve_multiple(server_settings: dict[str, Any], workers: int) -> None:
    from sanic.log import logger as sanic_logger
    from sanic.server.events import trigger_events
    from sanic.server.runners import serve
    from sanic.server.socket import bind_socket, bind_unix_socket, remove_unix_socket

    server_settings["reuse_port"] = True
    server_settings["run_multiple"] = True
    main_start = server_settings.pop("main_start", None)
    main_stop = server_settings.pop("main_stop", None)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    trigger_events(main_start, loop)

    sock = server_settings.get("sock")
    unix = server_settings["unix"]
    backlog = server_settings["backlog"]
    if unix:
        sock = bind_unix_socket(unix, backlog=backlog)
        server_settings["unix"] = unix
    if sock is None:
        sock = bind_socket(server_settings["host"], server_settings["port"], backlog=backlog)
        sock.set_inheritable(True)
        server_settings["sock"] = sock
        server_settings["host"] = None
        server_settings["port"] = None

    context = multiprocessing.get_context("fork")
    processes: list[Any] = []
    stopping = False

    def start() -> Any:
        process = context.Process(target=serve, kwargs=server_settings)
        process.daemon = True
        process.start()
        return process

    def stop(signal: int, _frame: Any) -> None:
        nonlocal stopping
        stopping = True
        sanic_logger.info("Received signal %s. Shutting down.", Signals(signal).name)
        for process in processes:
            if process.is_alive():
                os.kill(process.pid, SIGTERM)

    signal_func(SIGINT, stop)
    signal_func(SIGTERM, stop)
    processes.extend(start() for _ in range(workers))
    while not stopping:
        for index, process in enumerate(processes):
            if not process.is_alive() and not stopping:
                logger.error(
                    "Rasa worker %s exited (code %s): starting another",
                    process.pid,
                    process.exitcode,
                )
                processes[index] = start()
        time.sleep(CHECK_SECONDS)
    for process in processes:
        process.join()
    for process in processes:
        process.terminate()
    trigger_events(main_stop, loop)
    sock.close()
    loop.close()
    remove_unix_socket(unix)


def install_replaced_workers() -> None:
    import sanic.app

    sanic.app.serve_multiple = serve_multiple  # type: ignore[attr-defined]
