"""A change published through one process is served by another on the same database within
a second or two (the publish counter each polls), as happens when staff publish through one
console and another process serves Rasa."""

from __future__ import annotations

import time
from pathlib import Path

from fastapi.testclient import TestClient

from console.app import create_app
from tests.console.conftest import make_settings, nlg_text, sign_in


def test_a_publish_in_one_process_is_served_by_another_within_2_s(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, refresh_seconds=1.0)
    with (
        TestClient(create_app(settings)) as staff_side,
        TestClient(create_app(settings)) as serving,
    ):
        assert nlg_text(serving, "utter_goodbye").startswith("Cảm ơn bạn")
        editor, reviewer = sign_in(staff_side, "editor"), sign_in(staff_side, "reviewer")
        body = {"language": "vi", "text": "Tạm biệt, hẹn gặp lại!"}
        staff_side.put("/api/responses/utter_goodbye/draft", headers=editor, json=body)
        staff_side.post("/api/responses/utter_goodbye/submit", headers=editor)
        published = staff_side.post("/api/responses/utter_goodbye/publish", headers=reviewer)
        assert published.status_code == 200
        started = time.monotonic()
        while nlg_text(serving, "utter_goodbye") != "Tạm biệt, hẹn gặp lại!":
            assert time.monotonic() - started < 2, "not served by the other process within 2 s"
            time.sleep(0.05)
        print(f"served by the other process after {time.monotonic() - started:.2f}s")
        assert nlg_text(staff_side, "utter_goodbye") == "Tạm biệt, hẹn gặp lại!"  # at once


def test_the_published_set_has_an_etag(tmp_path: Path) -> None:
    with TestClient(create_app(make_settings(tmp_path))) as client:
        first = client.get("/nlg/published")
        assert first.status_code == 200 and "utter_greet" in first.json()["responses"]
        etag = first.headers["ETag"]
        assert client.get("/nlg/published", headers={"If-None-Match": etag}).status_code == 304


def test_a_second_start_imports_nothing_twice_and_keeps_staff_edits(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    with TestClient(create_app(settings)) as client:
        editor, reviewer = sign_in(client, "editor"), sign_in(client, "reviewer")
        body = {"language": "en", "text": "Bye for now!"}
        client.put("/api/responses/utter_goodbye/draft", headers=editor, json=body)
        client.post("/api/responses/utter_goodbye/submit", headers=editor)
        client.post("/api/responses/utter_goodbye/publish", headers=reviewer)
    with TestClient(create_app(settings)) as client:
        assert nlg_text(client, "utter_goodbye", language="en") == "Bye for now!"
        versions = client.get(
            "/api/responses/utter_greet/versions", headers=sign_in(client, "editor")
        )
        assert len(versions.json()["versions"]) == 1
