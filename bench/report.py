"""The benchmark's table (printed and in var/bench/report.md) and its latency plot."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.load import LevelResult

MB = 1024 * 1024


def percentile(values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default); nan when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass
class Row:
    system: str
    concurrency: int
    conversations: int
    completed: int
    messages: int
    throughput: float  # answered messages per second
    p50: float  # milliseconds
    p95: float
    p99: float
    errors: int
    apologies: int  # answered with the action-server-down apology (bench.load.Conversation)
    lost: int
    cpu: float  # seconds, all the system's processes, measured part only
    rss: float  # MB, the services' peaks added up

    @property
    def cpu_per_message(self) -> float:
        return 1000 * self.cpu / self.messages if self.messages else math.nan

    @classmethod
    def of(cls, result: LevelResult) -> Row:
        ms = [1000 * s for s in result.latencies]
        return cls(
            system=result.system,
            concurrency=result.concurrency,
            conversations=len(result.measured_conversations),
            completed=sum(1 for c in result.measured_conversations if c.completed),
            messages=result.answered,
            throughput=result.answered / result.duration if result.duration else 0.0,
            p50=percentile(ms, 50),
            p95=percentile(ms, 95),
            p99=percentile(ms, 99),
            errors=result.error_count,
            apologies=result.apologies,
            lost=result.lost,
            cpu=sum(u.cpu_seconds for u in result.usage.values()),
            rss=sum(u.peak_rss_bytes for u in result.usage.values()) / MB,
        )


HEADER = (
    "system",
    "conc.",
    "conv. (done)",
    "messages",
    "msg/s",
    "p50 ms",
    "p95 ms",
    "p99 ms",
    "errors",
    "apologies",
    "lost",
    "CPU s",
    "CPU ms/msg",
    "RSS MB",
)


def _cells(row: Row) -> list[str]:
    return [
        row.system,
        str(row.concurrency),
        f"{row.conversations} ({row.completed})",
        str(row.messages),
        f"{row.throughput:.1f}",
        f"{row.p50:.0f}",
        f"{row.p95:.0f}",
        f"{row.p99:.0f}",
        str(row.errors),
        str(row.apologies),
        str(row.lost),
        f"{row.cpu:.1f}",
        f"{row.cpu_per_message:.1f}",
        f"{row.rss:.0f}",
    ]


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b and not math.isnan(a) and not math.isnan(b) else "–"


def _ratio_cells(row: Row, base: Row) -> list[str]:
    return [
        f"{row.system}/{base.system}",
        str(row.concurrency),
        "",
        "",
        _ratio(row.throughput, base.throughput),
        _ratio(row.p50, base.p50),
        _ratio(row.p95, base.p95),
        _ratio(row.p99, base.p99),
        "",
        "",
        "",
        _ratio(row.cpu, base.cpu),
        _ratio(row.cpu_per_message, base.cpu_per_message),
        _ratio(row.rss, base.rss),
    ]


# Known systems first, in this order; any other name after them, alphabetically.
ORDER = ("stock", "project", "scaled-1", "scaled-2")


def system_order(names: Iterable[str]) -> list[str]:
    known = {name: i for i, name in enumerate(ORDER)}
    return sorted(set(names), key=lambda n: (known.get(n, len(ORDER)), n))


def ratio_pairs(names: Iterable[str]) -> list[tuple[str, str]]:
    """(system, base) pairs to print as system/base: every system against the stock bot, and
    every scaled-N (N > 1) against scaled-1, what one replica more buys."""
    present = system_order(names)
    pairs = [(name, "stock") for name in present if name != "stock" and "stock" in present]
    if "scaled-1" in present:
        pairs += [
            (name, "scaled-1")
            for name in present
            if name.startswith("scaled-") and name != "scaled-1"
        ]
    return pairs


def table_rows(rows: list[Row]) -> list[list[str]]:
    """One line per system and level, then the ratios of each level (ratio_pairs)."""
    lines: list[list[str]] = []
    for level in sorted({r.concurrency for r in rows}):
        at = {r.system: r for r in rows if r.concurrency == level}
        lines += [_cells(at[system]) for system in system_order(at)]
        lines += [_ratio_cells(at[system], at[base]) for system, base in ratio_pairs(at)]
    return lines


def markdown_table(header: Sequence[str], lines: list[list[str]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(cells) + " |" for cells in lines]
    return "\n".join(out)


def text_table(header: Sequence[str], lines: list[list[str]]) -> str:
    widths = [max(len(c) for c in column) for column in zip(header, *lines, strict=False)]
    return "\n".join(
        "  ".join(
            c.rjust(w) if i else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )
        for cells in [list(header), *lines]
    )


def service_lines(results: list[LevelResult]) -> list[list[str]]:
    lines = []
    for r in results:
        for name, usage in r.usage.items():
            lines.append(
                [
                    r.system,
                    str(r.concurrency),
                    name,
                    f"{usage.cpu_seconds:.1f}",
                    f"{usage.peak_rss_bytes / MB:.0f}",
                    f"{usage.peak_process_rss_bytes / MB:.0f}",
                ]
            )
        lines.append(
            [r.system, str(r.concurrency), "(load generator)", f"{r.client_cpu:.1f}", "", ""]
        )
    return lines


def note_lines(results: list[LevelResult]) -> list[str]:
    lines = []
    for r in results:
        parts = [f"{kind}: {n}" for kind, n in sorted(r.errors.items())]
        parts += [f"{kind}: {n}" for kind, n in sorted(r.notes.items())]
        if r.trackers_missing:
            parts.append(f"trackers not readable: {r.trackers_missing}")
        if parts:
            lines.append(f"- {r.system} at {r.concurrency} concurrent: " + "; ".join(parts))
    return lines


# Stock and project keep the colours of earlier reports; other systems take the spare ones.
COLOURS = {
    "stock": "tab:blue",
    "project": "tab:red",
    "scaled-1": "tab:green",
    "scaled-2": "tab:purple",
}
SPARE_COLOURS = ("tab:orange", "tab:brown", "tab:pink", "tab:olive", "tab:cyan", "tab:gray")


def colours(systems: Iterable[str]) -> dict[str, str]:
    """A colour per system, distinct for up to len(COLOURS) + len(SPARE_COLOURS) systems."""
    ordered = system_order(systems)
    others = [name for name in ordered if name not in COLOURS]
    return {
        name: COLOURS.get(name) or SPARE_COLOURS[others.index(name) % len(SPARE_COLOURS)]
        for name in ordered
    }


def plot(rows: list[Row], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (latency, throughput) = plt.subplots(1, 2, figsize=(10, 4))
    for system, colour in colours(r.system for r in rows).items():
        mine = sorted((r for r in rows if r.system == system), key=lambda r: r.concurrency)
        x = [r.concurrency for r in mine]
        for field, style in (("p50", "-"), ("p95", "--"), ("p99", ":")):
            latency.plot(
                x,
                [getattr(r, field) for r in mine],
                style,
                marker="o",
                color=colour,
                label=f"{system} {field}",
            )
        throughput.plot(x, [r.throughput for r in mine], marker="o", color=colour, label=system)
    levels = sorted({r.concurrency for r in rows})
    latency.set(xlabel="concurrent conversations", ylabel="latency (ms)", yscale="log")
    latency.set_title("Latency per message")
    throughput.set(xlabel="concurrent conversations", ylabel="messages / s", ylim=(0, None))
    throughput.set_title("Throughput")
    for axes in (latency, throughput):
        axes.set_xticks(levels)
        axes.grid(True, alpha=0.3)
        axes.legend(fontsize=8)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)


def write_report(
    results: list[LevelResult], out_dir: Path, settings: list[str]
) -> tuple[str, Path]:
    """Write report.md and latency.png into ``out_dir``; return the printed table and the path."""
    rows = [Row.of(r) for r in results]
    lines = table_rows(rows)
    out_dir.mkdir(parents=True, exist_ok=True)
    picture = out_dir / "latency.png"
    plot(rows, picture)
    notes = note_lines(results)
    body = [
        "# Load benchmark: " + ", ".join(system_order(r.system for r in rows)),
        "",
        *settings,
        "",
        markdown_table(HEADER, lines),
        "",
        "conc.: concurrent closed-loop conversations. conv. (done): conversations that sent a"
        " message in the measured window (those that also ran their whole script). messages:"
        " answered messages sent in the window; latency percentiles over them. errors: HTTP"
        " errors, timeouts and empty replies in the window. apologies: answered messages whose"
        " reply was the apology for an action server down or later than ACTION_TIMEOUT_SECONDS"
        " (bot/rasa_server.py), in the window. lost: answered messages (warm-up"
        " included) with no user event in the tracker store. CPU s: user+system CPU"
        " of every process of the system during the measured window. RSS MB: each service's peak"
        " resident memory (with its children), added up.",
        "",
        f"![latency and throughput against concurrency]({picture.name})",
        "",
        "## Per service",
        "",
        markdown_table(
            ("system", "conc.", "service", "CPU s", "peak RSS MB", "largest process MB"),
            service_lines(results),
        ),
        "",
    ]
    if notes:
        body += ["## Errors and script outcomes", "", *notes, ""]
    path = out_dir / "report.md"
    path.write_text("\n".join(body), encoding="utf-8")
    printed = text_table(HEADER, lines)
    if notes:
        printed += "\n" + "\n".join(notes)
    return printed, path
