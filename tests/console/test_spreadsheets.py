"""Replies and FAQ entries as spreadsheets: export, edit a cell, import; an import makes drafts
(checked, audited) and publishes nothing; one refused row and nothing of the file is saved;
rows that say what is live make no draft; roles; the page with its CSRF token."""

from __future__ import annotations

import csv
import datetime
import io
import unicodedata
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlalchemy import select

from console import spreadsheets as sheets
from console.models import AuditEntry, Version
from tests.console.conftest import nlg_text
from tests.console.test_pages import csrf_of, page_sign_in

Roles = Callable[[str], dict[str, str]]
FEE = "utter_procedure_fee"
OLD_FEE = "Lệ phí {procedure_name}{variant_name}: {fee}"
NEW_FEE = "Lệ phí {procedure_name}{variant_name} hiện nay: {fee}.\nNộp trực tuyến được ạ."
SLOTS = {"procedure_name": "cấp hộ chiếu", "variant_name": "", "fee": "200.000 đồng"}


def versions_count(client: TestClient) -> int:
    engine = client.app.state.console.engine  # type: ignore[attr-defined]
    with engine.connect() as connection:
        return len(connection.execute(select(Version.id)).all())


def audit_actions(client: TestClient, target: str) -> list[str]:
    engine = client.app.state.console.engine  # type: ignore[attr-defined]
    with engine.connect() as connection:
        rows = connection.execute(
            select(AuditEntry.action).where(AuditEntry.target == target).order_by(AuditEntry.id)
        )
        return [row[0] for row in rows]


def fee_text(client: TestClient, language: str = "vi") -> str:
    body = {
        "response": FEE,
        "arguments": {},
        "tracker": {"slots": {**SLOTS, "language": language}},
        "channel": {"name": "rest"},
    }
    answer = client.post("/nlg", json=body)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["text"])


def edit_xlsx(data: bytes, edits: dict[tuple[str, str], str | None]) -> bytes:
    """Change cells (row by name, column by header) as a person does in a spreadsheet program;
    a name not in the sheet is a new row."""
    book = load_workbook(io.BytesIO(data))
    sheet = book.worksheets[0]
    header = [c.value for c in sheet[1]]
    rows = {sheet.cell(r, 1).value: r for r in range(2, sheet.max_row + 1)}
    for (name, column), value in edits.items():
        if column not in header:
            header.append(column)
            sheet.cell(1, len(header), column)
        if name not in rows:
            rows[name] = sheet.max_row + 1
            sheet.cell(rows[name], 1, name)
        sheet.cell(rows[name], header.index(column) + 1, value)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def edit_csv(data: bytes, edits: dict[tuple[str, str], str]) -> bytes:
    assert data.startswith(b"\xef\xbb\xbf")  # spreadsheet programs read UTF-8 with it
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    header = rows[0]
    for (name, column), value in edits.items():
        [row] = [r for r in rows[1:] if r[0] == name] or [None]
        if row is None:
            row = [name] + [""] * (len(header) - 1)
            rows.append(row)
        row[header.index(column)] = value
    out = io.StringIO(newline="")
    csv.writer(out).writerows(rows)
    return out.getvalue().encode("utf-8")


def upload(client: TestClient, headers: dict[str, str], data: bytes, kind: str = "responses"):
    content_type = sheets.XLSX_TYPE if data[:2] == b"PK" else "text/csv"
    return client.post(
        f"/api/import/{kind}", content=data, headers={**headers, "Content-Type": content_type}
    )


def working(client: TestClient, headers: dict[str, str], name: str) -> dict[str, Any] | None:
    answer = client.get(f"/api/responses/{name}", headers=headers)
    assert answer.status_code == 200, answer.text
    return answer.json()["working"]  # type: ignore[no-any-return]


def test_xlsx_export_edit_import_makes_exactly_that_draft_and_publishes_nothing(
    client: TestClient, as_role: Roles
) -> None:
    editor = as_role("editor")
    exported = client.get("/api/export/responses.xlsx", headers=editor)
    assert exported.status_code == 200
    assert exported.headers["content-type"] == sheets.XLSX_TYPE
    assert "attachment" in exported.headers["content-disposition"]
    before = versions_count(client)
    # Typed in decomposed form (as some keyboards send it): stored as NFC.
    typed = unicodedata.normalize("NFD", NEW_FEE)
    answer = upload(client, editor, edit_xlsx(exported.content, {(FEE, "vi"): typed}))
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert [(d["name"], d["version"]) for d in result["drafts"]] == [(FEE, 2)]
    assert result["rows"] == len(result["unchanged"]) + 1  # every other row: no draft
    assert versions_count(client) == before + 1

    draft = working(client, editor, FEE)
    assert draft is not None and draft["state"] == "draft"
    assert draft["content"]["vi"]["text"] == NEW_FEE  # NFC, diacritics, newline, placeholders
    assert draft["content"]["en"]["text"] == "Fee for {procedure_name}{variant_name}: {fee}"
    assert fee_text(client) == "Lệ phí cấp hộ chiếu: 200.000 đồng"  # the old wording is served
    assert audit_actions(client, f"response:{FEE}")[-2:] == ["draft_saved", "viewed"]
    assert audit_actions(client, "sheet:responses") == ["exported", "imported_sheet"]

    # The draft goes through review as any other: then citizens get the new wording.
    client.post(f"/api/responses/{FEE}/submit", headers=editor)
    assert client.post(f"/api/responses/{FEE}/publish", headers=as_role("reviewer")).is_success
    assert fee_text(client).startswith("Lệ phí cấp hộ chiếu hiện nay: 200.000 đồng.\nNộp")


def test_csv_export_edit_import_the_same(client: TestClient, as_role: Roles) -> None:
    editor = as_role("editor")
    exported = client.get("/api/export/responses.csv", headers=editor)
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("text/csv")
    edits = {
        (FEE, "vi"): NEW_FEE,
        (FEE, "en buttons"): "Nộp hồ sơ | /submit_dossier\nCổng DVC | https://dichvucong.gov.vn",
    }
    answer = upload(client, editor, edit_csv(exported.content, edits))
    assert answer.status_code == 200, answer.text
    assert [d["name"] for d in answer.json()["drafts"]] == [FEE]
    content = working(client, editor, FEE)["content"]  # type: ignore[index]
    assert content["vi"]["text"] == NEW_FEE
    assert content["en"]["buttons"] == [
        {"title": "Nộp hồ sơ", "payload": "/submit_dossier"},
        {"title": "Cổng DVC", "url": "https://dichvucong.gov.vn", "type": "web_url"},
    ]
    assert fee_text(client) == "Lệ phí cấp hộ chiếu: 200.000 đồng"


def test_an_unchanged_sheet_makes_no_draft(client: TestClient, as_role: Roles) -> None:
    editor = as_role("editor")
    before = versions_count(client)
    for extension in ("xlsx", "csv"):
        exported = client.get(f"/api/export/responses.{extension}", headers=editor).content
        answer = upload(client, editor, exported)
        assert answer.status_code == 200, answer.text
        assert answer.json()["drafts"] == [] and answer.json()["unchanged"]
    assert versions_count(client) == before


def test_a_bad_row_is_422_with_its_row_number_and_nothing_of_the_file_is_saved(
    client: TestClient, as_role: Roles
) -> None:
    editor = as_role("editor")
    exported = client.get("/api/export/responses.xlsx", headers=editor).content
    names = [r["name"] for _, r in sheets.read_rows(exported, "responses")[2]]
    fee_row = names.index(FEE) + 2
    dossier_row = names.index("utter_dossier_not_found") + 2
    before = versions_count(client)
    audit_before = audit_actions(client, f"response:{FEE}")
    edited = edit_xlsx(
        exported,
        {
            (FEE, "vi"): NEW_FEE,  # a good row
            ("utter_dossier_not_found", "vi"): "Không tìm thấy hồ sơ.",  # {dossier_code} dropped
            ("utter_no_such_reply", "vi"): "Xin chào",
            ("utter_greet", "en"): "Price {",  # Rasa cannot fill it in
        },
    )
    answer = upload(client, editor, edited)
    assert answer.status_code == 422, answer.text
    body = answer.json()
    problems = body["problems"]
    assert any(
        p.startswith(f"row {dossier_row} (utter_dossier_not_found): vi text: keep the placeholder")
        for p in problems
    ), problems
    unknown = len(names) + 2
    assert f"row {unknown}: there is no reply named 'utter_no_such_reply'" in body["detail"]
    assert any("(utter_greet): en text: a '{' is not closed" in p for p in problems)
    assert not any(f"row {fee_row}" in p for p in problems)
    # No draft at all, not even from the good row.
    assert versions_count(client) == before
    assert working(client, editor, FEE) is None
    assert audit_actions(client, f"response:{FEE}") == audit_before + ["viewed"]
    assert "imported_sheet" not in audit_actions(client, "sheet:responses")


def test_a_sheet_exported_before_a_publish_does_not_undo_it(
    client: TestClient, as_role: Roles
) -> None:
    editor, reviewer = as_role("editor"), as_role("reviewer")
    exported = client.get("/api/export/responses.xlsx", headers=editor).content
    client.put(
        f"/api/responses/{FEE}/draft", headers=editor, json={"language": "vi", "text": NEW_FEE}
    )
    client.post(f"/api/responses/{FEE}/submit", headers=editor)
    client.post(f"/api/responses/{FEE}/publish", headers=reviewer)
    stale = edit_xlsx(exported, {(FEE, "en"): "Fee: {fee} ({procedure_name}{variant_name})"})
    answer = upload(client, editor, stale)
    assert answer.status_code == 422
    assert "has version 1, but version 2 was published since" in answer.json()["detail"]
    assert working(client, editor, FEE) is None


def test_channel_variants_are_column_pairs(client: TestClient, as_role: Roles) -> None:
    editor = as_role("editor")
    exported = client.get("/api/export/responses.csv", headers=editor).content
    header = sheets.read_rows(exported, "responses")[1]
    assert "vi messenger" in header and "en messenger buttons" in header  # the domain has some
    book = edit_xlsx(
        client.get("/api/export/responses.xlsx", headers=editor).content,
        {("utter_greet", "vi zalo"): "Chào bạn (Zalo)!", ("utter_greet", "vi zalo buttons"): ""},
    )
    answer = upload(client, editor, book)
    assert answer.status_code == 200, answer.text
    zalo = working(client, editor, "utter_greet")["content"]["vi"]["channels"]["zalo"]  # type: ignore[index]
    assert zalo == {"text": "Chào bạn (Zalo)!", "buttons": []}
    assert nlg_text(client, "utter_greet", channel="zalo").startswith("Xin chào!")  # a draft

    unknown = edit_xlsx(book, {("utter_greet", "vi viber"): "x"})
    answer = upload(client, editor, unknown)
    assert answer.status_code == 422
    assert "the column 'vi viber' is not one this import reads" in answer.json()["detail"]


def test_a_text_that_looks_like_a_formula_stays_text(client: TestClient, as_role: Roles) -> None:
    editor = as_role("editor")
    text = '=HYPERLINK("https://evil.example","{fee}") - {procedure_name}{variant_name}'
    exported = client.get("/api/export/responses.csv", headers=editor).content
    assert upload(client, editor, edit_csv(exported, {(FEE, "vi"): text})).status_code == 200
    assert working(client, editor, FEE)["content"]["vi"]["text"] == text  # type: ignore[index]

    table = (["name", "vi"], [[FEE, text], ["x", "'quoted"], ["y", "-1"]])
    written = sheets.write_csv(table)
    assert b"\r\nutter_procedure_fee,\"'=HYPERLINK" in written  # a spreadsheet shows it as text
    assert [r["vi"] for _, r in sheets.read_rows(written, "responses")[2]] == [
        text,
        "'quoted",
        "-1",
    ]
    cell = load_workbook(io.BytesIO(sheets.write_xlsx({"responses": table}))).active["B2"]
    assert cell.data_type == "s" and cell.value == text


def test_files_that_are_not_sheets_are_refused_clearly(client: TestClient, as_role: Roles) -> None:
    editor = as_role("editor")
    for data, problem in [
        (b"", "the file is empty"),
        ("tên,vi\n".encode("utf-16"), "neither an XLSX workbook nor a UTF-8 CSV"),
        (b"PK\x03\x04not really a zip", "not a readable XLSX workbook"),
        (b"vi,en\nx,y\n", "has no 'name' column"),
    ]:
        answer = upload(client, editor, data)
        assert answer.status_code == 422, data
        assert problem in answer.json()["detail"]
    big = client.post(
        "/api/import/responses",
        content=b"x" * (sheets.MAX_FILE_BYTES + 100_000),
        headers={**editor, "Content-Type": "text/csv"},
    )
    assert big.status_code == 413


def test_roles(client: TestClient, as_role: Roles) -> None:
    exported = client.get("/api/export/responses.xlsx", headers=as_role("reviewer")).content
    edited = edit_xlsx(exported, {(FEE, "vi"): NEW_FEE})
    agent = as_role("agent")
    for path in ("responses.xlsx", "responses.csv", "faq.xlsx", "faq.csv"):
        assert client.get(f"/api/export/{path}", headers=agent).status_code == 403
        assert client.get(f"/api/export/{path}").status_code == 401
        for role in ("editor", "reviewer", "admin"):
            assert client.get(f"/api/export/{path}", headers=as_role(role)).status_code == 200
    for kind in ("responses", "faq"):
        assert upload(client, agent, edited, kind).status_code == 403
        assert client.post(f"/api/import/{kind}", content=edited).status_code == 401
    for role in ("editor", "reviewer", "admin"):
        client.delete(f"/api/responses/{FEE}/draft", headers=as_role("editor"))
        answer = upload(client, as_role(role), edited)
        assert answer.status_code == 200, (role, answer.text)
        assert [d["name"] for d in answer.json()["drafts"]] == [FEE]


# --- FAQ -----------------------------------------------------------------------------------


def faq_entry(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "questions": {
            "vi": ["Mất thẻ BHYT thì làm sao?", "xin cấp lại thẻ bảo hiểm y tế"],
            "en": ["I lost my health insurance card"],
        },
        "answer": {
            "vi": "Bạn xin cấp lại thẻ BHYT trên VNeID.",
            "en": "Ask for a new card in VNeID.",
        },
        "source": "https://baohiemxahoi.gov.vn/",
        "reviewed_on": "2026-11-30",
    }
    body.update(overrides)
    return body


def published_faq(client: TestClient, as_role: Roles) -> int:
    entry_id = int(
        client.post("/api/faq", json=faq_entry(), headers=as_role("editor")).json()["id"]
    )
    client.post(f"/api/faq/{entry_id}/submit", headers=as_role("editor"))
    assert client.post(f"/api/faq/{entry_id}/publish", headers=as_role("reviewer")).is_success
    return entry_id


@pytest.mark.parametrize("extension", ["xlsx", "csv"])
def test_faq_export_edit_import_makes_drafts_only(
    client: TestClient, as_role: Roles, extension: str
) -> None:
    editor = as_role("editor")
    entry_id = published_faq(client, as_role)
    exported = client.get(f"/api/export/faq.{extension}", headers=editor)
    assert exported.status_code == 200
    [(_, row)] = sheets.read_rows(exported.content, "faq")[2]
    assert row["questions vi"] == "Mất thẻ BHYT thì làm sao?\nxin cấp lại thẻ bảo hiểm y tế"
    answer_vi = "Bạn xin cấp lại thẻ BHYT trên ứng dụng VNeID,\nhoặc tại cơ quan BHXH."
    new_row = {
        ("", "questions vi"): "Đổi thẻ BHYT ở đâu?",
        ("", "answer vi"): "Tại cơ quan BHXH.",
        ("", "answer en"): "At the social insurance office.",
        ("", "source"): "https://baohiemxahoi.gov.vn/",
        ("", "reviewed on"): "2026-12-01",
    }
    edits = {(str(entry_id), "answer vi"): answer_vi, **new_row}
    edit = edit_xlsx if extension == "xlsx" else edit_csv
    answer = upload(client, editor, edit(exported.content, edits), "faq")  # type: ignore[operator]
    assert answer.status_code == 200, answer.text
    drafts = answer.json()["drafts"]
    assert [d["id"] for d in drafts][0] == entry_id and len(drafts) == 2
    detail = client.get(f"/api/faq/{entry_id}", headers=editor).json()
    assert detail["working"]["content"]["answer"]["vi"] == answer_vi
    assert detail["live"]["content"]["answer"]["vi"] == "Bạn xin cấp lại thẻ BHYT trên VNeID."
    new = client.get(f"/api/faq/{drafts[1]['id']}", headers=editor).json()
    assert new["live"] is None and new["working"]["state"] == "draft"
    assert "imported_sheet" in audit_actions(client, "sheet:faq")


def test_a_bad_faq_row_saves_nothing(client: TestClient, as_role: Roles) -> None:
    editor = as_role("editor")
    entry_id = published_faq(client, as_role)
    exported = client.get("/api/export/faq.xlsx", headers=editor).content
    unchanged = upload(client, editor, exported, "faq")
    assert unchanged.status_code == 200 and unchanged.json()["drafts"] == []
    edits = {
        (str(entry_id), "answer vi"): "Câu trả lời mới.",
        ("999", "answer vi"): "x",
        ("", "answer vi"): "Không có nguồn.",
        ("", "answer en"): "No source.",
        ("", "questions vi"): "câu hỏi",
        ("", "reviewed on"): "2026-12-01",
    }
    answer = upload(client, editor, edit_xlsx(exported, edits), "faq")
    assert answer.status_code == 422, answer.text
    detail = answer.json()["detail"]
    assert "row 3 (FAQ entry 999): no FAQ entry 999" in detail
    assert "row 4 (new FAQ entry): source: a source link is needed" in detail
    entries = client.get("/api/faq", headers=editor).json()["entries"]
    assert len(entries) == 1 and entries[0]["working"] is None


# --- the page ------------------------------------------------------------------------------


def test_the_page_exports_and_imports_with_the_session_and_its_csrf_token(
    client: TestClient,
) -> None:
    page_sign_in(client, "editor")
    page = client.get("/spreadsheets")
    assert page.status_code == 200
    assert 'href="/spreadsheets/responses.xlsx"' in page.text
    assert 'enctype="multipart/form-data"' in page.text
    csrf = csrf_of(page.text)
    exported = client.get("/spreadsheets/responses.xlsx")
    assert exported.status_code == 200 and exported.content[:2] == b"PK"
    edited = edit_xlsx(exported.content, {(FEE, "vi"): NEW_FEE})
    files = {"file": ("replies.xlsx", edited, sheets.XLSX_TYPE)}
    before = versions_count(client)

    refused = client.post("/spreadsheets/import/responses", files=files, data={"csrf": "wrong"})
    assert refused.status_code == 403
    assert versions_count(client) == before

    done = client.post("/spreadsheets/import/responses", files=files, data={"csrf": csrf})
    assert done.status_code == 200, done.text
    assert f'href="/responses/{FEE}"' in done.text and "Nothing was published" in done.text
    assert fee_text(client) == "Lệ phí cấp hộ chiếu: 200.000 đồng"

    bad = edit_xlsx(exported.content, {("utter_dossier_not_found", "vi"): "Không tìm thấy."})
    shown = client.post(
        "/spreadsheets/import/responses",
        files={"file": ("replies.xlsx", bad, sheets.XLSX_TYPE)},
        data={"csrf": csrf},
    )
    assert shown.status_code == 422
    assert "keep the placeholder {dossier_code}" in shown.text


def test_the_page_needs_sign_in_and_a_content_role(client: TestClient) -> None:
    answer = client.get("/spreadsheets", follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"].startswith("/signin")
    assert client.get("/spreadsheets/faq.csv", follow_redirects=False).status_code == 303
    page_sign_in(client, "agent")
    assert client.get("/spreadsheets").status_code == 403
    assert client.get("/spreadsheets/responses.csv").status_code == 403


def test_a_row_equal_to_the_live_version_leaves_an_open_draft_alone(
    client: TestClient, as_role: Roles
) -> None:
    editor = as_role("editor")
    exported = client.get("/api/export/responses.xlsx", headers=editor).content  # the live text
    client.put(
        f"/api/responses/{FEE}/draft", headers=editor, json={"language": "vi", "text": NEW_FEE}
    )
    answer = upload(client, editor, exported)
    assert answer.status_code == 200 and FEE in answer.json()["unchanged"]
    assert working(client, editor, FEE)["content"]["vi"]["text"] == NEW_FEE  # type: ignore[index]


def test_sheets_as_spreadsheet_programs_save_them() -> None:
    """Semicolons (some locales), headers in another case, trailing spaces, date cells."""
    data = "\ufeffName;VI;Vi_Buttons\r\nutter_greet;Xin chào ;A | /a\r\n;;\r\n".encode()
    kind, header, rows = sheets.read_rows(data, "responses")
    assert (kind, header) == ("csv", ["name", "vi", "vi buttons"])
    assert rows == [(2, {"name": "utter_greet", "vi": "Xin chào ", "vi buttons": "A | /a"})]
    live = {"vi": {"text": "Xin chào", "buttons": [{"title": "A", "payload": "/a"}]}}
    assert sheets.response_changes(rows[0][1], live) == []  # the same, up to the spaces
    assert sheets.clean(datetime.datetime(2026, 11, 30)) == "2026-11-30"
    assert sheets.clean(3.0) == "3"
    book = sheets.write_xlsx({"faq": (["id", "reviewed on"], [["1", "2026-11-30"]])})
    loaded = load_workbook(io.BytesIO(book))
    loaded.active["B2"] = datetime.date(2026, 12, 1)  # typed as a date in the program
    out = io.BytesIO()
    loaded.save(out)
    assert sheets.faq_raw(sheets.read_rows(out.getvalue(), "faq")[2][0][1])["reviewed_on"] == (
        "2026-12-01"
    )
