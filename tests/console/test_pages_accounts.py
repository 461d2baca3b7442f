"""The accounts pages: /users for admins (add, disable, enable, change a role; nobody disables
themself), /account for everyone (a password change ends the user's other sessions), the menu
by role, and every form refused without its CSRF token."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from console.pages import SESSION_COOKIE
from console.settings import DEFAULT_DEMO_PASSWORD, DEMO_ACCOUNTS
from tests.console.test_pages import csrf_of, page_sign_in

EDITOR = DEMO_ACCOUNTS["editor"]
NEW_PASSWORD = "mật-khẩu-mới-2026"


def signs_in(client: TestClient, email: str, password: str) -> bool:
    client.cookies.clear()
    form = client.get("/signin")
    answer = client.post(
        "/signin",
        data={"csrf": csrf_of(form.text), "email": email, "password": password},
        follow_redirects=False,
    )
    return answer.status_code == 303


def menu(html: str) -> list[str]:
    """The menu's links to these pages (the call-centre desk's link is tested with the desk)."""
    nav = html.split('<nav aria-label="Main">', 1)[1].split("</nav>", 1)[0]
    return [link for link in re.findall(r'<a href="([^"]+)">', nav) if link != "/desk"]


def test_the_menu_follows_the_role(client: TestClient) -> None:
    page_sign_in(client, "admin")
    assert menu(client.get("/account").text) == [
        "/responses",
        "/faq",
        "/unanswered",
        "/spreadsheets",
        "/users",
        "/audit",
        "/account",
    ]
    page_sign_in(client, "editor")
    assert menu(client.get("/account").text) == [
        "/responses",
        "/faq",
        "/unanswered",
        "/spreadsheets",
        "/account",
    ]
    page_sign_in(client, "agent")
    assert menu(client.get("/account").text) == ["/account"]
    assert client.get("/", follow_redirects=False).headers["location"] == "/desk"


def test_the_users_page_is_for_admins(client: TestClient) -> None:
    for role in ("editor", "reviewer", "agent"):
        csrf = page_sign_in(client, role)
        assert client.get("/users").status_code == 403, role
        answer = client.post(f"/users/{EDITOR}/disable", data={"csrf": csrf})
        assert answer.status_code == 403, role
    page_sign_in(client, "admin")
    page = client.get("/users")
    assert page.status_code == 200
    for email in DEMO_ACCOUNTS.values():
        assert f"<td>{email}" in page.text
    assert 'action="/users/admin%40demo.gov.vn/disable"' not in page.text  # not oneself
    assert 'action="/users/editor%40demo.gov.vn/disable"' in page.text


def test_an_admin_adds_an_account_and_a_short_password_keeps_the_typed_email(
    client: TestClient,
) -> None:
    csrf = page_sign_in(client, "admin")
    form = {"csrf": csrf, "email": "lan@gov.vn", "role": "reviewer", "password": "too-short"}
    answer = client.post("/users", data=form)
    assert answer.status_code == 422 and "at least 12 characters" in answer.text
    assert 'value="lan@gov.vn"' in answer.text and "too-short" not in answer.text
    answer = client.post("/users", data={**form, "password": "a-long-password"})
    assert answer.status_code == 200 and "Account added" in answer.text
    assert "<td>lan@gov.vn" in answer.text
    assert signs_in(client, "lan@gov.vn", "a-long-password")


def test_a_disabled_account_is_signed_out_of_its_pages_at_once(client: TestClient) -> None:
    editor = TestClient(client.app)
    with editor:
        page_sign_in(editor, "editor")
        assert editor.get("/responses").status_code == 200
        token = editor.cookies[SESSION_COOKIE]
        csrf = page_sign_in(client, "admin")
        assert client.post(f"/users/{EDITOR}/disable", data={"csrf": "forged"}).status_code == 403
        assert editor.get("/responses").status_code == 200  # nothing was done
        answer = client.post(f"/users/{EDITOR}/disable", data={"csrf": csrf})
        assert answer.status_code == 200 and "Account disabled" in answer.text
        answer = editor.get("/responses", follow_redirects=False)
        assert answer.status_code == 303 and answer.headers["location"].startswith("/signin")
        me = editor.get("/api/me", headers={"Authorization": f"Bearer {token}"})
        assert me.status_code == 401
    assert not signs_in(TestClient(client.app), EDITOR, DEFAULT_DEMO_PASSWORD)
    csrf = page_sign_in(client, "admin")
    answer = client.post(f"/users/{DEMO_ACCOUNTS['admin']}/disable", data={"csrf": csrf})
    assert answer.status_code == 422 and "your own account" in answer.text
    answer = client.post(f"/users/{EDITOR}/enable", data={"csrf": csrf})
    assert answer.status_code == 200 and "Account enabled" in answer.text
    assert signs_in(TestClient(client.app), EDITOR, DEFAULT_DEMO_PASSWORD)


def test_an_admin_changes_a_role(client: TestClient) -> None:
    csrf = page_sign_in(client, "admin")
    answer = client.post(f"/users/{EDITOR}/role", data={"csrf": csrf, "role": "agent"})
    assert answer.status_code == 200 and "Role changed" in answer.text
    page_sign_in(client, "editor")
    assert client.get("/responses").status_code == 403
    csrf = page_sign_in(client, "admin")
    answer = client.post(f"/users/{EDITOR}/role", data={"csrf": csrf, "role": "boss"})
    assert answer.status_code == 422


def test_a_password_change_on_the_account_page(client: TestClient) -> None:
    other = TestClient(client.app)
    with other:
        page_sign_in(other, "agent")
        csrf = page_sign_in(client, "agent")
        form = {"csrf": csrf, "current": DEFAULT_DEMO_PASSWORD, "new": NEW_PASSWORD}
        answer = client.post("/account/password", data={**form, "again": "something-else!"})
        assert answer.status_code == 422 and "differ" in answer.text
        answer = client.post("/account/password", data={**form, "again": NEW_PASSWORD, "csrf": ""})
        assert answer.status_code == 403 and "security token" in answer.text
        answer = client.post(
            "/account/password",
            data={**form, "current": "not-the-password", "again": NEW_PASSWORD},
        )
        assert answer.status_code == 403 and "current password is wrong" in answer.text
        answer = client.post("/account/password", data={**form, "new": "short", "again": "short"})
        assert answer.status_code == 422 and "at least 12 characters" in answer.text
        assert signs_in(TestClient(client.app), DEMO_ACCOUNTS["agent"], DEFAULT_DEMO_PASSWORD)
        answer = client.post("/account/password", data={**form, "again": NEW_PASSWORD})
        assert answer.status_code == 200 and "Password changed" in answer.text
        assert client.get("/account").status_code == 200  # this session stays
        assert other.get("/account", follow_redirects=False).status_code == 303  # that one ended
    assert not signs_in(TestClient(client.app), DEMO_ACCOUNTS["agent"], DEFAULT_DEMO_PASSWORD)
    assert signs_in(TestClient(client.app), DEMO_ACCOUNTS["agent"], NEW_PASSWORD)
