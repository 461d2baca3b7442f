"""Response bodies of the portal API (they make its OpenAPI document)."""

from __future__ import annotations

from datetime import date
from typing import List

from pydantic import BaseModel, Field


class Health(BaseModel):
    status: str = "ok"


class ProcedureItem(BaseModel):
    id: str
    name: str
    summary: str


class ProcedureList(BaseModel):
    items: List[ProcedureItem] = Field(..., description="Best match first.")


class VariantRef(BaseModel):
    id: str
    name: str


class OnlineInfo(BaseModel):
    available: bool
    channels: List[str] = Field(..., description='e.g. ["portal", "vneid"]')
    url: str | None
    note: str | None


class ProcedureDetail(BaseModel):
    """A procedure with the chosen (or default) variant's fields applied."""

    id: str
    name: str
    summary: str
    variant: VariantRef | None = Field(..., description="Variant applied, null if none.")
    variants: List[VariantRef]
    documents: List[str]
    fee: str
    processing_time: str
    where_to_submit: str
    online: OnlineInfo
    who_can_file: str
    common_return_reasons: List[str]
    province_note: str | None = Field(..., description="Note for ?province=, else null.")
    source: str = Field(..., description="Where the content comes from.")
    reviewed_on: str = Field(..., description="ISO date the content was last checked.")
    sample_data: bool = Field(..., description="True: illustrative sandbox content.")


class ProvinceItem(BaseModel):
    name: str = Field(..., description="Official name in the requested language.")
    former: List[str] = Field(
        ...,
        description="The provinces (before 1 July 2025) now part of this unit, itself included.",
    )


class ProvinceList(BaseModel):
    items: List[ProvinceItem] = Field(
        ..., description="The 34 provincial-level units in force since 1 July 2025."
    )


class ProvinceResolution(BaseModel):
    """The current unit a province name (old or new, as typed) refers to."""

    input: str = Field(..., description="The name as given.")
    name: str = Field(..., description="Official name of the current unit, requested language.")
    name_vi: str = Field(
        ..., description="Official Vietnamese name (the key of a procedure's province notes)."
    )
    former_name: str | None = Field(
        ...,
        description="The merged-away province the input named (requested language), else null.",
    )
    merged: bool = Field(
        ...,
        description="True when the input named a former province now part of a unit with "
        'another name ("Bình Dương" -> TP. Hồ Chí Minh); false for the unit\'s own name.',
    )


class ProcedureRef(BaseModel):
    id: str
    name: str


class PublicDossierStatus(BaseModel):
    """What anyone with the code sees (no token, or a token of another citizen)."""

    code: str = Field(..., description="Normalised dossier code.")
    status: str = Field(
        ...,
        description="received, in_processing, supplement_required, result_ready, refused, "
        "completed",
    )
    status_label: str
    updated_on: date
    detail_level: str = Field(..., description='"public" or "owner"')
    owner_match: bool | None = Field(
        ..., description="null: no token; false: token of another citizen; true: the owner's."
    )


class OwnerDossierStatus(PublicDossierStatus):
    """What the owner sees with their own access token."""

    owner_name: str
    procedure: ProcedureRef
    agency: str
    submitted_on: date
    due_on: date | None = Field(..., description="null while the clock is paused.")
    missing_documents: List[str]
    supplement_deadline: date | None = Field(...)
    refusal_reason: str | None = Field(...)
    pickup: str | None = Field(...)
    next_step: str = Field(..., description="What the citizen should do now, in plain words.")
