"""FAQ entries through the JSON API: the workflow and its roles, the checks (422, nothing saved),
the validity window, and the action server's read (loopback, shared secret, ETag)."""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from console.app import create_app
from console.settings import ConsoleSettings

Headers = Callable[[str], dict[str, str]]
LOCAL = ("127.0.0.1", 50000)
TOKEN = "internal-test-token"


def entry(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "questions": {
            "vi": ["Mất thẻ bảo hiểm y tế thì xin cấp lại ở đâu?"],
            "en": ["Where do I get a lost health insurance card replaced?"],
        },
        "answer": {
            "vi": "Bạn xin cấp lại thẻ BHYT trên VNeID hoặc tại cơ quan bảo hiểm xã hội.",
            "en": "Ask for a new health insurance card in VNeID or at the social insurance office.",
        },
        "source": "https://baohiemxahoi.gov.vn/",
        "reviewed_on": "2026-11-30",
    }
    body.update(overrides)
    return body


@pytest.fixture()
def local(settings: ConsoleSettings, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    """The service as the local action server reaches it (a loopback address)."""
    monkeypatch.setenv("CONTENT_INTERNAL_TOKEN", TOKEN)
    with TestClient(create_app(settings), client=LOCAL) as test_client:
        yield test_client


def published(client: TestClient, **headers: str) -> Any:
    return client.get("/internal/faq/published", headers={"X-Internal-Token": TOKEN, **headers})


def make_published(client: TestClient, as_role: Headers, body: dict[str, Any]) -> int:
    answer = client.post("/api/faq", json=body, headers=as_role("editor"))
    assert answer.status_code == 201, answer.text
    entry_id = int(answer.json()["id"])
    assert client.post(f"/api/faq/{entry_id}/submit", headers=as_role("editor")).status_code == 200
    answer = client.post(f"/api/faq/{entry_id}/publish", headers=as_role("reviewer"))
    assert answer.status_code == 200, answer.text
    return entry_id


@pytest.fixture()
def as_local_role(local: TestClient) -> Headers:
    from tests.console.conftest import sign_in

    return lambda role: sign_in(local, role)


def test_draft_submit_publish_then_withdraw(local: TestClient, as_local_role: Headers) -> None:
    editor, reviewer = as_local_role("editor"), as_local_role("reviewer")
    created = local.post("/api/faq", json=entry(), headers=editor)
    assert created.status_code == 201
    entry_id = created.json()["id"]
    assert created.json()["working"]["state"] == "draft"
    assert published(local).json()["entries"] == []  # a draft reaches nobody

    assert local.post(f"/api/faq/{entry_id}/publish", headers=reviewer).status_code == 409
    assert local.post(f"/api/faq/{entry_id}/submit", headers=editor).status_code == 200
    assert local.post(f"/api/faq/{entry_id}/publish", headers=editor).status_code == 403
    answer = local.post(f"/api/faq/{entry_id}/publish", headers=reviewer)
    assert answer.status_code == 200, answer.text
    assert answer.json()["live"]["published_by"] == "reviewer@demo.gov.vn"
    [shown] = published(local).json()["entries"]
    assert shown["id"] == entry_id and shown["answer"]["en"].startswith("Ask for")

    # A second version: the live one stays until it is published.
    changed = entry(answer={"vi": "Cấp lại trên VNeID.", "en": "Replace it in VNeID."})
    assert local.put(f"/api/faq/{entry_id}/draft", json=changed, headers=editor).status_code == 200
    assert published(local).json()["entries"][0]["answer"]["vi"].startswith("Bạn xin")
    local.post(f"/api/faq/{entry_id}/submit", headers=editor)
    local.post(f"/api/faq/{entry_id}/publish", headers=reviewer)
    [shown] = published(local).json()["entries"]
    assert shown["version"] == 2 and shown["answer"]["vi"] == "Cấp lại trên VNeID."

    assert local.post(f"/api/faq/{entry_id}/withdraw", headers=editor).status_code == 403
    assert local.post(f"/api/faq/{entry_id}/withdraw", headers=reviewer).status_code == 200
    assert published(local).json()["entries"] == []
    detail = local.get(f"/api/faq/{entry_id}", headers=editor).json()
    assert [v["state"] for v in detail["versions"]] == ["withdrawn", "published"]
    assert detail["withdrawn_by"] == "reviewer@demo.gov.vn"
    actions = [
        e["action"]
        for e in local.get("/api/audit", headers=as_local_role("admin")).json().get("entries", [])
    ]
    assert "faq_withdrawn" in actions and "faq_published" in actions


def test_nobody_publishes_their_own_change(local: TestClient, as_local_role: Headers) -> None:
    reviewer = as_local_role("reviewer")
    entry_id = local.post("/api/faq", json=entry(), headers=reviewer).json()["id"]
    local.post(f"/api/faq/{entry_id}/submit", headers=reviewer)
    refused = local.post(f"/api/faq/{entry_id}/publish", headers=reviewer)
    assert refused.status_code == 403 and "own change" in refused.json()["detail"]
    assert (
        local.post(f"/api/faq/{entry_id}/publish", headers=as_local_role("admin")).status_code
        == 200
    )


def test_an_editor_never_publishes_not_even_another_s_change(
    local: TestClient, as_local_role: Headers
) -> None:
    reviewer, editor = as_local_role("reviewer"), as_local_role("editor")
    entry_id = local.post("/api/faq", json=entry(), headers=reviewer).json()["id"]
    local.post(f"/api/faq/{entry_id}/submit", headers=reviewer)
    refused = local.post(f"/api/faq/{entry_id}/publish", headers=editor)
    assert refused.status_code == 403 and "editor role" in refused.json()["detail"]
    assert local.post(f"/api/faq/{entry_id}/publish", headers=as_local_role("admin")).is_success
    assert local.post(f"/api/faq/{entry_id}/withdraw", headers=editor).status_code == 403


def test_agents_and_strangers_have_no_faq_rights(local: TestClient, as_local_role: Headers) -> None:
    assert local.get("/api/faq").status_code == 401
    agent = as_local_role("agent")
    assert local.get("/api/faq", headers=agent).status_code == 403
    assert local.post("/api/faq", json=entry(), headers=agent).status_code == 403


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"questions": {"vi": ["  "], "en": []}}, "questions.vi: a phrasing is empty"),
        ({"questions": {"vi": [], "en": ["Where?"]}}, "at least one Vietnamese phrasing"),
        ({"source": "baohiemxahoi.gov.vn"}, "source:"),
        ({"source": "ftp://baohiemxahoi.gov.vn/"}, "only http:// and https://"),
        ({"answer": {"vi": "", "en": "x"}}, "answer.vi: the answer is empty"),
        ({"valid_from": "2026-06-01", "valid_until": "2026-05-31"}, "before valid_from"),
        ({"reviewed_on": "2026-02-30"}, "reviewed_on"),
    ],
)
def test_bad_input_is_refused_and_nothing_saved(
    local: TestClient, as_local_role: Headers, change: dict[str, Any], problem: str
) -> None:
    editor = as_local_role("editor")
    answer = local.post("/api/faq", json=entry(**change), headers=editor)
    assert answer.status_code == 422, answer.text
    assert problem in answer.json()["detail"]
    assert local.get("/api/faq", headers=editor).json()["entries"] == []


def test_only_the_validity_window_is_served(local: TestClient, as_local_role: Headers) -> None:
    today = datetime.date.today()
    day = datetime.timedelta(days=1)
    make_published(local, as_local_role, entry(valid_until=(today - day).isoformat()))
    make_published(local, as_local_role, entry(valid_from=(today + day).isoformat()))
    current = make_published(
        local,
        as_local_role,
        entry(valid_from=today.isoformat(), valid_until=today.isoformat()),
    )
    assert [e["id"] for e in published(local).json()["entries"]] == [current]


def test_internal_read_polls_cheaply_with_an_etag(
    local: TestClient, as_local_role: Headers
) -> None:
    first = published(local)
    etag = first.headers["ETag"]
    assert published(local, **{"If-None-Match": etag}).status_code == 304
    make_published(local, as_local_role, entry())
    again = published(local, **{"If-None-Match": etag})
    assert again.status_code == 200 and again.headers["ETag"] != etag
    assert len(again.json()["entries"]) == 1


def test_internal_read_needs_loopback_and_the_secret(
    local: TestClient, settings: ConsoleSettings
) -> None:
    assert local.get("/internal/faq/published").status_code == 403
    wrong = local.get("/internal/faq/published", headers={"X-Internal-Token": "guess"})
    assert wrong.status_code == 403
    assert published(local).status_code == 200
    with TestClient(create_app(settings), client=("203.0.113.9", 4000)) as remote:
        assert published(remote).status_code == 403


def report(client: TestClient, text: str, language: str = "vi") -> None:
    answer = client.post(
        "/internal/unanswered",
        json={"text": text, "language": language},
        headers={"X-Internal-Token": TOKEN},
    )
    assert answer.status_code == 202, answer.text


def test_unanswered_questions_are_grouped_and_one_group_becomes_a_draft(
    local: TestClient, as_local_role: Headers
) -> None:
    for text in (
        "đóng thuế đất ở đâu vậy",
        "dong thue dat o dau",
        "nộp thuế đất ở đâu ạ",
        "con chó nhà tôi bị lạc",
    ):
        report(local, text)
    editor = as_local_role("editor")
    groups = local.get("/api/unanswered", headers=editor).json()["groups"]
    assert [g["count"] for g in groups] == [3, 1]
    assert local.get("/api/unanswered", headers=as_local_role("agent")).status_code == 403

    body = {
        "answer": {"vi": "Nộp thuế đất tại cơ quan thuế.", "en": "Pay land tax at the tax office."},
        "source": "https://gdt.gov.vn/",
        "reviewed_on": "2026-12-01",
        "questions_en": ["Where do I pay land tax?"],
    }
    assert (
        local.post(
            f"/api/unanswered/{groups[0]['group']}/faq", json=body, headers=as_local_role("agent")
        ).status_code
        == 403
    )
    made = local.post(f"/api/unanswered/{groups[0]['group']}/faq", json=body, headers=editor)
    assert made.status_code == 201, made.text
    draft = made.json()["working"]
    assert draft["state"] == "draft"
    assert sorted(draft["content"]["questions"]["vi"]) == sorted(groups[0]["questions"])
    assert draft["content"]["questions"]["en"] == ["Where do I pay land tax?"]
    assert [g["count"] for g in local.get("/api/unanswered", headers=editor).json()["groups"]] == [
        1
    ]
    missing = local.post(f"/api/unanswered/{groups[0]['group']}/faq", json=body, headers=editor)
    assert missing.status_code == 404


def test_unanswered_questions_are_kept_masked_whatever_is_sent(
    local: TestClient, as_local_role: Headers
) -> None:
    report(local, "cccd của tôi là 079203001234, sđt 0912345678, mã 482913 sao chưa có")
    [group] = local.get("/api/unanswered", headers=as_local_role("editor")).json()["groups"]
    [text] = group["questions"]
    for secret in ("079203001234", "0912345678", "482913"):
        assert secret not in text
    assert "*********234" in text


def test_unanswered_questions_come_from_the_local_action_server_only(
    local: TestClient, settings: ConsoleSettings
) -> None:
    body = {"text": "câu hỏi", "language": "vi"}
    assert local.post("/internal/unanswered", json=body).status_code == 403
    with TestClient(create_app(settings), client=("203.0.113.9", 4000)) as remote:
        headers = {"X-Internal-Token": TOKEN}
        assert remote.post("/internal/unanswered", json=body, headers=headers).status_code == 403
