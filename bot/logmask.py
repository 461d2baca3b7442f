"""Masks personal data (ID numbers, phone numbers, one-time codes) before anything is logged."""

from __future__ import annotations

import logging
import re

_ID12 = re.compile(r"(?<!\d)(\d{3})\d{6}(\d{3})(?!\d)")
_PHONE = re.compile(r"(?<![\d+])((?:\+84|84|0)\d{2})(?:[\s.]?\d){4}[\s.]?(\d{3})(?!\d)")
_CMND9 = re.compile(r"(?<!\d)(\d{2})\d{5}(\d{2})(?!\d)")
_OTP6 = re.compile(r"(?<![\d-])\d{6}(?![\d-])")


def mask_pii(text: str) -> str:
    """Return ``text`` with 12-digit ID numbers, phones, 9-digit CMND and 6-digit codes masked."""
    text = _ID12.sub(r"\1******\2", text)
    text = _PHONE.sub(r"\1****\2", text)
    text = _CMND9.sub(r"\1*****\2", text)
    return _OTP6.sub("******", text)


class PiiFilter(logging.Filter):
    """A logging filter that masks personal data in a record's message and arguments."""

    def filter(self, record: logging.LogRecord) -> bool:
        # Format first, then mask the result: masking an argument could break a %d format.
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            message = str(record.msg)
        record.msg = mask_pii(message)
        record.args = None
        return True


def install_pii_filter() -> None:
    """Attach the filter to every handler of the root logger (and to the root logger itself)."""
    root = logging.getLogger()
    pii = PiiFilter()
    if not any(isinstance(f, PiiFilter) for f in root.filters):
        root.addFilter(pii)
    for handler in root.handlers:
        if not any(isinstance(f, PiiFilter) for f in handler.filters):
            handler.addFilter(pii)
