"""The embedded stack's two Rasa workers share one SQLite lock store: messages sent at once to
one conversation are each handled once, whole turns one after the other, none lost."""

from __future__ import annotations

import threading
import uuid
from collections import Counter

import httpx
import pytest

from tests.e2e.conftest import Stack
from tests.e2e.test_scaled import check_turns_are_whole

pytestmark = pytest.mark.e2e


def test_messages_at_once_to_one_conversation_on_two_workers(stack: Stack) -> None:
    assert stack.settings is not None and stack.settings.rasa_workers == 2
    sender = f"race-{uuid.uuid4().hex[:8]}"
    sent = [f"xin chào lần {i}" for i in range(16)]
    answered: dict[str, bool] = {}

    def send(text: str) -> None:
        response = httpx.post(
            f"{stack.rasa_url}/webhooks/rest/webhook",
            json={"sender": sender, "message": text},
            timeout=120,
        )
        answered[text] = response.status_code == 200 and bool(response.json())

    threads = [threading.Thread(target=send, args=(text,)) for text in sent]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=180)
    assert answered == {text: True for text in sent}
    tracker = stack.api("GET", f"/conversations/rest:{sender}/tracker").json()
    received = Counter(e.get("text") for e in tracker["events"] if e["event"] == "user")
    assert received == Counter(sent)
    check_turns_are_whole(tracker["events"])
