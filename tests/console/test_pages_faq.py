"""The FAQ pages as a browser uses them: the list (search, state filter), a new entry, the edit
form with its checks (422, what was typed kept), the workflow by role (an author never
publishes; an editor sees no review buttons), send back with a reason, withdraw, versions with
their diff; and every form refused without its CSRF token."""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient

from tests.console.test_pages import page_sign_in

QUESTION = "Mất thẻ bảo hiểm y tế thì xin cấp lại ở đâu?"
FORM = {
    "questions.vi": f"{QUESTION}\nCấp lại thẻ BHYT\n",
    "questions.en": "Where do I replace a lost health insurance card?",
    "answer.vi": "Bạn xin cấp lại thẻ BHYT trên VNeID hoặc tại cơ quan bảo hiểm xã hội.",
    "answer.en": "Ask for a new card in VNeID or at the social insurance office.",
    "source": "https://baohiemxahoi.gov.vn/",
    "reviewed_on": "2026-11-30",
    "valid_from": "",
    "valid_until": "",
}


def create(client: TestClient, csrf: str, **changes: str) -> int:
    answer = client.post("/faq/new", data={"csrf": csrf, **FORM, **changes}, follow_redirects=False)
    assert answer.status_code == 303, answer.text
    found = re.match(r"/faq/(\d+)\?done=created$", answer.headers["location"])
    assert found, answer.headers["location"]
    return int(found.group(1))


def state(client: TestClient, entry_id: int) -> str:
    found = re.search(r'id="state">(\w+)<', client.get(f"/faq/{entry_id}").text)
    assert found
    return found.group(1)


def api_entry(client: TestClient, entry_id: int) -> Any:
    from tests.console.conftest import sign_in

    return client.get(f"/api/faq/{entry_id}", headers=sign_in(client, "admin")).json()


def test_faq_pages_need_a_content_role(client: TestClient) -> None:
    for path in ("/faq", "/faq/new"):
        assert client.get(path, follow_redirects=False).headers["location"].startswith("/signin")
    csrf = page_sign_in(client, "editor")
    entry_id = create(client, csrf)
    csrf = page_sign_in(client, "agent")
    for path in ("/faq", "/faq/new", f"/faq/{entry_id}"):
        assert client.get(path).status_code == 403, path
    assert client.post("/faq/new", data={"csrf": csrf, **FORM}).status_code == 403
    assert client.post(f"/faq/{entry_id}/submit", data={"csrf": csrf, **FORM}).status_code == 403
    for role in ("editor", "reviewer", "admin"):
        page_sign_in(client, role)
        assert client.get("/faq").status_code == 200, role
        assert client.get(f"/faq/{entry_id}").status_code == 200, role
    assert client.get("/faq/999").status_code == 404


def test_a_new_entry_keeps_what_was_typed_when_refused(client: TestClient) -> None:
    csrf = page_sign_in(client, "editor")
    answer = client.post(
        "/faq/new",
        data={
            "csrf": csrf,
            **FORM,
            "answer.en": "",
            "source": "htp:/nowhere",
            "valid_from": "2027-01-01",
            "valid_until": "2026-01-01",
        },
    )
    assert answer.status_code == 422
    assert "answer.en: the answer is empty" in answer.text
    assert "source:" in answer.text and "valid_until (2026-01-01) is before" in answer.text
    assert f"{QUESTION}\nCấp lại thẻ BHYT\n</textarea>" in answer.text
    assert 'value="htp:/nowhere"' in answer.text
    page_sign_in(client, "admin")
    assert "0 entries" in client.get("/faq").text  # nothing saved


def test_the_list_searches_without_accents_and_filters_by_state(client: TestClient) -> None:
    csrf = page_sign_in(client, "editor")
    first = create(client, csrf)
    second = create(client, csrf, **{"questions.vi": "Làm hộ chiếu mất bao lâu?"})
    client.post(
        f"/faq/{second}/submit",
        data={"csrf": csrf, **FORM, "questions.vi": "Làm hộ chiếu mất bao lâu?"},
    )
    page = client.get("/faq", params={"q": "bao hiem y te"}).text
    assert re.findall(r'<a href="/faq/(\d+)"', page) == [str(first)]
    partial = client.get(
        "/faq",
        params={"state": "submitted"},
        headers={"HX-Request": "true", "HX-Target": "results"},
    ).text
    assert "<html" not in partial
    assert re.findall(r'<a href="/faq/(\d+)"', partial) == [str(second)]


def test_the_workflow_through_the_forms(client: TestClient) -> None:
    csrf = page_sign_in(client, "editor")
    entry_id = create(client, csrf)
    page = client.get(f"/faq/{entry_id}?done=created").text
    assert "FAQ entry created" in page and 'id="state">draft<' in page
    assert "/publish" not in page and "Send back" not in page and "/withdraw" not in page
    answer = client.post(
        f"/faq/{entry_id}/submit", data={"csrf": csrf, **FORM}, follow_redirects=False
    )
    assert answer.headers["location"] == f"/faq/{entry_id}?done=submitted"
    assert client.post(f"/faq/{entry_id}/publish", data={"csrf": csrf}).status_code == 403
    assert api_entry(client, entry_id)["working"]["authors"] == ["editor@demo.gov.vn"]

    csrf = page_sign_in(client, "reviewer")
    assert client.post(f"/faq/{entry_id}/publish", data={"csrf": "forged"}).status_code == 403
    assert state(client, entry_id) == "submitted"
    answer = client.post(f"/faq/{entry_id}/send-back", data={"csrf": csrf, "note": " "})
    assert answer.status_code == 422 and "write why" in answer.text
    answer = client.post(
        f"/faq/{entry_id}/send-back", data={"csrf": csrf, "note": "Thêm nguồn cụ thể"}
    )
    assert 'id="state">draft<' in answer.text and "Thêm nguồn cụ thể" in answer.text

    csrf = page_sign_in(client, "editor")
    source = "https://baohiemxahoi.gov.vn/the-bhyt"
    client.post(f"/faq/{entry_id}/submit", data={"csrf": csrf, **FORM, "source": source})
    csrf = page_sign_in(client, "reviewer")
    page = client.get(f"/faq/{entry_id}").text
    assert 'id="publish"' in page and "Thêm nguồn cụ thể" not in page
    answer = client.post(f"/faq/{entry_id}/publish", data={"csrf": csrf})
    assert answer.status_code == 200 and "Published" in answer.text
    assert 'id="state">published<' in answer.text
    assert f'<span class="add">+[vi] Q: {QUESTION}</span>' in answer.text  # version 1's diff
    assert api_entry(client, entry_id)["live"]["content"]["source"] == source

    # A reviewer's own change is not theirs to publish.
    csrf = page_sign_in(client, "reviewer")
    client.post(f"/faq/{entry_id}/submit", data={"csrf": csrf, **FORM, "answer.en": "New words."})
    page = client.get(f"/faq/{entry_id}").text
    assert 'id="publish"' not in page and "another reviewer or an admin publishes it" in page
    answer = client.post(f"/faq/{entry_id}/publish", data={"csrf": csrf})
    assert answer.status_code == 403 and "nobody publishes their own change" in answer.text
    diff = re.search(r'id="version-2">(.*?)</li>', answer.text, re.S)
    assert diff and '<span class="del">-[en] A: Ask for a new card' in diff.group(1)
    assert '<span class="add">+[en] A: New words.</span>' in diff.group(1)

    csrf = page_sign_in(client, "admin")
    answer = client.post(f"/faq/{entry_id}/withdraw", data={"csrf": csrf})
    assert answer.status_code == 200 and "Withdrawn" in answer.text
    assert api_entry(client, entry_id)["live"] is None

    # No rollback in console/faq.py: an earlier version becomes the draft, reviewed again.
    assert "Start a draft from version 1" in answer.text
    answer = client.post(f"/faq/{entry_id}/restore", data={"csrf": csrf, "version": "1"})
    assert answer.status_code == 200 and "submit it for review" in answer.text
    working = api_entry(client, entry_id)["working"]
    assert working["state"] == "draft" and working["content"]["source"] == source
    answer = client.post(f"/faq/{entry_id}/restore", data={"csrf": csrf, "version": "x"})
    assert answer.status_code == 422


def test_an_editor_cannot_withdraw_and_saving_unchanged_text_changes_nothing(
    client: TestClient,
) -> None:
    csrf = page_sign_in(client, "editor")
    entry_id = create(client, csrf)
    answer = client.post(f"/faq/{entry_id}/draft", data={"csrf": csrf, **FORM})
    assert "Nothing changed" in answer.text
    assert client.post(f"/faq/{entry_id}/withdraw", data={"csrf": csrf}).status_code == 403
    answer = client.post(
        f"/faq/{entry_id}/draft", data={"csrf": csrf, **FORM, "reviewed_on": "hôm qua"}
    )
    assert answer.status_code == 422 and "is not a date" in answer.text
    answer = client.post(f"/faq/{entry_id}/discard", data={"csrf": csrf})
    assert 'id="state">discarded<' in answer.text
