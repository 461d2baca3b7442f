"""Portal sandbox: procedure catalogue loading, accent-insensitive search, resolved details."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Dict

import pytest
import yaml
from fastapi.testclient import TestClient

from sandbox.portal import create_portal_app
from sandbox.portal.catalogue import CatalogueError, fold, load_catalogue, resolve, search
from sandbox.settings import DEFAULT_CATALOGUE_DIR, Settings
from tests.sandbox.helpers import FIXTURE_CATALOGUE, FakeClock

# The 13 procedure ids of docs/CONTRACT.md.
CONTRACT_PROCEDURES = {
    "id_card",
    "vneid_level2",
    "birth_registration",
    "permanent_residence",
    "temporary_residence",
    "marriage_registration",
    "death_registration",
    "judicial_record",
    "passport",
    "driving_licence",
    "household_business",
    "health_insurance",
    "marital_status_certificate",
}


def ids(client: TestClient, **params: str) -> list[str]:
    response = client.get("/v1/procedures", params=params)
    assert response.status_code == 200
    return [item["id"] for item in response.json()["items"]]


def test_list_all_without_query(portal: TestClient) -> None:
    body = portal.get("/v1/procedures").json()
    assert [item["id"] for item in body["items"]] == ["birth_registration", "passport"]
    assert set(body["items"][0]) == {"id", "name", "summary"}
    assert body["items"][1]["name"] == "Cấp hộ chiếu phổ thông"


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("ho chieu", "passport"),
        ("hộ chiếu", "passport"),
        ("HỘ CHIẾU", "passport"),
        ("Ho Chieu!", "passport"),
        ("passport", "passport"),
        ("tôi muốn làm hộ chiếu", "passport"),
        ("khai sinh", "birth_registration"),
        ("giay khai sinh", "birth_registration"),
        ("birth certificate", "birth_registration"),
        ("dang ky khai sinh", "birth_registration"),
    ],
)
def test_search_is_accent_insensitive_best_first(portal: TestClient, q: str, expected: str) -> None:
    assert ids(portal, q=q)[0] == expected


def test_search_without_match(portal: TestClient) -> None:
    assert ids(portal, q="xyzzy") == []


def test_search_in_english(portal: TestClient) -> None:
    body = portal.get("/v1/procedures", params={"q": "passport", "lang": "en"}).json()
    assert body["items"][0] == {
        "id": "passport",
        "name": "Issuing an ordinary passport",
        "summary": "Ordinary passport for citizens.",
    }


def test_fold() -> None:
    assert fold("  Đăng ký KHAI-SINH! ") == "dang ky khai sinh"
    assert fold("Hộ chiếu") == "ho chieu"


def test_detail_uses_default_variant(portal: TestClient) -> None:
    response = portal.get("/v1/procedures/passport")
    assert response.status_code == 200
    body = response.json()
    assert body["variant"] == {"id": "first_issuance", "name": "Cấp lần đầu"}
    assert body["variants"] == [
        {"id": "first_issuance", "name": "Cấp lần đầu"},
        {"id": "reissue_lost", "name": "Cấp lại do bị mất"},
    ]
    assert body["documents"] == ["Tờ khai", "Ảnh 4x6 cm"]
    assert body["fee"] == "200.000 đồng"
    assert body["online"] == {
        "available": True,
        "channels": ["portal", "vneid"],
        "url": "https://dichvucong.bocongan.gov.vn/",
        "note": "Nộp trực tuyến được.",
    }
    assert body["source"].startswith("https://")
    assert body["reviewed_on"] == "2026-11-20"
    assert body["sample_data"] is True
    assert body["province_note"] is None


def test_detail_with_variant_in_english(portal: TestClient) -> None:
    body = portal.get(
        "/v1/procedures/passport", params={"variant": "reissue_lost", "lang": "en"}
    ).json()
    assert body["name"] == "Issuing an ordinary passport"
    assert body["variant"] == {"id": "reissue_lost", "name": "Re-issue after loss"}
    assert body["documents"] == ["Form", "Loss report"]
    assert body["fee"] == "VND 400,000"
    assert body["processing_time"] == "8 working days"
    assert body["where_to_submit"] == "Provincial police"  # not overridden: from the base
    assert body["common_return_reasons"] == ["Photo does not meet the rules"]


@pytest.mark.parametrize("province", ["Hà Nội", "ha noi", "Thành phố Hà Nội", "TP. Hà Nội"])
def test_province_note(portal: TestClient, province: str) -> None:
    body = portal.get("/v1/procedures/passport", params={"province": province, "lang": "en"}).json()
    assert body["province_note"] == "Hà Nội note."


def test_province_without_note(portal: TestClient) -> None:
    body = portal.get("/v1/procedures/passport", params={"province": "Huế"}).json()
    assert body["province_note"] is None


def test_procedure_without_variants(portal: TestClient) -> None:
    body = portal.get("/v1/procedures/birth_registration", params={"lang": "en"}).json()
    assert body["variant"] is None
    assert body["variants"] == []
    assert body["online"]["url"] is None
    assert body["online"]["note"] is None
    assert body["reviewed_on"] == "2026-11-21"  # an unquoted YAML date is accepted too


def test_unknown_procedure(portal: TestClient) -> None:
    response = portal.get("/v1/procedures/spaceship_licence")
    assert response.status_code == 404
    assert response.json()["error"] == "procedure_not_found"


@pytest.mark.parametrize(
    ("procedure", "variant"), [("passport", "renewal"), ("birth_registration", "late")]
)
def test_unknown_variant(portal: TestClient, procedure: str, variant: str) -> None:
    response = portal.get(f"/v1/procedures/{procedure}", params={"variant": variant})
    assert response.status_code == 404
    assert response.json()["error"] == "variant_not_found"


def test_unknown_language(portal: TestClient) -> None:
    response = portal.get("/v1/procedures", params={"lang": "fr"})
    assert response.status_code == 422
    assert response.json()["error"] == "invalid_request"


# --- loading fails loudly --------------------------------------------------------------------


def _passport() -> Dict[str, Any]:
    data = yaml.safe_load((FIXTURE_CATALOGUE / "passport.yml").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def _write(folder: Path, data: Dict[str, Any], name: str = "passport.yml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return folder


def _drop(field: str) -> Dict[str, Any]:
    data = _passport()
    del data[field]
    return data


def _with(**changes: Any) -> Dict[str, Any]:
    return {**_passport(), **changes}


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (_drop("source"), "source"),
        (_drop("name"), "name"),
        (_with(name={"vi": "Chỉ tiếng Việt"}), "en"),
        (_with(unexpected_field=1), "unexpected_field"),
        (_with(id="passports"), "does not match the file name"),
        (_with(default_variant="renewal"), "default_variant"),
        (_with(documents=None), "documents"),  # a variant lacks documents too
        (_with(online={"available": "maybe"}), "available"),
        (_with(reviewed_on="last week"), "reviewed_on"),
        (_with(fee={"vi": "", "en": "VND 0"}), "fee"),
    ],
)
def test_bad_file_fails_loudly(tmp_path: Path, data: Dict[str, Any], fragment: str) -> None:
    folder = _write(tmp_path / "procedures", data)
    with pytest.raises(CatalogueError) as excinfo:
        load_catalogue(folder)
    assert "passport.yml" in str(excinfo.value)
    assert fragment in str(excinfo.value)


def test_field_given_by_every_variant_may_be_absent_at_procedure_level(tmp_path: Path) -> None:
    data = _passport()
    del data["fee"]  # both variants give a fee
    catalogue = load_catalogue(_write(tmp_path / "procedures", data))
    assert catalogue["passport"].fee is None


def test_unreadable_yaml_fails_loudly(tmp_path: Path) -> None:
    folder = tmp_path / "procedures"
    folder.mkdir()
    (folder / "passport.yml").write_text("id: [unclosed", encoding="utf-8")
    with pytest.raises(CatalogueError, match="cannot read YAML"):
        load_catalogue(folder)


def test_missing_folder_fails_loudly(tmp_path: Path) -> None:
    with pytest.raises(CatalogueError, match="not found"):
        load_catalogue(tmp_path / "nowhere")


def test_portal_does_not_start_with_a_bad_catalogue(
    tmp_path: Path, settings: Settings, clock: FakeClock
) -> None:
    folder = tmp_path / "procedures"
    shutil.copytree(FIXTURE_CATALOGUE, folder)
    (folder / "broken.yml").write_text("id: broken\n", encoding="utf-8")
    with pytest.raises(CatalogueError, match="broken.yml"):
        create_portal_app(Settings(**{**settings.__dict__, "catalogue_dir": folder}), clock=clock)


def test_real_catalogue_validates() -> None:
    """Every file in sandbox/portal/data/procedures matches the schema (content is written
    by the content engineer; this test guards the contract between us)."""
    files = sorted(DEFAULT_CATALOGUE_DIR.glob("*.y*ml")) if DEFAULT_CATALOGUE_DIR.is_dir() else []
    if not files:
        pytest.skip(f"no procedure files in {DEFAULT_CATALOGUE_DIR} yet")
    catalogue = load_catalogue(DEFAULT_CATALOGUE_DIR)
    assert len(catalogue) == len(files) <= 13
    assert set(catalogue) <= CONTRACT_PROCEDURES
    for procedure in catalogue.values():
        assert procedure.sample_data is True, procedure.id
        for lang in ("vi", "en"):
            for variant in [None, *(v.id for v in procedure.variants)]:
                detail = resolve(procedure, lang, variant, None)
                assert detail["documents"] and detail["fee"], (procedure.id, lang, variant)
            # Each procedure is the best match for its own name.
            assert search(catalogue, procedure.name.get(lang))[0].id == procedure.id
