"""The tracker store keeps recent sessions in memory, and still reads what the database says:
another worker's messages, a new session, a deleted conversation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, BotUttered, SessionStarted, SlotSet, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from bot.settings import ROOT
from bot.tracker_store import RedactingTrackerStore


@pytest.fixture(scope="module")
def domain() -> Domain:
    return Domain.load(str(ROOT / "bot" / "domain"))


def store_at(path: Path, domain: Domain) -> RedactingTrackerStore:
    return RedactingTrackerStore(domain=domain, dialect="sqlite", db=str(path), retention_days=0)


def turn(text: str, reply: str) -> list[Any]:
    intent = {"name": "ask_fee", "confidence": 0.9}
    return [
        UserUttered(text, intent, [], {"text": text, "intent": intent, "entities": []}),
        SlotSet("procedure", "passport"),
        ActionExecuted("utter_x"),
        BotUttered(reply, metadata={"utter_action": "utter_x"}),
        ActionExecuted("action_listen"),
    ]


async def say(store: RedactingTrackerStore, sender: str, text: str) -> DialogueStateTracker:
    """One message handled the way Rasa's processor does: read, add events, write."""
    tracker = await store.get_or_create_tracker(sender)
    for event in turn(text, f"re: {text}"):
        tracker.update(event)
    await store.save(tracker)
    return tracker


def texts(tracker: DialogueStateTracker | None) -> list[str]:
    assert tracker is not None
    return [e.text for e in tracker.events if isinstance(e, UserUttered)]


async def test_two_workers_on_one_database_see_each_others_messages(
    tmp_path: Path, domain: Domain
) -> None:
    one, two = store_at(tmp_path / "t.db", domain), store_at(tmp_path / "t.db", domain)
    await say(one, "web:a", "first")
    await say(two, "web:a", "second")  # two reads one's message, then writes after it
    await say(one, "web:a", "third")  # one kept "first" only: it must read "second" too
    assert texts(await two.retrieve("web:a")) == ["first", "second", "third"]
    assert texts(await one.retrieve("web:a")) == ["first", "second", "third"]
    # What Rasa's own SQL store reads from the file: nothing written twice, nothing lost.
    rasa = SQLTrackerStore(domain=domain, dialect="sqlite", db=str(tmp_path / "t.db"))
    assert texts(await rasa.retrieve("web:a")) == ["first", "second", "third"]
    assert len((await rasa.retrieve("web:a")).events) == len((await one.retrieve("web:a")).events)


async def test_a_kept_session_reads_like_the_database(tmp_path: Path, domain: Domain) -> None:
    store = store_at(tmp_path / "t.db", domain)
    for text in ["a", "b", "c"]:
        kept = await say(store, "web:a", text)
    read = await store.retrieve("web:a")
    rasa = SQLTrackerStore(domain=domain, dialect="sqlite", db=str(tmp_path / "t.db"))
    from_file = await rasa.retrieve("web:a")
    assert read is not None and from_file is not None
    assert [e.as_dict() for e in read.events] == [e.as_dict() for e in from_file.events]
    slots = read.current_slot_values()
    assert slots == from_file.current_slot_values() == kept.current_slot_values()


async def test_unchanged_conversations_are_not_read_again(
    tmp_path: Path, domain: Domain, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = store_at(tmp_path / "t.db", domain)
    await say(store, "web:a", "a")

    def no_full_read(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the whole session was read again")

    monkeypatch.setattr(store, "_event_query", no_full_read)
    await say(store, "web:a", "b")
    assert texts(await store.retrieve("web:a")) == ["a", "b"]


async def test_a_new_session_started_elsewhere_is_read_afresh(
    tmp_path: Path, domain: Domain
) -> None:
    one, two = store_at(tmp_path / "t.db", domain), store_at(tmp_path / "t.db", domain)
    await say(one, "web:a", "old")
    tracker = await two.retrieve("web:a")
    assert tracker is not None
    for event in [ActionExecuted("action_session_start"), SessionStarted()]:
        tracker.update(event)
    for event in turn("new", "re: new"):
        tracker.update(event)
    await two.save(tracker)
    assert texts(await one.retrieve("web:a")) == ["new"]
    assert texts(await two.retrieve("web:a")) == ["new"]


async def test_a_deleted_conversation_is_gone_for_every_worker(
    tmp_path: Path, domain: Domain
) -> None:
    one, two = store_at(tmp_path / "t.db", domain), store_at(tmp_path / "t.db", domain)
    await say(one, "web:a", "a")
    assert two.purge(cutoff=10**12) == 1
    assert await one.retrieve("web:a") is None
    await say(one, "web:a", "again")
    assert texts(await one.retrieve("web:a")) == ["again"]
