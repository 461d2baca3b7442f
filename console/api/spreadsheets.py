"""Replies and FAQ entries as spreadsheets: export (XLSX or CSV) and import as drafts.

An import never publishes: each changed row becomes a draft through the same store functions as
`PUT /api/responses/{name}/draft` and `PUT /api/faq/{id}/draft` (console.content.save_draft,
console.faq.save_draft and create), so the checks and the audit apply. The whole file is one
transaction: if any row is refused, nothing of the file is saved and the 422 lists every row's
problems. A row that says what the live version says makes no draft.

The file is the request body (`Content-Type: text/csv` or the XLSX type), or the field `file` of
a `multipart/form-data` form (what the page sends; read here, without python-multipart).

The page `/spreadsheets` (download links, upload forms) rides on this router, so console/app.py
includes one router; it reuses the pages' sessions, CSRF and templates (console/pages.py).
"""

from __future__ import annotations

import email.parser
import email.policy
import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from console import audit, faq, pages
from console import content as store
from console import spreadsheets as sheets
from console.api import ConsoleDep, Editor, Reader, get_console
from console.auth import Staff
from console.content import ContentError
from console.db import transaction
from console.models import Response as Reply
from console.models import Version

router = APIRouter(tags=["spreadsheets"])
KINDS = (sheets.RESPONSES, sheets.FAQ)
FORMATS = {"xlsx": sheets.XLSX_TYPE, "csv": sheets.CSV_TYPE + "; charset=utf-8"}
MAX_PROBLEMS = 200  # listed in a 422; a sheet with more has a wrong column, not wrong rows


class TooLarge(ContentError):
    status = 413


def _invalid(message: str, problems: list[str]) -> store.Invalid:
    shown = problems[:MAX_PROBLEMS]
    if len(problems) > MAX_PROBLEMS:
        shown.append(f"... and {len(problems) - MAX_PROBLEMS} more")
    return store.Invalid(message + ": " + "; ".join(shown), shown)


# --- export --------------------------------------------------------------------------------


def response_table(session: Session) -> sheets.Table:
    """Every reply the store holds, in its live wording."""
    rows = session.execute(
        select(Reply.name, Version.number, Version.content)
        .join(Version, Version.id == Reply.live_version_id)
        .order_by(Reply.name)
    )
    return sheets.response_table([(name, number, content) for name, number, content in rows])


def faq_table(session: Session) -> sheets.Table:
    """Every entry with a live version (its wording) or only a draft (the draft's)."""
    found = []
    for entry in faq.list_entries(session):
        version = entry["live"] or entry["working"]
        if version is not None:
            live = entry["live"]["version"] if entry["live"] else None
            found.append((entry["id"], live, version["content"]))
    return sheets.faq_table(found)


def export(session: Session, staff: Staff, kind: str, extension: str) -> bytes:
    table = response_table(session) if kind == sheets.RESPONSES else faq_table(session)
    if extension == "xlsx":
        data = sheets.write_xlsx({kind: table})
    else:
        data = sheets.write_csv(table)
    audit.record(
        session,
        staff.email,
        "exported",
        f"sheet:{kind}",
        detail={"format": extension, "rows": len(table[1])},
    )
    return data


def _download(data: bytes, kind: str, extension: str) -> Response:
    day = time.strftime("%Y-%m-%d", time.gmtime())
    return Response(
        data,
        media_type=FORMATS[extension],
        headers={
            "Content-Disposition": f'attachment; filename="{kind}-{day}.{extension}"',
            "Cache-Control": "no-store",
        },
    )


def _export_route(kind: str, extension: str) -> None:
    def download(staff: Reader, console: ConsoleDep) -> Response:
        with transaction(console.engine) as session:
            data = export(session, staff, kind, extension)
        return _download(data, kind, extension)

    router.add_api_route(
        f"/api/export/{kind}.{extension}",
        download,
        methods=["GET"],
        name=f"export_{kind}_{extension}",
        summary=f"{'Replies' if kind == sheets.RESPONSES else 'FAQ entries'} as {extension}",
        response_class=Response,
        responses={200: {"content": {FORMATS[extension].split(";")[0]: {}}}},
    )


for _kind in KINDS:
    for _extension in FORMATS:
        _export_route(_kind, _extension)


# --- import --------------------------------------------------------------------------------


def _rows(data: bytes, kind: str) -> tuple[str, list[str], list[tuple[int, sheets.Row]]]:
    try:
        return sheets.read_rows(data, kind)
    except sheets.SheetError as exc:
        raise store.Invalid(f"nothing was imported: {exc.message}", exc.problems) from None


def _stale(number: int, label: str, row: sheets.Row, live: int | None) -> str | None:
    given = (row.get("version") or "").strip()
    if not given or live is None or given == str(live):
        return None
    return (
        f"row {number} ({label}): the sheet has version {given}, but version {live} was "
        f"published since; export again and make the change there (this row would undo it)"
    )


def import_responses(
    session: Session, staff: Staff, data: bytes, allowed: set[str]
) -> dict[str, Any]:
    kind, header, rows = _rows(data, sheets.RESPONSES)
    problems = sheets.response_header_problems(header)
    if problems:
        raise _invalid("nothing was imported", problems)
    drafts, unchanged = [], []
    seen: dict[str, int] = {}
    for number, row in rows:
        name = row.get("name", "").strip()
        if not name:
            problems.append(f"row {number}: no reply name in the 'name' column")
            continue
        if name in seen:
            problems.append(f"row {number}: {name} is already in row {seen[name]}")
            continue
        seen[name] = number
        reply = session.execute(select(Reply).where(Reply.name == name)).scalar_one_or_none()
        if reply is None:
            problems.append(
                f"row {number}: there is no reply named {name!r} (an import changes the "
                f"existing replies only: export the sheet to see their names)"
            )
            continue
        live = session.get(Version, reply.live_version_id) if reply.live_version_id else None
        working = (
            session.get(Version, reply.working_version_id) if reply.working_version_id else None
        )
        if not sheets.response_changes(row, live.content if live else {}):
            unchanged.append(name)  # what citizens read already: no draft
            continue
        stale = _stale(number, name, row, live.number if live else None)
        if stale:
            problems.append(stale)
            continue
        base = working.content if working else (live.content if live else {})
        changes = sheets.response_changes(row, base)
        if not changes:
            unchanged.append(name)  # the open draft says it already
            continue
        try:
            for change in changes:
                saved = store.save_draft(
                    session,
                    staff,
                    name,
                    change.language,
                    change.text,
                    channel=change.channel,
                    buttons=change.buttons,
                    remove=change.remove,
                    allowed_placeholders=allowed,
                )
        except ContentError as exc:
            problems += [f"row {number} ({name}): {p}" for p in exc.problems or [exc.message]]
            continue
        drafts.append({"row": number, "name": name, "version": saved["version"]})
    if problems:
        raise _invalid("nothing was imported", problems)
    return _imported(session, staff, sheets.RESPONSES, kind, rows, drafts, unchanged)


def import_faq(session: Session, staff: Staff, data: bytes) -> dict[str, Any]:
    kind, header, rows = _rows(data, sheets.FAQ)
    problems = sheets.faq_header_problems(header)
    if problems:
        raise _invalid("nothing was imported", problems)
    drafts: list[dict[str, Any]] = []
    unchanged: list[str] = []
    seen: dict[int, int] = {}
    for number, row in rows:
        given = row.get("id", "").strip()
        raw = sheets.faq_raw(row)
        try:
            entry_id = int(given) if given else None
        except ValueError:
            problems.append(
                f"row {number}: id {given!r} is not a number (leave it empty for a new entry)"
            )
            continue
        label = f"FAQ entry {entry_id}" if entry_id else "new FAQ entry"
        if entry_id is not None:
            if entry_id in seen:
                problems.append(
                    f"row {number}: FAQ entry {entry_id} is already in row {seen[entry_id]}"
                )
                continue
            seen[entry_id] = number
        try:
            if entry_id is None:
                made = faq.create(session, staff, raw)
                drafts.append({"row": number, "id": made["id"], "version": 1})
                continue
            found = faq.describe(session, faq.get_entry(session, entry_id))
            content = faq.clean_content(raw)
            live, working = found["live"], found["working"]
            if live is not None and content == live["content"]:
                unchanged.append(str(entry_id))
                continue
            stale = _stale(number, label, row, live["version"] if live else None)
            if stale:
                problems.append(stale)
                continue
            if working is not None and content == working["content"]:
                unchanged.append(str(entry_id))
                continue
            saved = faq.save_draft(session, staff, entry_id, raw)
        except ContentError as exc:
            problems += [f"row {number} ({label}): {p}" for p in exc.problems or [exc.message]]
            continue
        drafts.append({"row": number, "id": entry_id, "version": saved["working"]["version"]})
    if problems:
        raise _invalid("nothing was imported", problems)
    return _imported(session, staff, sheets.FAQ, kind, rows, drafts, unchanged)


def _imported(
    session: Session,
    staff: Staff,
    kind: str,
    file_format: str,
    rows: list[tuple[int, sheets.Row]],
    drafts: list[dict[str, Any]],
    unchanged: list[str],
) -> dict[str, Any]:
    audit.record(
        session,
        staff.email,
        "imported_sheet",
        f"sheet:{kind}",
        detail={
            "format": file_format,
            "rows": len(rows),
            "drafts": [d.get("name") or d.get("id") for d in drafts],
            "unchanged": len(unchanged),
        },
    )
    return {
        "imported": kind,
        "format": file_format,
        "rows": len(rows),
        "drafts": drafts,
        "unchanged": unchanged,
    }


async def _body(request: Request) -> bytes:
    limit = sheets.MAX_FILE_BYTES + 64 * 1024  # the form's other fields and boundaries
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise TooLarge(f"the file is over {sheets.MAX_FILE_BYTES // (1024 * 1024)} MB")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise TooLarge(f"the file is over {sheets.MAX_FILE_BYTES // (1024 * 1024)} MB")
    return bytes(body)


def form_parts(content_type: str, body: bytes) -> dict[str, bytes]:
    """The fields of a multipart/form-data body, by name (a file field: its bytes)."""
    header = email.parser.HeaderParser(policy=email.policy.HTTP)
    boundary = header.parsestr(f"Content-Type: {content_type}\n\n").get_param("boundary")
    if not isinstance(boundary, str) or not boundary:
        raise store.Invalid("the form has no multipart boundary")
    fields: dict[str, bytes] = {}
    for part in (b"\r\n" + body).split(b"\r\n--" + boundary.encode("latin-1"))[1:]:
        if part.startswith(b"--"):
            break
        head, _, value = part.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        headers = header.parsestr(head.decode("utf-8", errors="replace") + "\n\n")
        name = headers.get_param("name", header="content-disposition")
        if isinstance(name, str) and name not in fields:
            fields[name] = value
    return fields


async def uploaded(request: Request) -> tuple[bytes, dict[str, str]]:
    """The uploaded file, and the form's other fields (the page's CSRF token)."""
    body = await _body(request)
    content_type = request.headers.get("content-type", "")
    if not content_type.lower().startswith("multipart/form-data"):
        return body, {}
    fields = form_parts(content_type, body)
    if "file" not in fields:
        raise store.Invalid("the form has no field 'file'")
    others = {k: v.decode("utf-8", errors="replace") for k, v in fields.items() if k != "file"}
    return fields["file"], others


UPLOAD = {
    "requestBody": {
        "required": True,
        "content": {
            sheets.XLSX_TYPE: {"schema": {"type": "string", "format": "binary"}},
            sheets.CSV_TYPE: {"schema": {"type": "string", "format": "binary"}},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"file": {"type": "string", "format": "binary"}},
                    "required": ["file"],
                }
            },
        },
    }
}


@router.post("/api/import/responses", openapi_extra=UPLOAD)
async def import_responses_route(
    request: Request, staff: Editor, console: ConsoleDep
) -> dict[str, Any]:
    """Replies from an exported sheet, edited: each changed row becomes a draft (never
    published); any refused row: 422 listing every problem, and nothing is saved."""
    data, _ = await uploaded(request)

    def run() -> dict[str, Any]:
        with transaction(console.engine) as session:
            return import_responses(session, staff, data, console.slot_names)

    return await run_in_threadpool(run)


@router.post("/api/import/faq", openapi_extra=UPLOAD)
async def import_faq_route(request: Request, staff: Editor, console: ConsoleDep) -> dict[str, Any]:
    """FAQ entries from a sheet: a row with an id changes that entry's draft, a row without
    one makes a new entry (a draft); any refused row: 422, nothing saved."""
    data, _ = await uploaded(request)

    def run() -> dict[str, Any]:
        with transaction(console.engine) as session:
            return import_faq(session, staff, data)

    return await run_in_threadpool(run)


# --- the page ------------------------------------------------------------------------------


def _sheet_page(
    request: Request,
    visitor: pages.Visitor,
    status: int = 200,
    **context: Any,
) -> HTMLResponse:
    return pages._page(
        request,
        "spreadsheets.html",
        visitor,
        status,
        kinds=KINDS,
        formats=tuple(FORMATS),
        may_edit=visitor.staff.may("edit"),
        **context,
    )


@router.get("/spreadsheets", response_class=HTMLResponse, include_in_schema=False)
def spreadsheets_page(request: Request) -> Response:
    visitor = pages._visitor(request)
    if visitor is None:
        return pages._sign_in_redirect(request)
    if not visitor.staff.may("read"):
        return pages._forbidden(request, visitor, "export or import replies")
    return _sheet_page(request, visitor)


@router.get("/spreadsheets/{kind}.{extension}", include_in_schema=False)
def spreadsheet_download(request: Request, kind: str, extension: str) -> Response:
    visitor = pages._visitor(request)
    if visitor is None:
        return pages._sign_in_redirect(request)
    if not visitor.staff.may("read"):
        return pages._forbidden(request, visitor, "export replies")
    if kind not in KINDS or extension not in FORMATS:
        return pages._page(
            request, "error.html", visitor, 404, title="Not found", message="No such file."
        )
    console = get_console(request)
    with transaction(console.engine) as session:
        data = export(session, visitor.staff, kind, extension)
    return _download(data, kind, extension)


@router.post("/spreadsheets/import/{kind}", include_in_schema=False)
async def spreadsheet_upload(request: Request, kind: str) -> Response:
    visitor = pages._visitor(request)
    if visitor is None:
        return pages._sign_in_redirect(request)
    try:
        data, fields = await uploaded(request)
    except ContentError as exc:
        return _sheet_page(request, visitor, exc.status, kind=kind, error=exc.message)
    if not pages._csrf_ok(request, fields, visitor.csrf):
        return pages._refused(request)
    if not visitor.staff.may("edit"):
        return pages._forbidden(request, visitor, "import drafts")
    if kind not in KINDS:
        return pages._page(
            request, "error.html", visitor, 404, title="Not found", message="No such import."
        )
    console = get_console(request)

    def run() -> dict[str, Any]:
        with transaction(console.engine) as session:
            if kind == sheets.RESPONSES:
                return import_responses(session, visitor.staff, data, console.slot_names)
            return import_faq(session, visitor.staff, data)

    try:
        result = await run_in_threadpool(run)
    except ContentError as exc:
        return _sheet_page(
            request,
            visitor,
            exc.status,
            kind=kind,
            error="Nothing was imported: fix the rows below and upload the file again.",
            problems=exc.problems or [exc.message],
        )
    return _sheet_page(request, visitor, kind=kind, result=result)
