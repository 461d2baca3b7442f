"""CPU seconds and peak RSS of each service, read from /proc (Linux) every ~0.2 s.

Every service is started in a session of its own (the launcher's and the stock bot's
``start_new_session=True``), so a service's processes are those whose session id is the
service's pid: children (Sanic workers, uvicorn, multiprocessing helpers) are included. A child
that starts a session of its own is counted with the service it descends from: PostgreSQL's
backends and background workers each call setsid(), so the postmaster's session holds the
postmaster alone. psutil is not among the project's dependencies; /proc gives the same numbers.
A process that exits between two samples keeps the CPU of its last sample only.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

PROC = Path("/proc")
_TICK = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


@dataclass
class Usage:
    """One service's use of the machine over one measured interval."""

    cpu_seconds: float = 0.0
    peak_rss_bytes: int = 0  # the service's processes added up
    peak_process_rss_bytes: int = 0  # its largest single process (a Rasa worker, say)


def _stat(pid: str) -> tuple[int, int, float, int] | None:
    """(parent pid, session id, user+system CPU seconds, RSS bytes) of one process, None if it
    is gone."""
    try:
        raw = (PROC / pid / "stat").read_text()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold spaces: split after it.
    fields = raw[raw.rfind(")") + 2 :].split()
    # fields[0] is field 3 of proc(5): ppid is 4, session 6, utime 14, stime 15, rss 24.
    parent, session = int(fields[1]), int(fields[3])
    cpu = (int(fields[11]) + int(fields[12])) / _TICK
    rss = int(fields[21]) * _PAGE
    return parent, session, cpu, rss


def snapshot(sessions: set[int]) -> dict[int, tuple[int, float, int]]:
    """pid -> (session, cpu seconds, rss bytes) of every process in ``sessions`` or descended
    from one (then ``session`` is that ancestor's: the service it belongs to)."""
    every: dict[int, tuple[int, int, float, int]] = {}
    for entry in os.scandir(PROC):
        if entry.name.isdigit():
            stat = _stat(entry.name)
            if stat is not None:
                every[int(entry.name)] = stat
    owner: dict[int, int | None] = {}

    def service_of(pid: int) -> int | None:
        chain = []
        while pid in every and pid not in owner:
            chain.append(pid)
            if every[pid][1] in sessions:
                owner[pid] = every[pid][1]
                break
            pid = every[pid][0]
        found = owner.get(pid)
        for seen in chain:
            owner[seen] = found
        return found

    found: dict[int, tuple[int, float, int]] = {}
    for pid, (_, _, cpu, rss) in every.items():
        session = service_of(pid)
        if session is not None:
            found[pid] = (session, cpu, rss)
    return found


@dataclass
class Sampler:
    """Samples named services (name -> session leader pid) in a thread between start and stop."""

    services: dict[str, int]
    interval: float = 0.2
    _base: dict[int, float] = field(default_factory=dict)
    _last: dict[int, tuple[int, float, int]] = field(default_factory=dict)
    _peak: dict[int, int] = field(default_factory=dict)
    _peak_one: dict[int, int] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def _sample(self) -> None:
        now = snapshot(set(self.services.values()))
        self._last.update(now)
        for session in set(self.services.values()):
            each = [s[2] for s in now.values() if s[0] == session]
            self._peak[session] = max(self._peak.get(session, 0), sum(each))
            self._peak_one[session] = max(self._peak_one.get(session, 0), max(each, default=0))

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def start(self) -> None:
        self._base = {pid: s[1] for pid, s in snapshot(set(self.services.values())).items()}
        self._last, self._peak, self._peak_one = {}, {}, {}
        self._stop.clear()
        self._sample()
        self._thread = threading.Thread(target=self._loop, name="bench-sampler", daemon=True)
        self._thread.start()

    def stop(self) -> dict[str, Usage]:
        """Usage per service since start: CPU of processes seen (new ones from 0), peak RSS."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._sample()
        usage: dict[str, Usage] = {}
        for name, session in self.services.items():
            cpu = sum(
                s[1] - self._base.get(pid, 0.0) for pid, s in self._last.items() if s[0] == session
            )
            usage[name] = Usage(
                cpu_seconds=max(cpu, 0.0),
                peak_rss_bytes=self._peak.get(session, 0),
                peak_process_rss_bytes=self._peak_one.get(session, 0),
            )
        return usage
