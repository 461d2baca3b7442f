"""The desk's store without HTTP: office hours, the expected wait, the summary's cleaning, the
masking rule, and the launcher handing the content service Rasa's URL and token."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest

from bot.settings import Settings
from console import handoff as store
from console.db import create_schema, make_engine, transaction
from console.desk_rasa import mask, read_tracker

ZONE = datetime.timezone(datetime.timedelta(hours=7))


def at(text: str) -> float:
    """A local time in Ho Chi Minh City, e.g. 2026-12-04 08:00 (a Friday)."""
    return datetime.datetime.fromisoformat(text).replace(tzinfo=ZONE).timestamp()


def test_the_default_office_hours() -> None:
    hours = store.parse_office_hours("Mon-Fri 07:30-17:00")
    assert hours.is_open(at("2026-12-04 07:30"))  # Friday
    assert hours.is_open(at("2026-12-04 16:59"))
    assert not hours.is_open(at("2026-12-04 17:00"))
    assert not hours.is_open(at("2026-12-04 07:29"))
    assert not hours.is_open(at("2026-12-05 10:00"))  # Saturday


def test_lunch_breaks_saturdays_and_lists_of_days() -> None:
    hours = store.parse_office_hours("Mon-Fri 07:30-11:30,13:00-17:00; Sat 08:00-11:30")
    assert not hours.is_open(at("2026-12-04 12:00"))
    assert hours.is_open(at("2026-12-04 13:00"))
    assert hours.is_open(at("2026-12-05 09:00"))
    assert not hours.is_open(at("2026-12-06 09:00"))  # Sunday
    some = store.parse_office_hours("Mon,Wed 08:00-09:00")
    assert some.is_open(at("2026-12-02 08:30")) and not some.is_open(at("2026-12-01 08:30"))
    assert store.parse_office_hours("always").is_open(at("2026-12-06 03:00"))


@pytest.mark.parametrize(
    "spec", ["", "Mon-Fri", "Mon-Fri 17:00-07:30", "Funday 08:00-09:00", "Mon 8h-9h"]
)
def test_unreadable_office_hours_are_refused(spec: str) -> None:
    with pytest.raises(ValueError, match="OFFICE_HOURS"):
        store.parse_office_hours(spec)


def test_the_wait_is_the_place_times_the_recent_take_time(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'desk.db'}")
    create_schema(engine)
    hours = store.parse_office_hours("always")
    with transaction(engine) as session:
        from console.auth import add_user

        add_user(session, "lan@example.gov.vn", "a-long-password", "agent", actor="test")
        store.touch(session, "lan@example.gov.vn", now=1000.0)
    with transaction(engine) as session:
        # Two earlier handoffs waited 60 s and 120 s: the average is 90 s a place.
        for name, waited in (("old-1", 60.0), ("old-2", 120.0)):
            store.request(session, hours, name, "rest", "vi", "fallbacks", {}, now=100.0)
            store.take(session, "lan@example.gov.vn", name, now=100.0 + waited)
        first = store.request(session, hours, "a", "rest", "vi", "request_human", {}, now=1000.0)
        second = store.request(session, hours, "b", "rest", "vi", "request_human", {}, now=1001.0)
    assert (first["position"], first["wait_minutes"]) == (1, 2)  # 90 s, rounded up
    assert (second["position"], second["wait_minutes"]) == (2, 3)
    with transaction(engine) as session:
        # Nobody seen for more than two minutes: a call back.
        late = store.request(session, hours, "c", "rest", "vi", "fallbacks", {}, now=1200.0)
    assert late["status"] == "unavailable" and late["why"] == "nobody_online"


def test_the_summary_keeps_names_and_flags_only() -> None:
    cleaned = store.clean_summary(
        {
            "intent": "check_status 001090001234",
            "procedure": "000.00.20.H29-261115-0003",
            "dossier_code_given": 1,
            "verified": False,
            "phone": "0912345678",
        }
    )
    assert cleaned == {
        "intent": None,
        "procedure": None,
        "dossier_code_given": True,
        "verified": False,
    }


def test_the_masking_rule() -> None:
    text = (
        "CCCD 001090001234, SĐT +84 912 345 678, mã 000.00.20.H29-261115-0003, a@b.vn, OTP 123456"
    )
    masked = mask(text)
    assert masked == ("CCCD *********234, SĐT ********678, mã [dossier code], [email], OTP ******")
    assert mask(None) == "" and mask(12345678901) == "********901"


def test_agent_messages_are_told_apart_from_the_bot_s() -> None:
    found = read_tracker(
        "c",
        {
            "slots": {"language": "en", "otp": "verified"},
            "events": [
                {"event": "user", "text": "hi"},
                {"event": "pause"},
                {"event": "bot", "text": "Lan here", "metadata": {"from_agent": "lan"}},
                {"event": "bot", "text": "Hello"},
            ],
            "latest_message": {
                "text": "hi",
                "intent_ranking": [{"name": "greet", "confidence": 1}],
            },
        },
    )
    assert [m["who"] for m in found.messages] == ["citizen", "agent", "bot"]
    assert found.paused and found.verified and found.language == "en"


def test_the_launcher_gives_the_content_service_rasa_s_url_and_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RASA_AUTH_TOKEN", raising=False)
    settings = Settings(var_dir=tmp_path, start_sandbox=False)
    env = settings.service_env()
    content = settings.content_env(env)
    assert content["RASA_AUTH_TOKEN"] == settings.rasa_env(env)["RASA_AUTH_TOKEN"]
    assert content["RASA_URL"] == settings.rasa_url
    assert content["PORTAL_API_URL"] == settings.portal_url
