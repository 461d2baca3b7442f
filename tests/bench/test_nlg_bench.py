"""`make bench-nlg` on a few calls, so the NLG hop's benchmark cannot rot unnoticed."""

from __future__ import annotations

import pytest

from bench.nlg import REPLIES, main

pytestmark = pytest.mark.e2e  # it starts a content service of its own


def test_a_tiny_run_times_every_reply_three_ways(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--count", "3", "--warmup", "1"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()]
    ways = {(row[0], " ".join(row[1:-4])) for row in rows if row and row[0] in REPLIES}
    assert ways == {
        (name, way) for name in REPLIES for way in ("domain", "content service", "service down")
    }
