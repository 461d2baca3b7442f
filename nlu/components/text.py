"""Vietnamese text helpers: accent folding, everyday abbreviations, a light language guess."""

from __future__ import annotations

import re
import unicodedata

from nlu.components.patterns import normalise_dossier_code

# Everyday abbreviations citizens type, folded (no diacritics) -> folded expansion.
ABBREVIATIONS: dict[str, str] = {
    "ko": "khong",
    "k": "khong",
    "kg": "khong",
    "khg": "khong",
    "hong": "khong",
    "hk": "khong",
    "hok": "khong",
    "dc": "duoc",
    "dk": "dang ky",
    "dky": "dang ky",
    "hs": "ho so",
    "cccd": "can cuoc cong dan",
    "cmnd": "chung minh nhan dan",
    "cc": "can cuoc",
    "hc": "ho chieu",
    "lltp": "ly lich tu phap",
    "bhyt": "bao hiem y te",
    "gplx": "giay phep lai xe",
    "sdt": "so dien thoai",
    "mk": "mat khau",
    "tk": "tai khoan",
    "ntn": "nhu the nao",
    "bn": "bao nhieu",
    "bnhieu": "bao nhieu",
    "j": "gi",
    "ji": "gi",
    "z": "vay",
    "dzay": "vay",
    "dzậy": "vay",
    "vs": "voi",
    "ns": "noi",
    "r": "roi",
    "ak": "a",
    "ah": "a",
    "nhe": "nhe",
    "tphcm": "thanh pho ho chi minh",
    "hcm": "ho chi minh",
    "sg": "sai gon",
    "hn": "ha noi",
    "ubnd": "uy ban nhan dan",
    "dvc": "dich vu cong",
    "vneid": "vneid",
    "ktra": "kiem tra",
    "kiemtra": "kiem tra",
    "kq": "ket qua",
    "tthc": "thu tuc hanh chinh",
    "pw": "password",
    "pwd": "password",
}

_VI_LETTERS = re.compile(
    "[àáảãạăằắẳẵặâầấẩẫậèéẻẽẹêềếểễệìíỉĩịòóỏõọôồốổỗộơờớởỡợùúủũụưừứửữựỳýỷỹỵđ]",
    re.IGNORECASE,
)

# Words that only occur in one of the two languages once diacritics are folded away.
VI_WORDS = frozenset(
    """toi minh em anh chi ban cua khong ko gi nao bao nhieu dau duoc dc roi thi sao lam
    xin chao cam on vang da nhe nha a oi giay phi le thu tuc dang ky cuoc chieu ho so
    muon hoi cho voi nay kia cai nhung duoc mat lai cap doi bi con vo chong nguoi
    tien thoi gian nop o dau online truc tuyen ma xac thuc hom nay ngay thang nam
    giup tro huong dan khai sinh tu hon nhan thuong tru tam tru kinh doanh bao hiem
    y te tinh thanh pho xa phuong huyen quan biet the nao ah ak nhi vay z dzay hong
    cccd cmnd lltp bhyt gplx sdt mk tk ntn bn hs hc ubnd dvc j""".split()
)
EN_WORDS = frozenset(
    """the what how my i is are do does need where when which who why you your please
    hello hi hey thanks thank yes no not want get apply renew lost passport card
    identity fee fees cost much long take time submit online document documents
    registration register birth marriage death certificate criminal record license
    licence driving insurance health residence permanent temporary business status
    dossier application check track code number phone verify verification help
    english speak human agent person bye goodbye morning evening of and or it this
    that can could would should will have has had with from about for""".split()
)
AMBIGUOUS = frozenset({"can", "to", "do", "the", "ma", "co", "on", "no", "a", "i"})

_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)


def letter_words(text: str) -> list[str]:
    """Runs of letters in ``text``: no digits, no punctuation."""
    return _WORD.findall(text)


def fold(text: str) -> str:
    """Lower-case ``text`` and strip Vietnamese diacritics ("Căn cước" -> "can cuoc")."""
    text = text.replace("đ", "d").replace("Đ", "D")
    decomposed = unicodedata.normalize("NFD", text)
    return "".join(c for c in decomposed if unicodedata.category(c) != "Mn").lower()


# Lemmas that stand for a whole class of values: the classifier learns "a code", "a 12-digit
# number", never one memorised code. Letters only, so featurizers keep each as one word.
CODE_LEMMA = "xxmahosoxx"
NUMBER_LEMMAS = {12: "xxsodinhdanhxx", 9: "xxcmndxx", 10: "xxsodienthoaixx", 6: "xxmasauchuxx"}
_EDGE_PUNCTUATION = "\"'()[]{}<>.,;:!?…“”‘’«»"


def class_lemma(token: str) -> str | None:
    """The placeholder lemma when ``token`` is a dossier code or a long number, else None."""
    core = token.strip(_EDGE_PUNCTUATION)
    if not core:
        return None
    if normalise_dossier_code(core):
        return CODE_LEMMA
    digits = core[3:] if core.startswith("+84") else core
    if digits.isdigit():
        length = 10 if core.startswith("+84") else len(digits)
        return NUMBER_LEMMAS.get(length)
    return None


def normalise_token(token: str) -> str:
    """Folded token with everyday abbreviations expanded ("ko" -> "khong", "cccd" -> ...);
    dossier codes and long numbers become their class placeholder (see ``class_lemma``)."""
    placeholder = class_lemma(token)
    if placeholder:
        return placeholder
    folded = fold(token)
    return ABBREVIATIONS.get(folded, folded)


def guess_language(text: str) -> str | None:
    """'vi', 'en', or None when the text does not say (codes, numbers, "ok", emoji)."""
    if _VI_LETTERS.search(text):
        return "vi"
    words = [w.lower() for w in _WORD.findall(text)]
    vi = sum(1 for w in words if w in VI_WORDS and w not in AMBIGUOUS and w not in EN_WORDS)
    en = sum(1 for w in words if w in EN_WORDS and w not in AMBIGUOUS and w not in VI_WORDS)
    if vi and not en:
        return "vi"
    if en and not vi and (en >= 2 or len(words) <= 2):
        return "en"
    if vi and en and abs(vi - en) >= 2:
        return "vi" if vi > en else "en"
    return None
