"""Staff accounts (argon2id hashes), roles, and sessions that expire.

A session is a random bearer token; the database keeps only its HMAC under the service's secret,
so a copy of the database signs nobody in.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from console import audit
from console.models import StaffSession, User
from console.settings import DEMO_ACCOUNTS, ROLES, ConsoleSettings

# What each role may do. Agents (call-centre staff, next issue) have no content rights.
PERMISSIONS: dict[str, frozenset[str]] = {
    "read": frozenset({"editor", "reviewer", "admin"}),
    "edit": frozenset({"editor", "reviewer", "admin"}),  # drafts and submissions
    "publish": frozenset({"reviewer", "admin"}),  # publish, send back, roll back
    "admin": frozenset({"admin"}),  # accounts, the whole audit log
}
MIN_PASSWORD_LENGTH = 12
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
_hasher = PasswordHasher()  # argon2id with the library's current parameters
# Verified when the email is unknown, so that a wrong email costs as long as a wrong password.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


class AccountError(ValueError):
    """An email, role or password that cannot make an account, or a change refused (422)."""


class NoSuchAccount(AccountError):
    """No account has this email (404)."""


class WrongPassword(AccountError):
    """The current password given for a password change is wrong (the caller audits it in a
    transaction of its own: this one rolls back)."""


@dataclass(frozen=True)
class Staff:
    """The signed-in user, as the API handlers see it."""

    id: int
    email: str
    role: str

    def may(self, permission: str) -> bool:
        return self.role in PERMISSIONS[permission]


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def normalise_email(email: str) -> str:
    return email.strip().lower()


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise AccountError(f"role must be one of {', '.join(ROLES)}, not {role!r}")


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"the password needs at least {MIN_PASSWORD_LENGTH} characters")


def add_user(session: Session, email: str, password: str, role: str, actor: str) -> User:
    email = normalise_email(email)
    if not _EMAIL.match(email):
        raise AccountError(f"{email!r} is not an email address")
    _check_role(role)
    _check_password(password)
    if session.execute(select(User).where(User.email == email)).scalar_one_or_none():
        raise AccountError(f"{email} already has an account")
    user = User(
        email=email, password_hash=hash_password(password), role=role, created_at=time.time()
    )
    session.add(user)
    session.flush()
    audit.record(session, actor, "user_added", target=f"user:{email}", detail={"role": role})
    return user


def list_users(session: Session) -> list[dict[str, object]]:
    rows = session.execute(select(User).order_by(User.email)).scalars()
    return [
        {
            "email": u.email,
            "role": u.role,
            "disabled": u.disabled_at is not None,
            "disabled_at": u.disabled_at,
            "created_at": u.created_at,
        }
        for u in rows
    ]


def get_user(session: Session, email: str) -> User:
    email = normalise_email(email)
    user = session.execute(select(User).where(User.email == email)).scalar_one_or_none()
    if user is None:
        raise NoSuchAccount(f"no account {email}")
    return user


def _end_sessions(session: Session, user_id: int, keep: str | None = None) -> int:
    """End every session of a user (but the one whose hash is ``keep``); how many ended."""
    query = delete(StaffSession).where(StaffSession.user_id == user_id)
    if keep is not None:
        query = query.where(StaffSession.token_hash != keep)
    return int(session.execute(query).rowcount or 0)


def set_disabled(session: Session, email: str, disabled: bool, actor: str) -> User:
    """Disable (its sessions end at once: staff_for_token also refuses a disabled account) or
    enable an account. Nobody disables their own account (an admin would lock themself out)."""
    user = get_user(session, email)
    if disabled and user.email == normalise_email(actor):
        raise AccountError("you cannot disable your own account (another admin can)")
    if disabled == (user.disabled_at is not None):
        return user  # already so: nothing to record
    ended = 0
    if disabled:
        user.disabled_at = time.time()
        ended = _end_sessions(session, user.id)
    else:
        user.disabled_at = None
    action = "user_disabled" if disabled else "user_enabled"
    detail = {"sessions_ended": ended} if disabled else None
    audit.record(session, actor, action, target=f"user:{user.email}", detail=detail)
    return user


def set_role(session: Session, email: str, role: str, actor: str) -> User:
    """A new role, in force at the account's next request (sessions read the role each time).
    Nobody changes their own role (an admin would lose the accounts page to a typo)."""
    _check_role(role)
    user = get_user(session, email)
    if user.email == normalise_email(actor):
        raise AccountError("you cannot change your own role (another admin can)")
    if user.role == role:
        return user
    before, user.role = user.role, role
    audit.record(
        session,
        actor,
        "role_changed",
        target=f"user:{user.email}",
        detail={"from": before, "to": role},
    )
    return user


def change_password(
    session: Session,
    settings: ConsoleSettings,
    staff: Staff,
    current: str,
    new: str,
    token: str,
) -> int:
    """The signed-in user's new password (argon2id); their other sessions end, this one (the
    session of ``token``) stays. Returns how many sessions ended."""
    user = session.get(User, staff.id)
    if user is None or user.disabled_at is not None:
        raise NoSuchAccount(f"no account {staff.email}")
    since = time.time() - settings.login_window_seconds
    failed = audit.count_since(session, staff.email, "password_change_failed", since)
    if failed >= settings.login_max_failures:
        raise TooManyAttempts(staff.email)  # a stolen session does not guess the password
    if not verify_password(user.password_hash, current):
        raise WrongPassword("the current password is wrong")
    _check_password(new)
    if new == current:
        raise AccountError("the new password is the same as the current one")
    user.password_hash = hash_password(new)
    ended = _end_sessions(session, user.id, keep=token_hash(settings, token))
    audit.record(
        session,
        staff.email,
        "password_changed",
        target=f"user:{user.email}",
        detail={"sessions_ended": ended},
    )
    return ended


def ensure_demo_accounts(session: Session, settings: ConsoleSettings) -> None:
    """Sandbox mode only: one account per role (README); their password follows the setting.
    Outside sandbox mode, demo accounts left in the database by a sandbox run are disabled."""
    for role, email in DEMO_ACCOUNTS.items():
        user = session.execute(select(User).where(User.email == email)).scalar_one_or_none()
        if not settings.sandbox_mode:
            if user is not None and user.disabled_at is None:
                user.disabled_at = time.time()
                audit.record(session, "system:sandbox", "user_disabled", target=f"user:{email}")
            continue
        if user is None:
            add_user(session, email, settings.demo_password, role, actor="system:sandbox")
            continue
        user.disabled_at = None
        if not verify_password(user.password_hash, settings.demo_password):
            user.password_hash = hash_password(settings.demo_password)


def token_hash(settings: ConsoleSettings, token: str) -> str:
    key = settings.session_secret.encode("utf-8")
    return hmac.new(key, token.encode("utf-8"), hashlib.sha256).hexdigest()


class TooManyAttempts(Exception):
    """Sign-in refused for a while after repeated wrong passwords for one email."""


def sign_in(
    session: Session, settings: ConsoleSettings, email: str, password: str, now: float
) -> tuple[str, Staff] | None:
    """A new session token, or None for a wrong email or password (audited either way)."""
    email = normalise_email(email)[:320]
    since = now - settings.login_window_seconds
    if audit.count_since(session, email, "login_failed", since) >= settings.login_max_failures:
        raise TooManyAttempts(email)  # the caller records it (this transaction rolls back)
    user = session.execute(select(User).where(User.email == email)).scalar_one_or_none()
    if user is None or user.disabled_at is not None:
        verify_password(_DUMMY_HASH, password)
        audit.record(session, email, "login_failed", now=now)
        return None
    if not verify_password(user.password_hash, password):
        audit.record(session, email, "login_failed", now=now)
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    token = secrets.token_urlsafe(32)
    session.add(
        StaffSession(
            token_hash=token_hash(settings, token),
            user_id=user.id,
            created_at=now,
            expires_at=now + settings.session_ttl_seconds,
        )
    )
    session.execute(delete(StaffSession).where(StaffSession.expires_at < now))
    audit.record(session, email, "login", now=now)
    return token, Staff(user.id, user.email, user.role)


def staff_for_token(
    session: Session, settings: ConsoleSettings, token: str, now: float
) -> Staff | None:
    row = session.get(StaffSession, token_hash(settings, token))
    if row is None or row.expires_at <= now:
        return None
    user = session.get(User, row.user_id)
    if user is None or user.disabled_at is not None:
        return None
    return Staff(user.id, user.email, user.role)


def sign_out(session: Session, settings: ConsoleSettings, token: str, staff: Staff) -> None:
    session.execute(
        delete(StaffSession).where(StaffSession.token_hash == token_hash(settings, token))
    )
    audit.record(session, staff.email, "logout")
