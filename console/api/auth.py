"""Sign-in and sign-out; `GET /api/me` tells a page who is signed in and what they may do."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field

from console import audit
from console.api import ConsoleDep, SignedInDep
from console.auth import PERMISSIONS, TooManyAttempts, sign_in, sign_out
from console.db import transaction

router = APIRouter(prefix="/api", tags=["sign-in"])


class Login(BaseModel):
    email: str = Field(..., max_length=320)
    password: str = Field(..., max_length=1024)


@router.post("/login")
def login(body: Login, console: ConsoleDep) -> dict[str, Any]:
    """`{"email", "password"}` -> `{"token"}`; send it as `Authorization: Bearer <token>`."""
    try:
        with transaction(console.engine) as session:
            result = sign_in(session, console.settings, body.email, body.password, time.time())
    except TooManyAttempts:
        with transaction(console.engine) as session:
            audit.record(session, body.email.strip().lower(), "login_refused")
        raise HTTPException(
            429, "too many wrong passwords for this account: try again in 15 minutes"
        ) from None
    if result is None:
        raise HTTPException(401, "wrong email or password")
    token, staff = result
    return {
        "token": token,
        "expires_in": int(console.settings.session_ttl_seconds),
        "email": staff.email,
        "role": staff.role,
    }


@router.post("/logout")
def logout(who: SignedInDep, console: ConsoleDep) -> dict:
    with transaction(console.engine) as session:
        sign_out(session, console.settings, who.token, who.staff)
    return {"signed_out": True}


@router.get("/me")
def me(who: SignedInDep) -> dict[str, Any]:
    return {
        "email": who.staff.email,
        "role": who.staff.role,
        "may": sorted(p for p in PERMISSIONS if who.staff.may(p)),
    }
