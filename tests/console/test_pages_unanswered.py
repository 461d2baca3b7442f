"""The unanswered questions page: groups with counts for editors, reviewers and admins (agents
403), nothing personal shown even if the store held it, and a group made into an FAQ draft in
one form (its questions become the phrasings; the group leaves the list; 422 keeps what was
typed; CSRF refused)."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from console.db import make_engine, transaction
from console.settings import ConsoleSettings
from console.unanswered import Unanswered, record
from tests.console.conftest import sign_in
from tests.console.test_pages import page_sign_in

LAND_TAX = ("đóng thuế đất ở đâu vậy", "dong thue dat o dau", "nộp thuế đất ở đâu ạ")
ANSWER = {
    "answer.vi": "Nộp thuế đất tại cơ quan thuế hoặc trên thuedientu.gdt.gov.vn.",
    "answer.en": "Pay land tax at the tax office or on thuedientu.gdt.gov.vn.",
    "source": "https://gdt.gov.vn/",
    "reviewed_on": "2026-12-01",
}


def asked(settings: ConsoleSettings, *texts: str, raw: bool = False) -> None:
    """Questions as the action server reports them (``raw``: written around the store's mask)."""
    with transaction(make_engine(settings.db_url)) as session:
        for text in texts:
            if raw:
                session.add(Unanswered(at=1.0, text=text, language="vi"))
            else:
                record(session, text, "vi")


def groups_on(page: str) -> list[tuple[str, str]]:
    return re.findall(r'id="group-(\d+)".*?<span class="count">(\d+)</span>', page, re.S)


def test_the_page_groups_questions_for_content_roles_only(
    client: TestClient, settings: ConsoleSettings
) -> None:
    asked(settings, *LAND_TAX, "con chó nhà tôi bị lạc")
    assert client.get("/unanswered", follow_redirects=False).status_code == 303
    csrf = page_sign_in(client, "agent")
    assert client.get("/unanswered").status_code == 403
    assert client.post("/unanswered/1/faq", data={"csrf": csrf, **ANSWER}).status_code == 403
    for role in ("editor", "reviewer", "admin"):
        page_sign_in(client, role)
        page = client.get("/unanswered")
        assert page.status_code == 200, role
        assert [count for _, count in groups_on(page.text)] == ["3", "1"]
        assert all(text in page.text for text in LAND_TAX)


def test_nothing_personal_is_shown(client: TestClient, settings: ConsoleSettings) -> None:
    asked(settings, "cccd của tôi là 079203001234 sao chưa có")
    asked(settings, "số của tôi 0912345678, gọi lại giúp", raw=True)  # the store's mask bypassed
    page_sign_in(client, "editor")
    page = client.get("/unanswered").text
    for secret in ("079203001234", "0912345678"):
        assert secret not in page
    assert "*********234" in page


def test_a_group_becomes_an_faq_draft_in_one_step(
    client: TestClient, settings: ConsoleSettings
) -> None:
    asked(settings, *LAND_TAX, "con chó nhà tôi bị lạc")
    csrf = page_sign_in(client, "editor")
    [(group, _), (other, _)] = groups_on(client.get("/unanswered").text)
    assert client.post(f"/unanswered/{group}/faq", data=ANSWER).status_code == 403  # no token

    answer = client.post(f"/unanswered/{group}/faq", data={"csrf": csrf, **ANSWER, "source": ""})
    assert answer.status_code == 422 and "source: a source link is needed" in answer.text
    assert f">{ANSWER['answer.vi']}</textarea>" in answer.text  # what was typed stays
    assert [g for g, _ in groups_on(answer.text)] == [group, other]  # nothing made

    answer = client.post(
        f"/unanswered/{group}/faq", data={"csrf": csrf, **ANSWER}, follow_redirects=False
    )
    assert answer.status_code == 303
    found = re.match(r"/faq/(\d+)\?done=from_group$", answer.headers["location"])
    assert found, answer.headers["location"]
    page = client.get(answer.headers["location"]).text
    assert 'id="state">draft<' in page and "made from the unanswered questions" in page
    entry = client.get(f"/api/faq/{found.group(1)}", headers=sign_in(client, "admin")).json()
    content = entry["working"]["content"]
    assert sorted(content["questions"]["vi"]) == sorted(LAND_TAX)
    assert content["answer"]["en"] == ANSWER["answer.en"] and content["reviewed_on"] == "2026-12-01"
    assert [g for g, _ in groups_on(client.get("/unanswered").text)] == [other]
    assert client.post(f"/unanswered/{group}/faq", data={"csrf": csrf, **ANSWER}).status_code == 404
