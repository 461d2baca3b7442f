"""Procedure questions through the REST channel: guided case question, follow-ups, places."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import Stack
from tests.e2e.test_dossier_journey import buttons, texts

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize(
    "question",
    [
        "mất căn cước thì làm lại thế nào, hết bao nhiêu tiền?",
        "mat cccd thi lam lai the nao, het bao nhieu tien?",
    ],
)
def test_lost_card_checklist_fee_and_time_then_online(
    stack: Stack, sender: str, question: str
) -> None:
    body = texts(stack.say(sender, question))
    assert "Cấp lại khi bị mất" in body  # the re-issue case, no question needed
    assert "50.000 đồng" in body and "7 ngày làm việc" in body
    online = texts(stack.say(sender, "còn làm online được không?"))
    assert "VNeID" in online and "trực tuyến" in online


def test_passport_asks_the_case_with_buttons_then_answers(stack: Stack, sender: str) -> None:
    asked = stack.say(sender, "làm hộ chiếu cần giấy tờ gì")
    options = buttons(asked)
    assert len(options) >= 2
    answer = texts(stack.say(sender, options[0]["payload"]))
    assert "TK01" in answer
    assert "Dữ liệu mẫu" in answer  # sandbox content is labelled as sample data
    fee = texts(stack.say(sender, "còn lệ phí thì sao?"))
    assert "Lệ phí" in fee and "TK01" not in fee  # a follow-up gets just the fee


def test_english_follow_up_keeps_the_procedure(stack: Stack, sender: str) -> None:
    stack.say(sender, "How do I get a criminal record certificate?")
    body = texts(stack.say(sender, "and how long does it take?"))
    assert "Processing time" in body


def test_old_province_name_is_mapped(stack: Stack, sender: str) -> None:
    body = texts(stack.say(sender, "đăng ký thường trú ở Bình Dương cần giấy tờ gì"))
    assert "Bình Dương" in body and "TP. Hồ Chí Minh" in body


def test_scam_call_is_explained(stack: Stack, sender: str) -> None:
    body = texts(stack.say(sender, "có người gọi xưng là công an bảo tôi đọc mã OTP VNeID"))
    assert "lừa đảo" in body and "113" in body
