"""Replies and FAQ entries as spreadsheets (XLSX with openpyxl, or CSV), both ways: pure
functions from rows to file bytes and back, and from a reply's content to a row and back.

Text survives the round trip as it is: Unicode NFC, diacritics, newlines inside a cell and
`{placeholders}`. CSV is UTF-8 with a byte-order mark (spreadsheet programs then read the
Vietnamese letters right); a cell that a spreadsheet program would run as a formula (it starts
with = + - @ or a tab) gets a leading apostrophe, taken off again when the file is read. In
XLSX every cell is written as text, never as a formula.

Buttons are one cell, one button a line: `title | /payload` or `title | https://...` (the same
form as the reply page). A channel variant is a column pair `vi messenger`, `vi messenger
buttons` (any channel name or alias of console/channels.py).
"""

from __future__ import annotations

import csv
import datetime
import io
import re
import unicodedata
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from console.channels import channels, resolve
from console.rasa_format import LANGUAGES, Content

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CSV_TYPE = "text/csv"
MAX_FILE_BYTES = 5 * 1024 * 1024
MAX_UNZIPPED_BYTES = 100 * 1024 * 1024  # an XLSX is a zip: no bomb gets opened
MAX_ROWS = 5000
RESPONSES = "responses"  # the sheet (and file) names
FAQ = "faq"

# A spreadsheet program runs a CSV cell starting with one of these as a formula.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_SPACES = re.compile(r"[\s_]+")


class SheetError(ValueError):
    """A file that is not a readable sheet, or a header this import does not know (422)."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.problems = problems or [message]


Row = dict[str, str]  # normalised header -> cell text
Table = tuple[list[str], list[list[str]]]  # header, rows


def clean(value: Any) -> str:
    """A cell as text: NFC, newlines as "\\n", dates as YYYY-MM-DD, 3.0 as "3"."""
    if value is None:
        return ""
    if isinstance(value, datetime.datetime):
        value = value.date() if value.time() == datetime.time() else value
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).replace("\r\n", "\n").replace("\r", "\n")
    return unicodedata.normalize("NFC", text)


def same_text(a: str | None, b: str | None) -> bool:
    """Equal up to NFC, line endings and surrounding spaces (spreadsheet programs trim)."""
    return clean(a).strip() == clean(b).strip()


def header_key(title: str) -> str:
    return _SPACES.sub(" ", clean(title).strip().lower())


# --- files ---------------------------------------------------------------------------------


def _csv_cell(text: str) -> str:
    return "'" + text if text.startswith(_FORMULA_START) or text.startswith("'") else text


def _from_csv_cell(text: str) -> str:
    if text.startswith("'") and text[1:2] and text[1:].startswith((*_FORMULA_START, "'")):
        return text[1:]
    return text


def write_csv(table: Table) -> bytes:
    header, rows = table
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([_csv_cell(clean(cell)) for cell in row])
    return b"\xef\xbb\xbf" + out.getvalue().encode("utf-8")


def write_xlsx(sheets: dict[str, Table]) -> bytes:
    from openpyxl import Workbook
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
    from openpyxl.styles import Alignment, Font

    book = Workbook()
    book.remove(book.active)
    wrap = Alignment(wrap_text=True, vertical="top")
    for title, (header, rows) in sheets.items():
        sheet = book.create_sheet(title)
        sheet.append(header)
        for cell in sheet[1]:
            cell.font = Font(bold=True)
        for number, row in enumerate(rows, 2):
            for column, value in enumerate(row, 1):
                cell = sheet.cell(number, column)
                cell.value = ILLEGAL_CHARACTERS_RE.sub("", clean(value))
                cell.data_type = "s"  # text, even when it starts with "=": never a formula
                cell.alignment = wrap
        for column, name in enumerate(header, 1):
            letter = sheet.cell(1, column).column_letter
            sheet.column_dimensions[letter].width = 16 if name in ("version", "id") else 40
        sheet.freeze_panes = "B2"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _numbered(raw: Iterable[Sequence[Any]]) -> list[tuple[int, list[str]]]:
    rows = []
    for number, values in enumerate(raw, 1):
        if number > MAX_ROWS + 1:
            raise SheetError(f"the sheet has more than {MAX_ROWS} rows: split it")
        rows.append((number, [clean(v) for v in values]))
    return rows


def _read_csv(data: bytes) -> list[tuple[int, list[str]]]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise SheetError(
            "the file is neither an XLSX workbook nor a UTF-8 CSV (save it as 'CSV UTF-8')"
        ) from None
    first = text.split("\n", 1)[0]
    delimiter = max((",", ";", "\t"), key=first.count)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    return [(n, [_from_csv_cell(c) for c in cells]) for n, cells in _numbered(reader)]


def _read_xlsx(data: bytes, sheet_name: str) -> list[tuple[int, list[str]]]:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            unzipped = sum(member.file_size for member in archive.infolist())
    except zipfile.BadZipFile:
        raise SheetError("the file is not a readable XLSX workbook") from None
    if unzipped > MAX_UNZIPPED_BYTES:
        raise SheetError("the workbook is too large once unpacked")
    from openpyxl import load_workbook

    try:
        book = load_workbook(io.BytesIO(data), data_only=True)
    except Exception:  # openpyxl raises many kinds for a damaged file
        raise SheetError("the file is not a readable XLSX workbook") from None
    sheet = book[sheet_name] if sheet_name in book.sheetnames else book.worksheets[0]
    return _numbered(sheet.iter_rows(min_row=1, values_only=True))


def read_rows(data: bytes, sheet_name: str) -> tuple[str, list[str], list[tuple[int, Row]]]:
    """The file's format ("xlsx" or "csv"), its header, and its rows after the header, each
    with its row number as a spreadsheet program shows it (the header is row 1); blank rows
    left out."""
    if len(data) > MAX_FILE_BYTES:
        raise SheetError(f"the file is over {MAX_FILE_BYTES // (1024 * 1024)} MB")
    if not data.strip():
        raise SheetError("the file is empty")
    kind = "xlsx" if data[:4] == b"PK\x03\x04" else "csv"
    raw = _read_xlsx(data, sheet_name) if kind == "xlsx" else _read_csv(data)
    if not raw:
        raise SheetError("the file is empty")
    header = [header_key(title) for title in raw[0][1]]
    while header and not header[-1]:
        header.pop()
    seen = [h for h in header if h]
    duplicates = sorted({h for h in seen if seen.count(h) > 1})
    if duplicates:
        raise SheetError(f"the column {duplicates[0]!r} appears twice in the header")
    rows = []
    for number, cells in raw[1:]:
        extra = [c for c in cells[len(header) :] if c.strip()]
        if extra:
            raise SheetError(f"row {number} has more cells than the header has columns")
        row = {h: (cells[i] if i < len(cells) else "") for i, h in enumerate(header) if h}
        if any(v.strip() for v in row.values()):
            rows.append((number, row))
    return kind, seen, rows


# --- buttons -------------------------------------------------------------------------------


def buttons_cell(buttons: list[dict[str, Any]] | None) -> str:
    """One button a line: `title | payload` or `title | https://...`."""
    return "\n".join(
        f"{b.get('title', '')} | {b.get('payload') or b.get('url') or ''}" for b in buttons or []
    )


def parse_buttons(cell: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for line in clean(cell).split("\n"):
        if not line.strip():
            continue
        title, _, target = line.partition("|")
        target = target.strip()
        if re.match(r"(?i)https?://", target):
            found.append({"title": title.strip(), "url": target, "type": "web_url"})
        else:
            found.append({"title": title.strip(), "payload": target})
    return found


def _comparable(buttons: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    return parse_buttons(buttons_cell(buttons))


# --- replies -------------------------------------------------------------------------------


def _channel_column(channel: str) -> str:
    known = channels().get(channel)
    return known.aliases[0] if known and known.aliases else channel


@dataclass(frozen=True)
class Column:
    language: str
    channel: str | None  # Rasa's channel name, None: the language's text
    buttons: bool

    @property
    def title(self) -> str:
        parts = [self.language]
        if self.channel:
            parts.append(_channel_column(self.channel))
        if self.buttons:
            parts.append("buttons")
        return " ".join(parts)


def parse_response_header(title: str) -> Column | None:
    """The column a header names (`vi`, `en buttons`, `vi messenger`, ...), or None."""
    parts = header_key(title).split(" ")
    buttons = parts[-1] == "buttons"
    if buttons:
        parts = parts[:-1]
    if not parts or parts[0] not in LANGUAGES or len(parts) > 2:
        return None
    channel = resolve(parts[1]) if len(parts) == 2 else None
    if len(parts) == 2 and channel is None:
        return None
    return Column(parts[0], channel.name if channel else None, buttons)


RESPONSE_FIXED = ("name", "version")


def response_columns(contents: Iterable[Content]) -> list[Column]:
    """Each language's text and buttons, then a pair per channel some reply has a variant for."""
    used = sorted(
        {c for content in contents for e in content.values() for c in e.get("channels") or {}}
    )
    columns = []
    for language in LANGUAGES:
        columns += [Column(language, None, False), Column(language, None, True)]
    for channel in used:
        for language in LANGUAGES:
            columns += [Column(language, channel, False), Column(language, channel, True)]
    return columns


def response_table(replies: list[tuple[str, int | None, Content]]) -> Table:
    """(name, live version, content) of each reply as a sheet."""
    columns = response_columns(content for _, _, content in replies)
    header = [*RESPONSE_FIXED, *(c.title for c in columns)]
    rows = []
    for name, version, content in replies:
        row = [name, "" if version is None else str(version)]
        for column in columns:
            entry = content.get(column.language) or {}
            message = (entry.get("channels") or {}).get(column.channel) if column.channel else entry
            if message is None:
                row.append("")
            elif column.buttons:
                row.append(buttons_cell(message.get("buttons")))
            else:
                row.append(str(message.get("text") or ""))
        rows.append(row)
    return header, rows


def response_header_problems(header: Iterable[str]) -> list[str]:
    header = list(header)
    problems = []
    if "name" not in header:
        problems.append("the sheet has no 'name' column (the reply's name, as utter_greet)")
    columns = {parse_response_header(h) for h in header if h not in RESPONSE_FIXED}
    for title in header:
        column = parse_response_header(title) if title not in RESPONSE_FIXED else None
        if title not in RESPONSE_FIXED and column is None:
            problems.append(
                f"the column {title!r} is not one this import reads (name, version, vi, "
                f"vi buttons, en, en buttons, or a channel variant such as 'vi messenger' and "
                f"'vi messenger buttons')"
            )
        elif column and column.buttons:
            if Column(column.language, column.channel, False) not in columns:
                problems.append(f"the column {title!r} needs its text column beside it")
    return problems


@dataclass(frozen=True)
class Change:
    """One store call (console.content.save_draft) an imported row needs."""

    language: str
    channel: str | None
    text: str | None
    buttons: list[dict[str, Any]] | None
    remove: bool = False


def response_changes(row: Row, base: Content) -> list[Change]:
    """The store calls that make ``base`` what ``row`` says (none when it says the same).
    Columns the sheet lacks are left as they are. Channel variants come first: a long text can
    only be saved once the short channels have their own variant."""
    variants: list[Change] = []
    defaults: list[Change] = []
    removals: list[Change] = []
    columns = {parse_response_header(h): v for h, v in row.items() if h not in RESPONSE_FIXED}
    for column, text in columns.items():
        if column is None or column.buttons:
            continue
        entry = base.get(column.language) or {}
        existing = (entry.get("channels") or {}).get(column.channel) if column.channel else entry
        buttons_column = Column(column.language, column.channel, True)
        cell = columns.get(buttons_column)
        if column.channel and existing is None and not text.strip():
            continue  # no variant, none wanted
        if column.channel and existing is not None and not text.strip():
            removals.append(Change(column.language, column.channel, None, None, remove=True))
            continue
        # A new variant starts with the language's buttons (what the store copies).
        reference = existing if existing is not None else entry
        old_buttons = _comparable(reference.get("buttons"))
        buttons = parse_buttons(cell) if cell is not None else None
        if buttons is not None and buttons == old_buttons:
            buttons = None
        text_changed = existing is None or not same_text(text, existing.get("text"))
        if not text_changed and buttons is None:
            continue
        change = Change(
            column.language, column.channel, clean(text) if text_changed else None, buttons
        )
        (variants if column.channel else defaults).append(change)
    return variants + defaults + removals


# --- FAQ entries ---------------------------------------------------------------------------

FAQ_COLUMNS = (
    "id",
    "version",
    "questions vi",
    "questions en",
    "answer vi",
    "answer en",
    "source",
    "reviewed on",
    "valid from",
    "valid until",
)


def faq_table(entries: list[tuple[int, int | None, dict[str, Any]]]) -> Table:
    """(id, live version, content) of each entry as a sheet; phrasings one a line."""
    rows = []
    for entry_id, version, content in entries:
        questions, answer = content.get("questions") or {}, content.get("answer") or {}
        rows.append(
            [
                str(entry_id),
                "" if version is None else str(version),
                "\n".join(questions.get("vi") or []),
                "\n".join(questions.get("en") or []),
                str(answer.get("vi") or ""),
                str(answer.get("en") or ""),
                str(content.get("source") or ""),
                str(content.get("reviewed_on") or ""),
                str(content.get("valid_from") or ""),
                str(content.get("valid_until") or ""),
            ]
        )
    return list(FAQ_COLUMNS), rows


def faq_header_problems(header: Iterable[str]) -> list[str]:
    return [
        f"the column {h!r} is not one this import reads ({', '.join(FAQ_COLUMNS)})"
        for h in header
        if h not in FAQ_COLUMNS
    ]


def faq_raw(row: Row) -> dict[str, Any]:
    """A row as the content console.faq.clean_content checks (the same as the JSON API's)."""

    def lines(key: str) -> list[str]:
        return [line for line in clean(row.get(key)).split("\n") if line.strip()]

    return {
        "questions": {language: lines(f"questions {language}") for language in LANGUAGES},
        "answer": {language: clean(row.get(f"answer {language}")) for language in LANGUAGES},
        "source": clean(row.get("source")).strip(),
        "reviewed_on": clean(row.get("reviewed on")).strip() or None,
        "valid_from": clean(row.get("valid from")).strip() or None,
        "valid_until": clean(row.get("valid until")).strip() or None,
    }
