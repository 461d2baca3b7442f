"""Accounts and the whole audit log (admin only). `python -m console users add` does the same
from a shell, which is how the first admin is made outside sandbox mode."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, Field
from sqlalchemy import select

from console import audit
from console.api import Admin, ConsoleDep
from console.auth import AccountError, add_user
from console.db import transaction
from console.models import User

router = APIRouter(prefix="/api", tags=["admin"])


class NewUser(BaseModel):
    email: str = Field(..., max_length=320)
    password: str = Field(..., max_length=1024)
    role: Literal["editor", "reviewer", "agent", "admin"]


@router.get("/users")
def users(staff: Admin, console: ConsoleDep) -> dict[str, Any]:
    with transaction(console.engine) as session:
        rows = session.execute(select(User).order_by(User.email)).scalars()
        return {
            "users": [
                {"email": u.email, "role": u.role, "disabled": u.disabled_at is not None}
                for u in rows
            ]
        }


@router.post("/users", status_code=201)
def create_user(
    body: NewUser,
    staff: Admin,
    console: ConsoleDep,
) -> dict[str, Any]:
    try:
        with transaction(console.engine) as session:
            user = add_user(session, body.email, body.password, body.role, actor=staff.email)
            return {"email": user.email, "role": user.role}
    except AccountError as exc:
        raise HTTPException(422, str(exc)) from None


@router.get("/audit")
def audit_log(
    staff: Admin,
    console: ConsoleDep,
    target: Annotated[str | None, Query(max_length=220)] = None,
    actor: Annotated[str | None, Query(max_length=320)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> dict[str, Any]:
    with transaction(console.engine) as session:
        return {"entries": audit.entries(session, target=target, actor=actor, limit=limit)}
