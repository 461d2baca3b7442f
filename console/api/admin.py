"""Accounts (admin only: list, add, disable, enable, change a role), every signed-in user's own
password (`POST /api/me/password`), and the whole audit log (admin only).
`python -m console users add|disable|enable` does the same from a shell, which is how the first
admin is made outside sandbox mode."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from console import audit
from console.api import Admin, Console, ConsoleDep, SignedInDep
from console.auth import (
    AccountError,
    NoSuchAccount,
    TooManyAttempts,
    WrongPassword,
    add_user,
    change_password,
    list_users,
    set_disabled,
    set_role,
)
from console.db import transaction
from console.models import User

router = APIRouter(prefix="/api", tags=["admin"])

Role = Literal["editor", "reviewer", "agent", "admin"]


class NewUser(BaseModel):
    email: str = Field(..., max_length=320)
    password: str = Field(..., max_length=1024)
    role: Role


class NewRole(BaseModel):
    role: Role


class NewPassword(BaseModel):
    current_password: str = Field(..., max_length=1024)
    new_password: str = Field(..., max_length=1024)


def _refused(exc: AccountError) -> HTTPException:
    return HTTPException(404 if isinstance(exc, NoSuchAccount) else 422, str(exc))


@router.get("/users")
def users(staff: Admin, console: ConsoleDep) -> dict[str, Any]:
    with transaction(console.engine) as session:
        return {"users": list_users(session)}


@router.post("/users", status_code=201)
def create_user(body: NewUser, staff: Admin, console: ConsoleDep) -> dict[str, Any]:
    try:
        with transaction(console.engine) as session:
            user = add_user(session, body.email, body.password, body.role, actor=staff.email)
            return {"email": user.email, "role": user.role}
    except AccountError as exc:
        raise _refused(exc) from None


def _account(console: Console, change: Callable[[Session], User]) -> dict[str, Any]:
    try:
        with transaction(console.engine) as session:
            user = change(session)
            return {
                "email": user.email,
                "role": user.role,
                "disabled": user.disabled_at is not None,
            }
    except AccountError as exc:
        raise _refused(exc) from None


@router.post("/users/{email}/disable")
def disable_user(email: str, staff: Admin, console: ConsoleDep) -> dict[str, Any]:
    """The account cannot sign in, and its open sessions stop working at once (401)."""
    return _account(console, lambda session: set_disabled(session, email, True, staff.email))


@router.post("/users/{email}/enable")
def enable_user(email: str, staff: Admin, console: ConsoleDep) -> dict[str, Any]:
    return _account(console, lambda session: set_disabled(session, email, False, staff.email))


@router.put("/users/{email}/role")
def change_role(email: str, body: NewRole, staff: Admin, console: ConsoleDep) -> dict[str, Any]:
    return _account(console, lambda session: set_role(session, email, body.role, staff.email))


@router.post("/me/password")
def my_password(body: NewPassword, who: SignedInDep, console: ConsoleDep) -> dict[str, Any]:
    """Any role: the current password and a new one (12 characters or more); every other
    session of this account ends, this one stays."""
    try:
        with transaction(console.engine) as session:
            ended = change_password(
                session,
                console.settings,
                who.staff,
                body.current_password,
                body.new_password,
                who.token,
            )
    except TooManyAttempts:
        raise HTTPException(
            429, "too many wrong current passwords: try again in 15 minutes"
        ) from None
    except WrongPassword as exc:
        with transaction(console.engine) as session:
            audit.record(session, who.staff.email, "password_change_failed", now=time.time())
        raise HTTPException(403, str(exc)) from None
    except AccountError as exc:
        raise _refused(exc) from None
    return {"changed": True, "sessions_ended": ended}


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
