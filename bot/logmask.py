"""Masks personal data (ID numbers, phones, one-time codes, tokens) before anything is logged.

Every process of the assistant calls ``install_pii_masking()`` first: it masks each log record
when it is created, so no handler, formatter or library (Rasa's structlog, coloredlogs, which
replaces the handlers of a logging config file) can print the raw text. Tracebacks are masked
too. The rule is deliberately coarse: any run of six or more digits, typed whole or in groups
separated by single spaces, dots or dashes ("001 090 001 234", "0912-345-678", "+84 912 345 678",
"123 456"), is masked, keeping only the last three digits of long numbers. Dossier codes
(which are not personal) and ISO dates stay readable.
"""

from __future__ import annotations

import logging
import re
import traceback
from typing import Any

from nlu.components.patterns import DOSSIER_CODE

# Digit groups joined by single separators: "001 090 001 234", "+84 912.345.678", "123-456".
_DIGIT_RUN = re.compile(r"(?<![\w])\+?\d+(?:[ .\-]\d+)*(?![\w])")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_CONFIDENCE = re.compile(r"\d\.\d+")  # 0.98765: a score, not a number anybody owns
# 127.0.0.1, 10.20.30.40: an address. ID numbers typed in dotted groups start with the province
# code ("001.090.001.234"), whose leading zero no written IPv4 address has.
_IPV4 = re.compile(
    r"(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
)
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*")
# A secret after a word that announces one: "Bearer x", "access_token=x", "?token=x", "session".
_BEARER = re.compile(
    r"(?i)\b(bearer\s+|access_token[\"'=: ]+|session[\"'=: ]+|token=)[A-Za-z0-9._~+/=-]{16,}"
)
_BOT_TOKEN = re.compile(r"(?<!\d)\d{6,}:[A-Za-z0-9_-]{30,}")
MIN_DIGITS = 6
KEEP_LAST = 3


def _mask_run(match: re.Match[str]) -> str:
    run = match.group(0)
    if _ISO_DATE.fullmatch(run) or _CONFIDENCE.fullmatch(run) or _IPV4.fullmatch(run):
        return run
    digits = re.sub(r"\D", "", run)
    if len(digits) < MIN_DIGITS:
        return run
    if len(digits) >= 9:  # ID numbers, phones, old CMND: the last three digits stay
        return "*" * (len(digits) - KEEP_LAST) + digits[-KEEP_LAST:]
    return "*" * len(digits)  # codes


def mask_pii(text: str) -> str:
    """``text`` with long numbers (IDs, phones, codes) and tokens masked; dossier codes kept."""
    if not text:
        return text
    text = _JWT.sub("[token]", text)
    text = _BOT_TOKEN.sub("[token]", text)
    text = _BEARER.sub(lambda m: m.group(1) + "[token]", text)
    kept: list[str] = []

    def protect(match: re.Match[str]) -> str:
        kept.append(match.group(0))
        return f"\x00{len(kept) - 1}\x00"

    text = DOSSIER_CODE.sub(protect, text)
    text = _DIGIT_RUN.sub(_mask_run, text)
    if kept:
        text = re.sub(r"\x00(\d+)\x00", lambda m: kept[int(m.group(1))], text)
    return text


def mask_record(record: logging.LogRecord) -> None:
    """Mask a record's message, arguments, traceback and stack in place."""
    if getattr(record, "pii_masked", False):
        return
    try:
        message = record.getMessage()
    except (TypeError, ValueError):
        message = str(record.msg)
    # Format first, then mask the result: masking an argument could break a %d format.
    record.msg = mask_pii(message)
    record.args = None
    if record.exc_info and not record.exc_text:
        record.exc_text = mask_pii("".join(traceback.format_exception(*record.exc_info)).rstrip())
    if record.exc_text:
        record.exc_text = mask_pii(record.exc_text)
    if record.stack_info:
        record.stack_info = mask_pii(record.stack_info)
    setattr(record, "pii_masked", True)  # noqa: B010 (LogRecord has no such field)


class PiiFilter(logging.Filter):
    """A logging filter that masks personal data (for handlers configured by a file)."""

    def filter(self, record: logging.LogRecord) -> bool:
        mask_record(record)
        return True


def install_pii_masking() -> None:
    """Mask every log record of this process when it is created (idempotent)."""
    previous = logging.getLogRecordFactory()
    if getattr(previous, "pii_masking", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        mask_record(record)
        return record

    factory.pii_masking = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


def install_pii_filter() -> None:
    """Older name kept for the channels' polling runner: installs the record factory."""
    install_pii_masking()
