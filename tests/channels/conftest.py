"""Fixtures of the channel tests; the fakes themselves live in channel_fakes.py."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.channels.channel_fakes import FakeTelegramApi


@pytest.fixture
async def fake_telegram() -> AsyncIterator[FakeTelegramApi]:
    api = FakeTelegramApi()
    await api.start()
    try:
        yield api
    finally:
        await api.stop()
