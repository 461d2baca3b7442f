"""Structure of the 12-digit personal identification number (số định danh cá nhân).

Digits 1-3: province of birth registration (the 63 pre-2025 province codes below); digit 4:
sex and century (0/1 male/female born 1900-1999, 2/3 male/female born 2000-2099); digits 5-6:
birth year; digits 7-12: random.
"""

from __future__ import annotations

from typing import Dict

PROVINCE_CODES: Dict[str, str] = {
    "001": "Hà Nội",
    "002": "Hà Giang",
    "004": "Cao Bằng",
    "006": "Bắc Kạn",
    "008": "Tuyên Quang",
    "010": "Lào Cai",
    "011": "Điện Biên",
    "012": "Lai Châu",
    "014": "Sơn La",
    "015": "Yên Bái",
    "017": "Hòa Bình",
    "019": "Thái Nguyên",
    "020": "Lạng Sơn",
    "022": "Quảng Ninh",
    "024": "Bắc Giang",
    "025": "Phú Thọ",
    "026": "Vĩnh Phúc",
    "027": "Bắc Ninh",
    "030": "Hải Dương",
    "031": "Hải Phòng",
    "033": "Hưng Yên",
    "034": "Thái Bình",
    "035": "Hà Nam",
    "036": "Nam Định",
    "037": "Ninh Bình",
    "038": "Thanh Hóa",
    "040": "Nghệ An",
    "042": "Hà Tĩnh",
    "044": "Quảng Bình",
    "045": "Quảng Trị",
    "046": "Thừa Thiên Huế",
    "048": "Đà Nẵng",
    "049": "Quảng Nam",
    "051": "Quảng Ngãi",
    "052": "Bình Định",
    "054": "Phú Yên",
    "056": "Khánh Hòa",
    "058": "Ninh Thuận",
    "060": "Bình Thuận",
    "062": "Kon Tum",
    "064": "Gia Lai",
    "066": "Đắk Lắk",
    "067": "Đắk Nông",
    "068": "Lâm Đồng",
    "070": "Bình Phước",
    "072": "Tây Ninh",
    "074": "Bình Dương",
    "075": "Đồng Nai",
    "077": "Bà Rịa - Vũng Tàu",
    "079": "TP. Hồ Chí Minh",
    "080": "Long An",
    "082": "Tiền Giang",
    "083": "Bến Tre",
    "084": "Trà Vinh",
    "086": "Vĩnh Long",
    "087": "Đồng Tháp",
    "089": "An Giang",
    "091": "Kiên Giang",
    "092": "Cần Thơ",
    "093": "Hậu Giang",
    "094": "Sóc Trăng",
    "095": "Bạc Liêu",
    "096": "Cà Mau",
}

# Why a number is invalid, as the `reason` of an `invalid_id_number` error.
REASON_FORMAT = "not_12_digits"
REASON_PROVINCE = "unknown_province_code"
REASON_CENTURY = "invalid_sex_century_digit"


def id_number_problem(value: str) -> str | None:
    """None when the number is structurally valid, else one of the REASON_* codes."""
    if len(value) != 12 or not value.isascii() or not value.isdigit():
        return REASON_FORMAT
    if value[:3] not in PROVINCE_CODES:
        return REASON_PROVINCE
    if value[3] not in "0123":
        return REASON_CENTURY
    return None
