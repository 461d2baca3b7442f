"""Journey (b) of the walking skeleton, through the REST channel, with the real processes."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import Stack

pytestmark = pytest.mark.e2e

AN_ID, AN_PHONE = "001090001234", "0912345678"
BINH_ID, BINH_PHONE = "079185005678", "0987654321"


def texts(replies: list[dict]) -> str:
    return "\n".join(r.get("text", "") for r in replies)


def buttons(replies: list[dict]) -> list[dict]:
    return [b for r in replies for b in r.get("buttons") or []]


def verify(stack: Stack, sender: str, id_number: str, phone: str) -> list[dict]:
    asked = stack.say(sender, "/affirm")
    assert "12" in texts(asked)  # asks for the 12-digit personal ID number
    sent = stack.say(sender, id_number)
    assert "*******" + phone[-3:] in texts(sent)  # only the last 3 digits of the phone
    assert phone[:3] not in texts(sent)
    return stack.say(sender, stack.latest_code(phone))


def test_vietnamese_journey_to_the_missing_photo(stack: Stack, sender: str) -> None:
    first = stack.say(sender, "Hồ sơ 000.00.10.H26-261110-0001 của tôi đến đâu rồi?")
    assert "000.00.10.H26-261110-0001" in texts(first)
    assert "bổ sung" in texts(first).lower()
    assert "4x6" not in texts(first)  # no detail before identity is proven
    assert {b["payload"] for b in buttons(first)} >= {"/affirm", "/deny"}

    stack.say(sender, "/affirm")
    sent = stack.say(sender, AN_ID)
    assert "*******678" in texts(sent)

    wrong = stack.say(sender, "000000" if stack.latest_code(AN_PHONE) != "000000" else "111111")
    assert "2 lần" in texts(wrong)  # attempts left for this code, and the form asks again

    details = stack.say(sender, stack.latest_code(AN_PHONE))
    body = texts(details)
    assert "Nguyễn Văn An" in body
    assert "4x6" in body  # the missing photo
    assert "10/12/2026" in body  # by when
    assert "tiếp theo" in body  # and what to do next


def test_english_journey_to_a_result_ready_for_pickup(stack: Stack, sender: str) -> None:
    first = stack.say(sender, "Where is my dossier 000.00.10.H26-261020-0002?")
    assert "Dossier 000.00.10.H26-261020-0002" in texts(first)
    details = verify(stack, sender, AN_ID, AN_PHONE)
    body = texts(details)
    assert "Verified" in body and "Collecting the result" in body


def test_another_citizens_dossier_shows_only_public_status(stack: Stack, sender: str) -> None:
    stack.say(sender, "tra cứu hồ sơ 000.00.10.H26-261110-0001")
    verify(stack, sender, AN_ID, AN_PHONE)
    other = stack.say(sender, "còn hồ sơ 000.00.20.H29-261115-0003 thì sao")
    body = texts(other)
    assert "000.00.20.H29-261115-0003" in body
    assert "không đứng tên" in body
    assert "Trần Thị Bình" not in body


def test_unknown_and_malformed_codes_get_clear_answers(stack: Stack, sender: str) -> None:
    unknown = stack.say(sender, "kiểm tra hồ sơ 000.00.10.H26-261110-9999")
    assert "không tìm thấy" in texts(unknown)
    stack.say(sender, "tôi muốn tra cứu hồ sơ")
    malformed = stack.say(sender, "12345-abc")
    assert "không giống một mã hồ sơ" in texts(malformed)
    recovered = stack.say(sender, "000.00.20.H29-261115-0003")
    assert "000.00.20.H29-261115-0003" in texts(recovered)


def test_wrong_id_numbers_are_explained(stack: Stack, sender: str) -> None:
    stack.say(sender, "hồ sơ 000.00.10.H26-261110-0001 đến đâu rồi")
    stack.say(sender, "có")
    assert "12 chữ số" in texts(stack.say(sender, "001790001234"))  # impossible century digit
    assert "chứng minh nhân dân cũ" in texts(stack.say(sender, "123456789"))
    # an unknown number is answered like a known one: a stranger learns nothing
    assert "Nếu số định danh này có trong" in texts(stack.say(sender, "001095009999"))
    stopped = stack.say(sender, "thôi không cần nữa")
    assert "dừng" in texts(stopped)


@pytest.mark.parametrize(
    "text", ["", "   ", "😀😀😀", "?!", "x" * 5000, "hồ sơ " * 2000, "<script>alert(1)</script>"]
)
def test_bad_input_always_gets_a_polite_reply(stack: Stack, sender: str, text: str) -> None:
    replies = stack.say(sender, text)
    assert replies and all(r.get("text") for r in replies)
    assert stack.say(sender, "xin chào")  # and the conversation goes on


def test_http_api_parses(stack: Stack) -> None:
    parsed = stack.api("POST", "/model/parse", json={"text": "lam can cuoc o dau"})
    assert parsed.status_code == 200
    assert parsed.json()["intent"]["name"] == "ask_where_to_submit"
    assert parsed.json()["language"] == "vi"


def test_logs_hold_no_full_id_number_phone_or_code(stack: Stack, sender: str) -> None:
    stack.say(sender, "hồ sơ 000.00.20.H29-261115-0003")
    details = verify(stack, sender, BINH_ID, BINH_PHONE)
    assert "Trần Thị Bình" in texts(details)
    code = stack.latest_code(BINH_PHONE)
    logs = stack.logs()
    assert logs  # the services did log
    for secret in (BINH_ID, BINH_PHONE, code):
        assert secret not in logs


CITIZENS = {
    "An": (AN_ID, AN_PHONE),
    "Bình": (BINH_ID, BINH_PHONE),
    "Cường": ("031200001111", "0903111222"),
}


@pytest.mark.parametrize(
    ("code", "owner", "public_status", "detail_heading"),
    [
        ("000.00.10.H26-261110-0001", "An", "Yêu cầu bổ sung", "Hồ sơ cần bổ sung"),
        ("000.00.10.H26-261020-0002", "An", "Có kết quả", "Nhận kết quả"),
        ("000.00.20.H29-261115-0003", "Bình", "Đang xử lý", "Việc bạn cần làm tiếp theo"),
        ("000.00.20.H29-261001-0004", "Bình", "Từ chối", "Lý do từ chối"),
        ("000.00.10.H26-261118-0005", "An", "Đã tiếp nhận", "Việc bạn cần làm tiếp theo"),
        ("H31.05-260915-0006", "Cường", "Đã trả kết quả", "Việc bạn cần làm tiếp theo"),
    ],
)
def test_every_status_says_what_it_means_and_what_to_do(
    stack: Stack, sender: str, code: str, owner: str, public_status: str, detail_heading: str
) -> None:
    public = texts(stack.say(sender, f"hồ sơ {code} đến đâu rồi"))
    assert public_status in public
    assert detail_heading not in public  # nothing personal before identity is proven
    id_number, phone = CITIZENS[owner]
    details = texts(verify(stack, sender, id_number, phone))
    assert detail_heading in details and "tiếp theo" in details
