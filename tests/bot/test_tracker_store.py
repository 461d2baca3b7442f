"""The tracker store keeps conversations working but never writes personal data to disk."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, BotUttered, SessionStarted, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from rasa_sdk.executor import CollectingDispatcher

from actions.status import ActionDossierStatus
from bot.privacy import PERSONAL_RESPONSES
from bot.settings import ROOT
from bot.tracker_store import DAY, RedactingTrackerStore
from tests.actions.test_status import OWNER

SECRETS = ["001090001234", "0912345678", "482913", "Nguyễn Văn An"]


@pytest.fixture(scope="module")
def domain() -> Domain:
    return Domain.load(str(ROOT / "bot" / "domain"))


def store_at(path: Path, domain: Domain) -> RedactingTrackerStore:
    return RedactingTrackerStore(domain=domain, dialect="sqlite", db=str(path), retention_days=30)


def verified_journey(domain: Domain, sender: str = "web:abc") -> DialogueStateTracker:
    tracker = DialogueStateTracker(sender, domain.slots)
    entity = {"entity": "id_number", "value": "001090001234", "start": 8, "end": 23}
    for event in [
        SessionStarted(),
        ActionExecuted("action_listen"),
        UserUttered(
            "mình là 001 090 001 234, sđt 0912-345-678",
            intent={"name": "inform", "confidence": 0.9},
            entities=[entity],
            parse_data={
                "text": "mình là 001 090 001 234, sđt 0912-345-678",
                "intent": {"name": "inform", "confidence": 0.9},
                "entities": [entity],
            },
        ),
        SlotSet("id_number", "001090001234"),
        BotUttered("mã đã gửi tới 091****678", metadata={"utter_action": "utter_code_sent"}),
        UserUttered("482 913", intent={"name": "inform", "confidence": 0.9}),
        SlotSet("otp", "482913"),
        BotUttered(
            "Xác thực thành công. Xin chào Nguyễn Văn An!",
            # Rasa keeps the values the action filled in next to the response name
            metadata={"utter_action": "utter_identity_verified", "verified_name": "Nguyễn Văn An"},
        ),
        UserUttered("x" * 50_000, intent={"name": "message_too_long", "confidence": 1.0}),
    ]:
        tracker.update(event)
    return tracker


async def test_nothing_personal_reaches_the_database_file(tmp_path: Path, domain: Domain) -> None:
    path = tmp_path / "trackers.db"
    store = store_at(path, domain)
    await store.save(verified_journey(domain))
    store.engine.dispose()
    raw = path.read_bytes().decode("utf-8", errors="replace")
    # json.dumps escapes non-ASCII: look for both spellings of the name
    for secret in SECRETS + ["Nguy\\u1ec5n V\\u0103n An"]:
        assert secret not in raw
    assert "x" * 2100 not in raw  # a huge message is kept cut short
    rows = sqlite3.connect(path).execute("select data from events").fetchall()
    digits = "".join(ch for (data,) in rows for ch in data if ch.isdigit())
    assert "001090001234" not in digits


async def test_the_conversation_still_reads_back(tmp_path: Path, domain: Domain) -> None:
    store = store_at(tmp_path / "trackers.db", domain)
    await store.save(verified_journey(domain))
    tracker = await store.retrieve("web:abc")
    assert tracker is not None
    assert tracker.get_slot("id_number") == "*********234"  # enough to say which number
    assert tracker.get_slot("otp") == "******"
    texts = [e.text for e in tracker.events if isinstance(e, BotUttered)]
    assert "utter_identity_verified" in texts[-1] and "An" not in texts[-1]
    # a later save adds only the new events (the redacted copy does not confuse the count)
    tracker.update(UserUttered("cảm ơn", intent={"name": "thank", "confidence": 1.0}))
    await store.save(tracker)
    again = await store.retrieve("web:abc")
    assert again is not None and len(again.events) == len(tracker.events)


async def test_retention_deletes_idle_conversations_only(tmp_path: Path, domain: Domain) -> None:
    store = store_at(tmp_path / "trackers.db", domain)
    store._last_purge = time.time()  # the hourly purge has just run
    old = DialogueStateTracker("web:old", domain.slots)
    old.update(UserUttered("xin chào", timestamp=time.time() - 40 * DAY))
    await store.save(old)
    await store.save(verified_journey(domain, "web:recent"))
    assert await store.retrieve("web:old") is not None
    assert store.purge(time.time() - 30 * DAY) == 1
    assert await store.retrieve("web:old") is None
    assert await store.retrieve("web:recent") is not None


async def test_retention_runs_by_itself_when_conversations_are_saved(
    tmp_path: Path, domain: Domain
) -> None:
    store = store_at(tmp_path / "trackers.db", domain)
    store._last_purge = time.time() - 2 * 3600  # more than an hour ago
    old = DialogueStateTracker("web:old", domain.slots)
    old.update(UserUttered("xin chào", timestamp=time.time() - 40 * DAY))
    await store.save(old)  # the save that finds the purge due deletes the idle conversation
    assert await store.retrieve("web:old") is None


async def test_personal_responses_cover_everything_the_owner_is_shown() -> None:
    dispatcher = CollectingDispatcher()
    full = {**OWNER, "refusal_reason": "x", "pickup": "y"}
    ActionDossierStatus.show_details(dispatcher, full)
    shown = {m["response"] for m in dispatcher.messages}
    assert shown <= PERSONAL_RESPONSES
    assert "utter_identity_verified" in PERSONAL_RESPONSES
