"""Portal sandbox: the 34 provincial-level units, old province names resolved to them."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any, Dict, List, Tuple

import pytest
import yaml
from fastapi.testclient import TestClient

from sandbox.identity.id_numbers import PROVINCE_CODES
from sandbox.portal import create_portal_app
from sandbox.portal.catalogue import fold, load_catalogue, province_key
from sandbox.portal.provinces import DEFAULT_PROVINCES_FILE, ProvincesError, load_provinces
from sandbox.settings import DEFAULT_CATALOGUE_DIR, Settings
from tests.sandbox.helpers import FIXTURE_CATALOGUE, FakeClock

# Nghị quyết 202/2025/QH15, written here independently of data/provinces.yml:
# current unit -> the provinces (before 1 July 2025) now part of it.
MERGER: Dict[str, List[str]] = {
    "Hà Nội": ["Hà Nội"],
    "Huế": ["Huế"],
    "Hải Phòng": ["Hải Phòng", "Hải Dương"],
    "Đà Nẵng": ["Đà Nẵng", "Quảng Nam"],
    "TP. Hồ Chí Minh": ["TP. Hồ Chí Minh", "Bình Dương", "Bà Rịa - Vũng Tàu"],
    "Cần Thơ": ["Cần Thơ", "Sóc Trăng", "Hậu Giang"],
    "Tuyên Quang": ["Tuyên Quang", "Hà Giang"],
    "Cao Bằng": ["Cao Bằng"],
    "Lai Châu": ["Lai Châu"],
    "Lào Cai": ["Lào Cai", "Yên Bái"],
    "Thái Nguyên": ["Thái Nguyên", "Bắc Kạn"],
    "Điện Biên": ["Điện Biên"],
    "Lạng Sơn": ["Lạng Sơn"],
    "Sơn La": ["Sơn La"],
    "Phú Thọ": ["Phú Thọ", "Vĩnh Phúc", "Hòa Bình"],
    "Bắc Ninh": ["Bắc Ninh", "Bắc Giang"],
    "Quảng Ninh": ["Quảng Ninh"],
    "Hưng Yên": ["Hưng Yên", "Thái Bình"],
    "Ninh Bình": ["Ninh Bình", "Hà Nam", "Nam Định"],
    "Thanh Hóa": ["Thanh Hóa"],
    "Nghệ An": ["Nghệ An"],
    "Hà Tĩnh": ["Hà Tĩnh"],
    "Quảng Trị": ["Quảng Trị", "Quảng Bình"],
    "Quảng Ngãi": ["Quảng Ngãi", "Kon Tum"],
    "Gia Lai": ["Gia Lai", "Bình Định"],
    "Khánh Hòa": ["Khánh Hòa", "Ninh Thuận"],
    "Lâm Đồng": ["Lâm Đồng", "Đắk Nông", "Bình Thuận"],
    "Đắk Lắk": ["Đắk Lắk", "Phú Yên"],
    "Đồng Nai": ["Đồng Nai", "Bình Phước"],
    "Tây Ninh": ["Tây Ninh", "Long An"],
    "Vĩnh Long": ["Vĩnh Long", "Bến Tre", "Trà Vinh"],
    "Đồng Tháp": ["Đồng Tháp", "Tiền Giang"],
    "Cà Mau": ["Cà Mau", "Bạc Liêu"],
    "An Giang": ["An Giang", "Kiên Giang"],
}
OLD_TO_NEW: List[Tuple[str, str]] = [(old, new) for new, olds in MERGER.items() for old in olds]


def resolve(client: TestClient, name: str, lang: str | None = None) -> Dict[str, Any]:
    params = {"name": name} if lang is None else {"name": name, "lang": lang}
    response = client.get("/v1/provinces/resolve", params=params)
    assert response.status_code == 200, response.text
    body: Dict[str, Any] = response.json()
    return body


def test_the_table_above_is_the_merger() -> None:
    assert len(MERGER) == 34
    assert len(OLD_TO_NEW) == 63
    assert len({old for old, _ in OLD_TO_NEW}) == 63
    assert all(new in olds for new, olds in MERGER.items())
    # The identity API's 63 pre-2025 province codes name the same provinces (Thừa Thiên Huế
    # became the city of Huế on 1 January 2025, before the merger).
    renamed = {"Thừa Thiên Huế": "Huế"}
    assert {renamed.get(n, n) for n in PROVINCE_CODES.values()} == {o for o, _ in OLD_TO_NEW}


# --- resolve ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("old", "new"), OLD_TO_NEW)
def test_every_old_province_resolves_to_its_unit(portal: TestClient, old: str, new: str) -> None:
    merged = old != new
    assert resolve(portal, old) == {
        "input": old,
        "name": new,
        "name_vi": new,
        "former_name": old if merged else None,
        "merged": merged,
    }


@pytest.mark.parametrize(("old", "new"), OLD_TO_NEW)
def test_every_old_province_resolves_without_diacritics(
    portal: TestClient, old: str, new: str
) -> None:
    for typed in (fold(old), f"  {old.upper()}  ", fold(old).replace(" ", "  ").title()):
        body = resolve(portal, typed)
        assert (body["input"], body["name_vi"], body["merged"]) == (typed, new, old != new)


@pytest.mark.parametrize("code", sorted(PROVINCE_CODES))
def test_identity_province_names_resolve(portal: TestClient, code: str) -> None:
    assert resolve(portal, PROVINCE_CODES[code])["name_vi"] in MERGER


@pytest.mark.parametrize(
    ("typed", "unit", "former"),
    [
        ("hcm", "TP. Hồ Chí Minh", None),
        ("HCM", "TP. Hồ Chí Minh", None),
        ("tphcm", "TP. Hồ Chí Minh", None),
        ("tp hcm", "TP. Hồ Chí Minh", None),
        ("TP.HCM", "TP. Hồ Chí Minh", None),
        ("hcmc", "TP. Hồ Chí Minh", None),
        ("sg", "TP. Hồ Chí Minh", None),
        ("sài gòn", "TP. Hồ Chí Minh", None),
        ("Sai Gon", "TP. Hồ Chí Minh", None),
        ("saigon", "TP. Hồ Chí Minh", None),
        ("Hồ Chí Minh", "TP. Hồ Chí Minh", None),
        ("Thành phố Hồ Chí Minh", "TP. Hồ Chí Minh", None),
        ("hn", "Hà Nội", None),
        ("hanoi", "Hà Nội", None),
        ("brvt", "TP. Hồ Chí Minh", "Bà Rịa - Vũng Tàu"),
        ("Bà Rịa–Vũng Tàu", "TP. Hồ Chí Minh", "Bà Rịa - Vũng Tàu"),
        ("ba ria vung tau", "TP. Hồ Chí Minh", "Bà Rịa - Vũng Tàu"),
        ("vũng tàu", "TP. Hồ Chí Minh", "Bà Rịa - Vũng Tàu"),
        ("vung tau", "TP. Hồ Chí Minh", "Bà Rịa - Vũng Tàu"),
        ("đắk lắk", "Đắk Lắk", None),
        ("Đăk Lăk", "Đắk Lắk", None),
        ("daklak", "Đắk Lắk", None),
        ("dak lak", "Đắk Lắk", None),
        ("huế", "Huế", None),
        ("thừa thiên huế", "Huế", None),
        ("Thua Thien Hue", "Huế", None),
        ("tth", "Huế", None),
        ("Hoà Bình", "Phú Thọ", "Hòa Bình"),  # old-style tone mark
        ("Khánh Hoà", "Khánh Hòa", None),
        ("Bắc Cạn", "Thái Nguyên", "Bắc Kạn"),
        ("kontum", "Quảng Ngãi", "Kon Tum"),
    ],
)
def test_aliases(portal: TestClient, typed: str, unit: str, former: str | None) -> None:
    body = resolve(portal, typed)
    assert body == {
        "input": typed,
        "name": unit,
        "name_vi": unit,
        "former_name": former,
        "merged": former is not None,
    }


@pytest.mark.parametrize(
    ("typed", "unit", "merged"),
    [
        ("tỉnh Bình Dương", "TP. Hồ Chí Minh", True),
        ("Tinh   nam   dinh", "Ninh Bình", True),
        ("  TỈNH QUẢNG NAM ", "Đà Nẵng", True),
        ("thành phố Hải Phòng", "Hải Phòng", False),
        ("Thanh pho Hai Phong", "Hải Phòng", False),
        ("TP. Cần Thơ", "Cần Thơ", False),
        ("tp Huế", "Huế", False),
        ("tp.   hồ  chí minh", "TP. Hồ Chí Minh", False),
        ("Tỉnh Cao Bằng", "Cao Bằng", False),
    ],
)
def test_leading_tinh_thanh_pho_tp_and_spaces_are_ignored(
    portal: TestClient, typed: str, unit: str, merged: bool
) -> None:
    body = resolve(portal, typed)
    assert (body["input"], body["name_vi"], body["merged"]) == (typed, unit, merged)


def test_unchanged_and_namesake_units_are_not_merged(portal: TestClient) -> None:
    for name in ("Hà Nội", "Cao Bằng", "Hải Phòng", "TP. Hồ Chí Minh", "Ninh Bình"):
        body = resolve(portal, name)
        assert body["merged"] is False and body["former_name"] is None, name


@pytest.mark.parametrize(
    ("typed", "name", "former"),
    [
        ("Bình Dương", "Ho Chi Minh City", "Binh Duong"),
        ("binh duong", "Ho Chi Minh City", "Binh Duong"),
        ("Bà Rịa - Vũng Tàu", "Ho Chi Minh City", "Ba Ria - Vung Tau"),
        ("Nam Định", "Ninh Binh", "Nam Dinh"),
        ("Quang Nam", "Da Nang", "Quang Nam"),
        ("Hải Dương", "Hai Phong", "Hai Duong"),
        ("Ho Chi Minh City", "Ho Chi Minh City", None),
        ("Hanoi", "Hanoi", None),
        ("Hue", "Hue", None),
        ("Da Nang", "Da Nang", None),
        ("Can Tho", "Can Tho", None),
        ("Hai Phong", "Hai Phong", None),
        ("Cao Bằng", "Cao Bang", None),
    ],
)
def test_english(portal: TestClient, typed: str, name: str, former: str | None) -> None:
    body = resolve(portal, typed, lang="en")
    assert body["name"] == name
    assert body["name_vi"] in MERGER
    assert body["former_name"] == former
    assert body["merged"] is (former is not None)


def test_english_names_of_every_unit_resolve_back(portal: TestClient) -> None:
    items = portal.get("/v1/provinces", params={"lang": "en"}).json()["items"]
    for item in items:
        assert resolve(portal, item["name"], lang="en")["name"] == item["name"]
        for former in item["former"]:
            assert resolve(portal, former, lang="en")["name"] == item["name"]


@pytest.mark.parametrize("typed", ["Atlantis", "Quảng", "Sài Gòn Hà Nội", "tỉnh", "!!!", "063"])
def test_unknown_province(portal: TestClient, typed: str) -> None:
    response = portal.get("/v1/provinces/resolve", params={"name": typed})
    assert response.status_code == 404
    body = response.json()
    assert body["error"] == "province_not_found"
    assert set(body) == {"error", "message"}


@pytest.mark.parametrize("params", [{"name": ""}, {"name": "   "}, {}])
def test_empty_name(portal: TestClient, params: Dict[str, str]) -> None:
    response = portal.get("/v1/provinces/resolve", params=params)
    assert response.status_code == 422
    assert response.json()["error"] == "invalid_request"


def test_unknown_language(portal: TestClient) -> None:
    for path in ("/v1/provinces", "/v1/provinces/resolve"):
        response = portal.get(path, params={"name": "Huế", "lang": "fr"})
        assert response.status_code == 422
        assert response.json()["error"] == "invalid_request"


# --- list ------------------------------------------------------------------------------------


def test_list_has_the_34_units_with_their_former_provinces(portal: TestClient) -> None:
    response = portal.get("/v1/provinces")
    assert response.status_code == 200
    items = response.json()["items"]
    assert len(items) == 34
    assert all(set(item) == {"name", "former"} for item in items)
    assert {item["name"]: sorted(item["former"]) for item in items} == {
        new: sorted(olds) for new, olds in MERGER.items()
    }
    assert sum(len(item["former"]) for item in items) == 63


def test_list_in_english(portal: TestClient) -> None:
    items = portal.get("/v1/provinces", params={"lang": "en"}).json()["items"]
    assert len(items) == 34
    by_name = {item["name"]: item["former"] for item in items}
    assert by_name["Ho Chi Minh City"] == ["Ho Chi Minh City", "Binh Duong", "Ba Ria - Vung Tau"]
    assert by_name["Hanoi"] == ["Hanoi"]
    assert by_name["Ninh Binh"] == ["Ninh Binh", "Ha Nam", "Nam Dinh"]
    for item in items:  # English names have no Vietnamese letters
        for name in (item["name"], *item["former"]):
            assert name.isascii(), name


# --- procedure detail with an old province name ----------------------------------------------


@pytest.fixture
def portal_with_notes(tmp_path: Path, settings: Settings, clock: FakeClock) -> TestClient:
    """The fixture catalogue, with passport notes for two merged units and an old province."""
    folder = tmp_path / "procedures"
    shutil.copytree(FIXTURE_CATALOGUE, folder)
    path = folder / "passport.yml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["province_notes"].update(
        {
            "TP. Hồ Chí Minh": {"vi": "Ghi chú TP. Hồ Chí Minh.", "en": "HCMC note."},
            "Ninh Bình": {"vi": "Ghi chú Ninh Bình.", "en": "Ninh Binh note."},
            "Quảng Nam": {"vi": "Ghi chú Quảng Nam.", "en": "Quang Nam note."},
        }
    )
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return TestClient(create_portal_app(replace(settings, catalogue_dir=folder), clock=clock))


@pytest.mark.parametrize(
    ("province", "note"),
    [
        ("Bình Dương", "HCMC note."),
        ("binh duong", "HCMC note."),
        ("Tỉnh Bà Rịa - Vũng Tàu", "HCMC note."),
        ("brvt", "HCMC note."),
        ("tphcm", "HCMC note."),
        ("Sài Gòn", "HCMC note."),
        ("TP. Hồ Chí Minh", "HCMC note."),
        ("Nam Định", "Ninh Binh note."),
        ("ha nam", "Ninh Binh note."),
        ("Hà Nội", "Hà Nội note."),
        ("hn", "Hà Nội note."),
        ("Quảng Nam", "Quang Nam note."),  # a note for the name as given wins
        ("Đà Nẵng", None),  # ... but it is not the whole unit's note
        ("Hải Dương", None),
        ("Atlantis", None),
    ],
)
def test_procedure_detail_resolves_old_province_names(
    portal_with_notes: TestClient, province: str, note: str | None
) -> None:
    response = portal_with_notes.get(
        "/v1/procedures/passport", params={"province": province, "lang": "en"}
    )
    assert response.status_code == 200
    assert response.json()["province_note"] == note


def test_procedure_detail_shape_is_unchanged(portal_with_notes: TestClient) -> None:
    plain = portal_with_notes.get("/v1/procedures/passport").json()
    with_old_name = portal_with_notes.get(
        "/v1/procedures/passport", params={"province": "Bình Dương"}
    ).json()
    assert set(with_old_name) == set(plain)
    assert with_old_name["province_note"] == "Ghi chú TP. Hồ Chí Minh."
    assert {**with_old_name, "province_note": None} == plain


# --- the data file and its loader ------------------------------------------------------------


def test_real_provinces_file() -> None:
    provinces = load_provinces(DEFAULT_PROVINCES_FILE)
    assert len(provinces.units) == 34
    assert provinces.former_count == 63
    assert provinces.sample_data is True
    assert provinces.reviewed_on.isoformat() == "2026-11-29"
    assert "202/2025/QH15" in provinces.source


def test_catalogue_province_notes_are_keyed_by_current_units() -> None:
    """A note keyed by a merged-away name would only answer that exact name."""
    provinces = load_provinces(DEFAULT_PROVINCES_FILE)
    catalogue = load_catalogue(DEFAULT_CATALOGUE_DIR)
    for procedure in catalogue.values():
        notes = [procedure.province_notes or {}]
        notes += [v.province_notes or {} for v in procedure.variants]
        for key in (k for n in notes for k in n):
            found = provinces.resolve(key)
            assert found is not None and not found.merged, (procedure.id, key)
            assert province_key(found.unit.name.vi) == province_key(key), (procedure.id, key)


def _data() -> Dict[str, Any]:
    data = yaml.safe_load(DEFAULT_PROVINCES_FILE.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def _unit(data: Dict[str, Any], name: str) -> Dict[str, Any]:
    unit: Dict[str, Any] = next(u for u in data["units"] if u["name"]["vi"] == name)
    return unit


def _without_unit() -> Dict[str, Any]:
    data = _data()
    data["units"] = data["units"][:-1]
    return data


def _former_twice() -> Dict[str, Any]:
    data = _data()
    _unit(data, "Đà Nẵng")["former"].append({"vi": "Bình Dương", "en": "Binh Duong"})
    return data


def _former_missing() -> Dict[str, Any]:
    data = _data()
    _unit(data, "Ninh Bình")["former"].pop()
    return data


def _unit_not_listing_itself() -> Dict[str, Any]:
    data = _data()
    _unit(data, "Cao Bằng")["former"] = [{"vi": "Cao Bang Cu", "en": "Old Cao Bang"}]
    return data


def _alias_clash() -> Dict[str, Any]:
    data = _data()
    _unit(data, "Hà Nội")["aliases"].append("Sài Gòn")
    return data


def _with(**changes: Any) -> Dict[str, Any]:
    return {**_data(), **changes}


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (_without_unit(), "expected 34 units, got 33"),
        (_former_twice(), "'Bình Dương' is listed under both"),
        (_former_missing(), "expected 63 former provinces in all, got 62"),
        (_unit_not_listing_itself(), "'Cao Bằng' must list itself"),
        (_alias_clash(), "'Sài Gòn' points to both"),
        (_with(units=[]), "expected 34 units"),
        (_with(reviewed_on="last week"), "reviewed_on"),
        (_with(unexpected=1), "unexpected"),
        ({k: v for k, v in _data().items() if k != "source"}, "source"),
    ],
)
def test_bad_provinces_file_fails_loudly(
    tmp_path: Path, data: Dict[str, Any], fragment: str
) -> None:
    path = tmp_path / "provinces.yml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ProvincesError) as excinfo:
        load_provinces(path)
    assert "provinces.yml" in str(excinfo.value)
    assert fragment in str(excinfo.value)


def test_unreadable_or_missing_provinces_file_fails_loudly(tmp_path: Path) -> None:
    path = tmp_path / "provinces.yml"
    path.write_text("units: [unclosed", encoding="utf-8")
    with pytest.raises(ProvincesError, match="cannot read YAML"):
        load_provinces(path)
    with pytest.raises(ProvincesError, match="cannot read YAML"):
        load_provinces(tmp_path / "nowhere.yml")


def test_portal_does_not_start_with_a_bad_provinces_file(
    tmp_path: Path, settings: Settings, clock: FakeClock
) -> None:
    path = tmp_path / "provinces.yml"
    path.write_text(yaml.safe_dump(_without_unit(), allow_unicode=True), encoding="utf-8")
    with pytest.raises(ProvincesError, match="expected 34 units"):
        create_portal_app(settings, clock=clock, provinces_file=path)
