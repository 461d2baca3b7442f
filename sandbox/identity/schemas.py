"""Request and response bodies of the identity API (they make its OpenAPI document)."""

from __future__ import annotations

from typing import List

from pydantic import BaseModel, Field


class StartVerificationRequest(BaseModel):
    id_number: str = Field(..., description="12-digit personal identification number.")

    class Config:
        schema_extra = {"example": {"id_number": "001090001234"}}


class StartVerificationResponse(BaseModel):
    verification_id: str = Field(..., description="Random, unguessable id of this verification.")
    masked_phone: str = Field(..., description="Phone the code was sent to, e.g. 091****678.")
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
