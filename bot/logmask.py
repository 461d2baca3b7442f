"""Masks personal data (ID numbers, phone numbers, one-time codes) before anything is logged."""

from __future__ import annotations

import logging
import re
from typing import Any

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


def _mask_arg(value: Any) -> Any:
    if isinstance(value, str | int) and not isinstance(value, bool):
        return mask_pii(str(value)) if isinstance(value, str) else _mask_int(value)
    if isinstance(value, dict | list | tuple):
        return mask_pii(repr(value))
    return value


def _mask_int(value: int) -> Any:
    masked = mask_pii(str(value))
    return value if masked == str(value) else masked


class PiiFilter(logging.Filter):
    """A logging filter that masks personal data in a record's message and arguments."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = mask_pii(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(_mask_arg(a) for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: _mask_arg(v) for k, v in record.args.items()}
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
