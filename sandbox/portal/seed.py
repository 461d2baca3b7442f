"""Sample dossiers (the "test cards" of the portal) and status labels, in Vietnamese and English.

Seeding inserts missing dossiers and never overwrites existing rows.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Dict, List

from sqlalchemy.engine import Engine

from sandbox.common import transaction
from sandbox.portal.models import Base, Dossier

STATUSES = (
    "received",
    "in_processing",
    "supplement_required",
    "result_ready",
    "refused",
    "completed",
)

STATUS_LABELS: Dict[str, Dict[str, str]] = {
    "received": {"vi": "Đã tiếp nhận", "en": "Received"},
    "in_processing": {"vi": "Đang xử lý", "en": "In processing"},
    "supplement_required": {"vi": "Yêu cầu bổ sung hồ sơ", "en": "Supplement required"},
    "result_ready": {"vi": "Có kết quả, chờ trả", "en": "Result ready for collection"},
    "refused": {"vi": "Từ chối giải quyết", "en": "Refused"},
    "completed": {"vi": "Đã trả kết quả", "en": "Completed"},
}

AN = ("001090001234", "Nguyễn Văn An")
BINH = ("079185005678", "Trần Thị Bình")
CUONG = ("031200001111", "Lê Minh Cường")


def _t(vi: str, en: str) -> Dict[str, str]:
    return {"vi": vi, "en": en}


def _dossier(
    code: str,
    owner: tuple[str, str],
    procedure_id: str,
    procedure_name: Dict[str, str],
    agency: Dict[str, str],
    status: str,
    submitted_on: date,
    updated_on: date,
    due_on: date | None,
    next_step: Dict[str, str],
    missing_documents: Dict[str, List[str]] | None = None,
    supplement_deadline: date | None = None,
    refusal_reason: Dict[str, str] | None = None,
    pickup: Dict[str, str] | None = None,
) -> Dict[str, Any]:
    assert status in STATUSES
    return {
        "code": code,
        "owner_id_number": owner[0],
        "owner_name": owner[1],
        "procedure_id": procedure_id,
        "procedure_name": procedure_name,
        "agency": agency,
        "status": status,
        "submitted_on": submitted_on,
        "updated_on": updated_on,
        "due_on": due_on,
        "missing_documents": missing_documents or {"vi": [], "en": []},
        "supplement_deadline": supplement_deadline,
        "refusal_reason": refusal_reason,
        "pickup": pickup,
        "next_step": next_step,
    }


HANOI_IMMIGRATION = _t(
    "Phòng Quản lý xuất nhập cảnh, Công an thành phố Hà Nội",
    "Immigration Office, Hà Nội City Police",
)

SEED_DOSSIERS: List[Dict[str, Any]] = [
    _dossier(
        "000.00.10.H26-261110-0001",
        AN,
        "passport",
        _t("Cấp hộ chiếu phổ thông", "Issuing an ordinary passport"),
        HANOI_IMMIGRATION,
        "supplement_required",
        submitted_on=date(2026, 11, 10),
        updated_on=date(2026, 11, 12),
        due_on=None,
        missing_documents={
            "vi": ["Ảnh chân dung 4x6 cm, nền trắng, chụp không quá 6 tháng"],
            "en": ["A 4x6 cm portrait photo, white background, taken within the last 6 months"],
        },
        supplement_deadline=date(2026, 12, 10),
        next_step=_t(
            "Tải ảnh chân dung lên hồ sơ trên Cổng Dịch vụ công, hoặc mang ảnh đến Phòng Quản lý "
            "xuất nhập cảnh, Công an thành phố Hà Nội, trước ngày 10/12/2026. Thời hạn giải quyết "
            "được tính lại từ khi hồ sơ đủ.",
            "Upload the photo to the dossier on the portal, or bring it to the Immigration Office "
            "of the Hà Nội City Police, before 10 December 2026. The processing time starts again "
            "once the dossier is complete.",
        ),
    ),
    _dossier(
        "000.00.10.H26-261020-0002",
        AN,
        "id_card",
        _t("Cấp đổi thẻ căn cước", "Exchanging an identity card"),
        _t("Công an phường Ba Đình, thành phố Hà Nội", "Ba Đình Ward Police, Hà Nội"),
        "result_ready",
        submitted_on=date(2026, 10, 20),
        updated_on=date(2026, 10, 27),
        due_on=date(2026, 10, 27),
        pickup=_t(
            "Nhận thẻ tại Công an phường Ba Đình, mang theo giấy hẹn trả kết quả; hoặc nhận qua "
            "bưu điện nếu đã đăng ký chuyển phát.",
            "Collect the card at the Ba Đình Ward Police, bringing the appointment slip; or it "
            "is delivered by post if you asked for delivery.",
        ),
        next_step=_t(
            "Mang giấy hẹn đến Công an phường Ba Đình để nhận thẻ căn cước, hoặc chờ bưu điện giao "
            "nếu đã đăng ký chuyển phát.",
            "Bring the appointment slip to the Ba Đình Ward Police to collect your identity card, "
            "or wait for the post if you asked for delivery.",
        ),
    ),
    _dossier(
        "000.00.20.H29-261115-0003",
        BINH,
        "birth_registration",
        _t("Đăng ký khai sinh", "Birth registration"),
        _t(
            "Ủy ban nhân dân phường Sài Gòn, Thành phố Hồ Chí Minh",
            "People's Committee of Sài Gòn Ward, Hồ Chí Minh City",
        ),
        "in_processing",
        submitted_on=date(2026, 11, 15),
        updated_on=date(2026, 11, 16),
        due_on=date(2026, 11, 20),
        next_step=_t(
            "Bạn chưa cần làm gì. Kết quả dự kiến vào ngày 20/11/2026; bạn sẽ nhận thông báo trên "
            "Cổng Dịch vụ công và ứng dụng VNeID.",
            "Nothing to do yet. The result is expected on 20 November 2026; you will be notified "
            "on the portal and in the VNeID app.",
        ),
    ),
    _dossier(
        "000.00.20.H29-261001-0004",
        BINH,
        "judicial_record",
        _t("Cấp Phiếu lý lịch tư pháp", "Issuing a judicial record certificate"),
        _t("Sở Tư pháp Thành phố Hồ Chí Minh", "Hồ Chí Minh City Department of Justice"),
        "refused",
        submitted_on=date(2026, 10, 1),
        updated_on=date(2026, 10, 6),
        due_on=date(2026, 10, 11),
        refusal_reason=_t(
            "Thông tin nơi cư trú trong tờ khai không khớp với Cơ sở dữ liệu quốc gia về dân cư.",
            "The residence information in the request does not match the national population "
            "database.",
        ),
        next_step=_t(
            "Kiểm tra thông tin cư trú của bạn trên ứng dụng VNeID. Nếu thông tin sai, đề nghị "
            "Công an cấp xã nơi bạn cư trú cập nhật; nếu đúng, khai lại tờ khai cho khớp. Sau đó "
            "nộp yêu cầu mới trên Cổng Dịch vụ công hoặc VNeID.",
            "Check your residence information in the VNeID app. If it is wrong, ask the commune "
            "police where you live to update it; if it is right, fill in the request to match it. "
            "Then file a new request on the portal or in VNeID.",
        ),
    ),
    _dossier(
        "000.00.10.H26-261118-0005",
        AN,
        "temporary_residence",
        _t("Đăng ký tạm trú", "Temporary residence registration"),
        _t("Công an phường Cầu Giấy, thành phố Hà Nội", "Cầu Giấy Ward Police, Hà Nội"),
        "received",
        submitted_on=date(2026, 11, 18),
        updated_on=date(2026, 11, 18),
        due_on=date(2026, 11, 21),
        next_step=_t(
            "Hồ sơ đã được tiếp nhận, bạn chưa cần làm gì. Theo dõi thông báo trên Cổng Dịch vụ "
            "công hoặc ứng dụng VNeID.",
            "The dossier has been received; nothing to do yet. Watch for notifications on the "
            "portal or in the VNeID app.",
        ),
    ),
    _dossier(
        "H31.05-260915-0006",
        CUONG,
        "marriage_registration",
        _t("Đăng ký kết hôn", "Marriage registration"),
        _t(
            "Ủy ban nhân dân phường Hồng Bàng, thành phố Hải Phòng",
            "People's Committee of Hồng Bàng Ward, Hải Phòng City",
        ),
        "completed",
        submitted_on=date(2026, 9, 15),
        updated_on=date(2026, 9, 16),
        due_on=date(2026, 9, 16),
        next_step=_t(
            "Hồ sơ đã hoàn tất và Giấy chứng nhận kết hôn đã được trao; không cần làm gì thêm.",
            "The dossier is complete and the marriage certificate has been handed over; nothing "
            "more to do.",
        ),
    ),
]


def seed_portal(engine: Engine) -> int:
    """Create the tables and the sample dossiers; returns how many rows were added."""
    Base.metadata.create_all(engine)
    added = 0
    with transaction(engine) as session:
        for row in SEED_DOSSIERS:
            if session.get(Dossier, row["code"]) is None:
                session.add(Dossier(**row))
                added += 1
    return added
