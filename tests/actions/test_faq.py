"""FAQ retrieval in the fallback: rephrasings (no diacritics, abbreviations) are answered, other
messages fall to the usual fallback and are reported masked; withdrawals vanish on the next
refresh; the content service down is the usual fallback. One test runs the real content
service's app in process (httpx.ASGITransport), so the fake below follows its real answers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from rasa_sdk.executor import CollectingDispatcher

from actions.faq import (
    THRESHOLD,
    ActionAnswerFaqOrFallback,
    FaqIndex,
    FaqSource,
    background_frequencies,
    mask,
    set_faq_source,
)
from tests.actions.helpers import make_tracker, responses

HEALTH_CARD = {
    "id": 1,
    "version": 1,
    "questions": {
        "vi": ["Mất thẻ bảo hiểm y tế thì xin cấp lại ở đâu?"],
        "en": ["Where do I get a lost health insurance card replaced?"],
    },
    "answer": {
        "vi": "Bạn xin cấp lại thẻ trên VNeID hoặc tại cơ quan bảo hiểm xã hội.",
        "en": "Ask for a new card in VNeID or at the social insurance office.",
    },
    "source": "https://baohiemxahoi.gov.vn/",
    "reviewed_on": "2026-11-30",
    "valid_from": None,
    "valid_until": None,
}
CHILD_CARD = {
    **HEALTH_CARD,
    "id": 2,
    "questions": {"vi": ["Trẻ em dưới 14 tuổi có làm căn cước công dân được không?"], "en": []},
    "answer": {"vi": "Được, cha mẹ làm thủ tục cho con.", "en": "Yes, a parent applies."},
    "source": "https://dichvucong.gov.vn/",
}
UNRELATED = [
    "tôi muốn đặt vé máy bay",
    "thoi tiet hom nay the nao",
    "ban ten gi",
    "what is the weather",
    "asdkjh qwe",
    "cho hỏi lệ phí đổi hộ chiếu",
]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeContentService:
    """The internal routes as the content service answers them (ETag, 304, entries)."""

    def __init__(self, entries: list[dict[str, Any]]) -> None:
        self.entries = entries
        self.counter = 1
        self.down = False
        self.gets: list[httpx.Request] = []
        self.reported: list[dict[str, Any]] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            raise httpx.ConnectError("connection refused", request=request)
        if request.method == "POST" and request.url.path == "/internal/unanswered":
            self.reported.append(json.loads(request.content))
            return httpx.Response(202, json={"recorded": True})
        self.gets.append(request)
        etag = f'"{self.counter}-2026-12-03"'
        if request.headers.get("If-None-Match") == etag:
            return httpx.Response(304, headers={"ETag": etag})
        body = {"version": etag.strip('"'), "entries": self.entries}
        return httpx.Response(200, json=body, headers={"ETag": etag})

    def source(self, clock: Clock) -> FaqSource:
        return FaqSource(
            "http://content.test", "secret", transport=httpx.MockTransport(self.handle), clock=clock
        )


@pytest.fixture(scope="module", autouse=True)
def warm_background() -> None:
    """The NLU examples are read once per process (the action server's first fallback)."""
    background_frequencies()


@pytest.fixture()
def clock() -> Clock:
    return Clock()


@pytest.fixture()
def service(clock: Clock) -> Iterator[FakeContentService]:
    fake = FakeContentService([HEALTH_CARD, CHILD_CARD])
    set_faq_source(fake.source(clock))
    yield fake
    set_faq_source(None)


async def ask(
    text: str, language: str = "vi", intent: str = "nlu_fallback"
) -> CollectingDispatcher:
    dispatcher = CollectingDispatcher()
    tracker = make_tracker(slots={"language": language}, intent=intent, text=text)
    await ActionAnswerFaqOrFallback().run(dispatcher, tracker, {"responses": {}})
    return dispatcher


def texts(dispatcher: CollectingDispatcher) -> list[str]:
    return [str(m["text"]) for m in dispatcher.messages if m.get("text")]


@pytest.mark.parametrize(
    ("question", "entry"),
    [
        ("mat the bhyt xin cap lai o dau", HEALTH_CARD),  # no diacritics, abbreviation
        ("mất bhyt thì làm lại ở đâu vậy", HEALTH_CARD),
        ("tre em duoi 14 tuoi lam cccd dc ko", CHILD_CARD),  # cccd, dc, ko
    ],
)
async def test_a_phrasing_not_in_the_entry_is_answered(
    service: FakeContentService, question: str, entry: dict[str, Any]
) -> None:
    dispatcher = await ask(question)
    assert texts(dispatcher) == [f"{entry['answer']['vi']}\n{entry['source']}"]
    assert responses(dispatcher) == []  # not the fallback
    assert service.reported == []


async def test_the_answer_is_in_the_citizens_language(service: FakeContentService) -> None:
    dispatcher = await ask("lost my health insurance card, where to replace it", "en")
    assert texts(dispatcher) == [f"{HEALTH_CARD['answer']['en']}\n{HEALTH_CARD['source']}"]


@pytest.mark.parametrize("question", UNRELATED)
async def test_an_unrelated_message_falls_below_the_threshold(
    service: FakeContentService, question: str
) -> None:
    dispatcher = await ask(question)
    assert responses(dispatcher) == ["utter_default"]  # the usual fallback
    assert texts(dispatcher) == []


async def test_out_of_scope_is_answered_by_an_entry_else_as_before(
    service: FakeContentService,
) -> None:
    """The NLU calls most new questions out of scope rather than falling back."""
    answered = await ask("mat the bhyt xin cap lai o dau", intent="out_of_scope")
    assert texts(answered) == [f"{HEALTH_CARD['answer']['vi']}\n{HEALTH_CARD['source']}"]
    other = await ask("thời tiết hôm nay thế nào", intent="out_of_scope")  # no service named
    assert responses(other) == ["utter_out_of_scope"]


def test_the_threshold_separates_rephrasings_from_unrelated_messages() -> None:
    index = FaqIndex([HEALTH_CARD, CHILD_CARD], threshold=0.0)
    unrelated = [index.best(q) for q in UNRELATED]
    assert max(m.score if m else 0.0 for m in unrelated) < THRESHOLD - 0.1
    close = index.best("mat the bhyt xin cap lai o dau")
    assert close is not None and close.score > THRESHOLD + 0.2


async def test_a_withdrawn_entry_vanishes_after_a_refresh(
    service: FakeContentService, clock: Clock
) -> None:
    assert texts(await ask("mat the bhyt xin cap lai o dau"))
    service.entries = [CHILD_CARD]
    service.counter += 1
    assert texts(await ask("mat the bhyt xin cap lai o dau"))  # within the refresh interval
    clock.now += 2.0
    assert responses(await ask("mat the bhyt xin cap lai o dau")) == ["utter_default"]


async def test_polling_sends_the_etag_and_keeps_the_index_on_304(
    service: FakeContentService, clock: Clock
) -> None:
    await ask("mat the bhyt xin cap lai o dau")
    clock.now += 2.0
    assert texts(await ask("mat the bhyt xin cap lai o dau"))
    assert [r.headers.get("If-None-Match") for r in service.gets] == [None, '"1-2026-12-03"']
    assert all(r.headers["X-Internal-Token"] == "secret" for r in service.gets)


async def test_content_service_down_is_the_usual_fallback(service: FakeContentService) -> None:
    service.down = True
    dispatcher = await ask("mat the bhyt xin cap lai o dau")
    assert responses(dispatcher) == ["utter_default"]


async def test_content_service_down_later_keeps_the_last_entries(
    service: FakeContentService, clock: Clock
) -> None:
    assert texts(await ask("mat the bhyt xin cap lai o dau"))
    service.down = True
    clock.now += 2.0
    assert texts(await ask("mat the bhyt xin cap lai o dau"))


async def test_an_entry_past_its_validity_window_is_not_answered(
    service: FakeContentService,
) -> None:
    service.entries = [{**HEALTH_CARD, "valid_until": "2000-01-01"}]
    assert responses(await ask("mat the bhyt xin cap lai o dau")) == ["utter_default"]


async def test_an_unanswered_question_is_sent_masked(service: FakeContentService) -> None:
    from actions.faq import faq_source

    question = (
        "so cccd 001090001234 sdt 0912 345 678 ma 482913 "
        "ho so 000.00.10.H26-261110-0001 mail an@example.vn, sao chua co gi"
    )
    await ask(question)
    await faq_source().drain()
    [reported] = service.reported
    text = reported["text"]
    for secret in ("001090001234", "0912 345 678", "345 678", "482913", "H26-261110", "an@example"):
        assert secret not in text
    assert "sao chua co gi" in text and reported["language"] == "vi"


def test_masking_keeps_no_full_number() -> None:
    assert mask("cccd 079 203 001 234 nhé") == "cccd *********234 nhé"


async def test_a_published_entry_of_the_real_service_is_answered_then_withdrawn(
    tmp_path: Path, clock: Clock
) -> None:
    from console.app import create_app
    from tests.console.conftest import make_settings
    from tests.console.test_faq import entry as faq_entry

    app = create_app(make_settings(tmp_path))
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 5000))
    async with httpx.AsyncClient(transport=transport, base_url="http://content") as staff:

        async def sign_in(role: str) -> dict[str, str]:
            body = {"email": f"{role}@demo.gov.vn", "password": "demo-staff-2026"}
            token = (await staff.post("/api/login", json=body)).json()["token"]
            return {"Authorization": f"Bearer {token}"}

        editor, reviewer = await sign_in("editor"), await sign_in("reviewer")
        entry_id = (await staff.post("/api/faq", json=faq_entry(), headers=editor)).json()["id"]
        await staff.post(f"/api/faq/{entry_id}/submit", headers=editor)
        assert (await staff.post(f"/api/faq/{entry_id}/publish", headers=reviewer)).is_success
        set_faq_source(FaqSource("http://content", transport=transport, clock=clock))
        try:
            dispatcher = await ask("mat the bhyt thi xin cap lai o dau")
            assert texts(dispatcher) == [
                f"{faq_entry()['answer']['vi']}\nhttps://baohiemxahoi.gov.vn/"
            ]
            assert (await staff.post(f"/api/faq/{entry_id}/withdraw", headers=reviewer)).is_success
            clock.now += 2.0
            assert responses(await ask("mat the bhyt thi xin cap lai o dau")) == ["utter_default"]
        finally:
            set_faq_source(None)
