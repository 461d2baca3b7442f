from __future__ import annotations

import logging

import pytest

from bot.logmask import PiiFilter, install_pii_masking, mask_pii

# Every way the extractors and forms accept these numbers (nlu/components/patterns.py).
SECRETS_AS_TYPED = {
    "001090001234": ["001090001234", "001 090 001 234", "001.090.001.234", "0010 9000 1234"],
    "0912345678": [
        "0912345678",
        "+84 912 345 678",
        "+84912345678",
        "84912345678",
        "0912-345-678",
        "0912.345.678",
        "0912 345 678",
    ],
    "482913": ["482913", "482 913", "48 29 13", "4 8 2 9 1 3"],
    "123456789": ["123456789", "123 456 789"],
}


@pytest.mark.parametrize(
    ("secret", "typed"), [(s, t) for s, forms in SECRETS_AS_TYPED.items() for t in forms]
)
def test_every_accepted_format_is_masked(secret: str, typed: str) -> None:
    masked = mask_pii(f"user said: {typed}, please check")
    digits = "".join(ch for ch in masked if ch.isdigit())
    assert secret not in digits  # not even with the separators taken out
    assert typed not in masked


def test_long_numbers_keep_only_their_last_three_digits() -> None:
    assert mask_pii("id 001090001234") == "id *********234"
    assert mask_pii("phone 0912-345-678") == "phone *******678"
    assert mask_pii("code 482913") == "code ******"


def test_dossier_codes_dates_scores_and_fees_stay_readable() -> None:
    text = "dossier 000.00.10.H26-261110-0001 due 2026-12-10 confidence 0.9876543 fee 50000"
    assert mask_pii(text) == text


def test_addresses_stay_readable_but_dotted_id_numbers_do_not() -> None:
    assert mask_pii("Starting Rasa server on http://127.0.0.1:5005") == (
        "Starting Rasa server on http://127.0.0.1:5005"
    )
    assert "10.20.30.40" in mask_pii("from 10.20.30.40")
    assert "001.090.001.234" not in mask_pii("id 001.090.001.234")


def test_tokens_are_masked() -> None:
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIwMDEwOTAwMDEyMzQifQ.c2lnbmF0dXJlLXNpZ25hdHVyZQ"
    masked = mask_pii(f"token {jwt} header Authorization: Bearer abcdefghijklmnopqrstuvwx")
    assert jwt not in masked and "abcdefghijklmnopqrstuvwx" not in masked
    assert "[token]" in masked
    bot_url = "https://api.telegram.org/bot123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/sendMessage"
    assert "AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw" not in mask_pii(bot_url)


def test_filter_masks_arguments(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("test.pii")
    logger.addFilter(PiiFilter())
    with caplog.at_level(logging.INFO, logger="test.pii"):
        logger.info("verify %s with %s", "001 090 001 234", 482913)
        logger.info("code %d sent, %d left", 482913, 4)
    assert "001 090 001 234" not in caplog.text and "482913" not in caplog.text
    assert "4 left" in caplog.text


def test_record_factory_masks_every_logger_and_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    """No filter on the logger or its handler: the record is masked when it is created."""
    previous = logging.getLogRecordFactory()
    install_pii_masking()
    try:
        logger = logging.getLogger("test.pii.factory")
        with caplog.at_level(logging.DEBUG, logger="test.pii.factory"):
            logger.debug("message text %r", "so 0912-345-678 cua toi")
            try:
                raise ValueError("bad id 001.090.001.234")
            except ValueError:
                logger.exception("failed")
        formatted = "\n".join(
            logging.Formatter("%(message)s").format(record) for record in caplog.records
        )
    finally:
        logging.setLogRecordFactory(previous)
    assert "ValueError" in formatted  # the traceback is there...
    assert "0912-345-678" not in formatted and "001.090.001.234" not in formatted  # ...masked
