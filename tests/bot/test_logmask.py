from __future__ import annotations

import logging

import pytest

from bot.logmask import PiiFilter, mask_pii


def test_personal_numbers_are_masked() -> None:
    text = "id 001090001234 phone 0912345678 +84 912 345 678 code 482913 cmnd 123456789"
    masked = mask_pii(text)
    for secret in ["001090001234", "0912345678", "482913", "123456789"]:
        assert secret not in masked
    assert "001******234" in masked and "091****678" in masked


def test_dossier_codes_and_fees_stay_readable() -> None:
    text = "dossier 000.00.10.H26-261110-0001 fee 50000"
    assert mask_pii(text) == text


def test_filter_masks_arguments(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("test.pii")
    logger.addFilter(PiiFilter())
    with caplog.at_level(logging.INFO, logger="test.pii"):
        logger.info("verify %s with %s", "001090001234", 482913)
    assert "001090001234" not in caplog.text and "482913" not in caplog.text


def test_numeric_formats_still_work(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("test.pii.numeric")
    logger.addFilter(PiiFilter())
    with caplog.at_level(logging.INFO, logger="test.pii.numeric"):
        logger.info("code %d sent, %d left", 482913, 4)
    assert "482913" not in caplog.text and "4 left" in caplog.text
