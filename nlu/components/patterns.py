"""Validating patterns for codes and numbers citizens type: ID numbers, dossier codes, phones, OTPs.

Shared by the NLU extractor (which only proposes valid values) and the actions (which re-check
what a citizen typed in a form). Pure functions, no I/O.
"""

from __future__ import annotations

import datetime as _dt
import re

# Old 63-province codes used in the first 3 digits of the personal ID number.
PROVINCE_CODES: frozenset[str] = frozenset(
    """001 002 004 006 008 010 011 012 014 015 017 019 020 022 024 025 026 027 030 031 033 034
    035 036 037 038 040 042 044 045 046 048 049 051 052 054 056 058 060 062 064 066 067 068 070
    072 074 075 077 079 080 082 083 084 086 087 089 091 092 093 094 095 096""".split()
)

# 12 digits, typed whole or in groups of 3 (001 090 001 234) or of 4 (0010 9000 1234)
ID_NUMBER_CANDIDATE = re.compile(
    r"(?<![\d.-])(\d{3}(?:[ .]?\d{3}){3}|\d{4}(?:[ .]?\d{4}){2})(?![\d.-])"
)
CMND_CANDIDATE = re.compile(r"(?<![\d.-])(?<!\+84 )(\d{9})(?![\d.-])")  # not "+84 9xxxxxxxx"
DOSSIER_CODE = re.compile(
    r"(?<![0-9A-Za-z.])([0-9A-Za-z]{2,5}(?:\.[0-9A-Za-z]{1,5}){1,4}-\d{6}-\d{4,6})(?![0-9A-Za-z])"
)
PHONE_CANDIDATE = re.compile(r"(?<![\d+])((?:\+84 ?|84|0)[35789](?:[ .]?\d){8})(?!\d)")
OTP_CANDIDATE = re.compile(r"(?<![\d.,-])(\d{6})(?![\d-]|[.,]\d)")  # "mã 123456, ..." is a code


def digits_only(text: str) -> str:
    """Digits of a number typed with spaces, dots or dashes ("0010 9000 1234" -> "001090001234")."""
    stripped = re.sub(r"[\s.\-]", "", text)
    return stripped if stripped.isdigit() else ""


def id_number_problem(value: str, today: _dt.date | None = None) -> str | None:
    """None when ``value`` is a structurally valid 12-digit ID number, else why not.

    Reasons: "cmnd" (an old 9-digit number), "length", "province", "century", "year".
    """
    digits = digits_only(value)
    if len(digits) == 9:
        return "cmnd"
    if len(digits) != 12:
        return "length"
    if digits[:3] not in PROVINCE_CODES:
        return "province"
    century_digit = int(digits[3])
    if century_digit > 3:
        return "century"
    year = (1900 if century_digit < 2 else 2000) + int(digits[4:6])
    if year > (today or _dt.date.today()).year:
        return "year"
    return None


def is_valid_id_number(value: str) -> bool:
    return id_number_problem(value) is None


def normalise_dossier_code(value: str) -> str | None:
    """The canonical (upper-case) dossier code, or None if ``value`` is not one."""
    match = DOSSIER_CODE.fullmatch(value.strip().replace(" ", ""))
    if not match:
        return None
    code = match.group(1).upper()
    yymmdd = code.rsplit("-", 2)[1]
    try:
        _dt.date(2000 + int(yymmdd[:2]), int(yymmdd[2:4]), int(yymmdd[4:6]))
    except ValueError:
        return None
    return code


def is_valid_phone(value: str) -> bool:
    digits = re.sub(r"[\s.]", "", value)
    if digits.startswith("+84"):
        digits = "0" + digits[3:]
    elif digits.startswith("84") and len(digits) == 11:
        digits = "0" + digits[2:]
    return bool(re.fullmatch(r"0[35789]\d{8}", digits))


def normalise_otp(value: str) -> str | None:
    digits = digits_only(value)
    return digits if len(digits) == 6 else None
