"""Request and response bodies of the identity API (they make its OpenAPI document)."""

from __future__ import annotations

from typing import List

from pydantic import BaseModel, Field, StrictStr

CLIENT_REF_PATTERN = r"^[A-Za-z0-9._:-]{1,128}$"


class StartVerificationRequest(BaseModel):
    id_number: str = Field(..., description="12-digit personal identification number.")
    client_ref: StrictStr | None = Field(
        None,
        regex=CLIENT_REF_PATTERN,
        description="Opaque reference of the caller's conversation (1-128 characters of "
        "`A-Za-z0-9._:-`, e.g. a keyed hash of the conversation id). Wrong codes and codes "
        "sent are limited per client_ref; requests without one share a single bucket.",
    )

    class Config:
        schema_extra = {
            "example": {"id_number": "001090001234", "client_ref": "c1.5f2b8e0a9d4c7e31"}
        }


class StartVerificationResponse(BaseModel):
    """The same shape whether or not the ID number belongs to a citizen."""

    verification_id: str = Field(..., description="Random, unguessable id of this verification.")
    masked_phone: str = Field(
        ..., description="Phone the code was sent to, only its last 3 digits: *******678."
    )
    expires_in: int = Field(..., description="Seconds the code stays valid.")


class ConfirmRequest(BaseModel):
    code: str = Field(..., description="The 6-digit code from the SMS.")

    class Config:
        schema_extra = {"example": {"code": "123456"}}


class CitizenSummary(BaseModel):
    full_name: str
    id_number_masked: str = Field(..., description="e.g. 001******234")


class TokenResponse(BaseModel):
    access_token: str = Field(..., description="HS256 JWT; sub is the ID number.")
    token_type: str = Field("Bearer")
    expires_in: int = Field(..., description="Seconds the token stays valid.")
    citizen: CitizenSummary


class IntrospectRequest(BaseModel):
    token: str


class IntrospectResponse(BaseModel):
    """RFC 7662 style; an inactive token answers only {"active": false}."""

    active: bool
    sub: str | None = Field(None, description="ID number of the citizen (active tokens only).")
    exp: int | None = Field(None, description="Expiry, Unix seconds (active tokens only).")


class SmsMessage(BaseModel):
    phone: str
    text: str
    code: str
    sent_at: str = Field(..., description="ISO 8601, UTC.")


class SmsList(BaseModel):
    messages: List[SmsMessage] = Field(..., description="Newest first.")


class Health(BaseModel):
    status: str = "ok"
