"""Rules of e-authentication: codes, attempts, lockout and rate limits, independent of HTTP."""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import secrets
from datetime import datetime, timezone
from typing import Any, Dict, List

from sqlalchemy import delete, func, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from sandbox.common import (
    ApiError,
    Clock,
    mask_code,
    mask_id_number,
    mask_phone,
    retry_after_seconds,
    transaction,
)
from sandbox.identity.id_numbers import PROVINCE_CODES, REASON_PROVINCE, id_number_problem
from sandbox.identity.models import Citizen, FailedAttempt, Lock, SmsOutbox, Verification
from sandbox.settings import Settings
from sandbox.tokens import TokenError, issue_token, verify_token

logger = logging.getLogger("sandbox.identity")

SMS_TEMPLATE = (
    "[SANDBOX] Ma xac thuc cua ban la {code}. Hieu luc {minutes} phut. "
    "Khong chia se ma nay cho bat ky ai, ke ca nguoi tu xung la cong an."
)


def normalise_phone(phone: str) -> str:
    """0912345678, +84912345678, 84 912 345 678 -> 0912345678."""
    digits = "".join(ch for ch in phone if ch.isdigit())
    if digits.startswith("84") and len(digits) == 11:
        return "0" + digits[2:]
    return digits


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).isoformat()


class IdentityService:
    def __init__(self, engine: Engine, settings: Settings, clock: Clock) -> None:
        self.engine = engine
        self.settings = settings
        self.clock = clock
        self.secret = settings.require_secret()

    # -- helpers --------------------------------------------------------------------------

    def _hash(self, verification_id: str, code: str) -> str:
        message = f"{verification_id}:{code}".encode()
        return hmac.new(self.secret.encode(), message, hashlib.sha256).hexdigest()

    def _active_lock(self, session: Session, id_number: str, now: float) -> float | None:
        lock = session.get(Lock, id_number)
        if lock is not None and lock.locked_until > now:
            return float(lock.locked_until)
        return None

    def _locked_error(self, until: float, now: float, **extra: Any) -> ApiError:
        retry = retry_after_seconds(until, now)
        return ApiError(
            423,
            "locked",
            "Too many wrong codes: this ID number is locked for a while.",
            headers={"Retry-After": str(retry)},
            retry_after=retry,
            **extra,
        )

    # -- use cases ------------------------------------------------------------------------

    def start_verification(self, raw_id_number: str) -> Dict[str, Any]:
        id_number = raw_id_number.strip()
        problem = id_number_problem(id_number)
        if problem is not None:
            message = "The ID number must be 12 digits with a valid structure."
            if problem == REASON_PROVINCE:
                message += f" Known province codes: {', '.join(sorted(PROVINCE_CODES))}."
            raise ApiError(400, "invalid_id_number", message, reason=problem)

        now = self.clock()
        settings = self.settings
        with transaction(self.engine) as session:
            citizen = session.get(Citizen, id_number)
            if citizen is None:
                raise ApiError(404, "citizen_not_found", "No citizen has this ID number.")
            locked_until = self._active_lock(session, id_number, now)
            if locked_until is not None:
                raise self._locked_error(locked_until, now)

            window_start = now - settings.code_window_seconds
            recent = session.execute(
                select(func.count(Verification.id), func.min(Verification.created_at)).where(
                    Verification.id_number == id_number, Verification.created_at > window_start
                )
            ).one()
            if recent[0] >= settings.max_codes_per_window:
                retry = retry_after_seconds(recent[1] + settings.code_window_seconds, now)
                raise ApiError(
                    429,
                    "too_many_requests",
                    "Too many codes were requested for this ID number; try again later.",
                    headers={"Retry-After": str(retry)},
                    retry_after=retry,
                )

            session.execute(
                update(Verification)
                .where(
                    Verification.id_number == id_number,
                    Verification.used_at.is_(None),
                    Verification.superseded_at.is_(None),
                )
                .values(superseded_at=now)
            )
            verification_id = secrets.token_urlsafe(24)
            code = f"{secrets.randbelow(10**6):06d}"
            session.add(
                Verification(
                    id=verification_id,
                    id_number=id_number,
                    code_hash=self._hash(verification_id, code),
                    created_at=now,
                    expires_at=now + settings.otp_ttl_seconds,
                )
            )
            minutes = math.ceil(settings.otp_ttl_seconds / 60)
            session.add(
                SmsOutbox(
                    phone=citizen.phone,
                    text=SMS_TEMPLATE.format(code=code, minutes=minutes),
                    code=code,
                    sent_at=now,
                )
            )
            phone = str(citizen.phone)
        logger.info(
            "verification started for %s; SMS with code %s written to outbox for %s",
            mask_id_number(id_number),
            mask_code(code),
            mask_phone(phone),
        )
        return {
            "verification_id": verification_id,
            "masked_phone": mask_phone(phone),
            "expires_in": settings.otp_ttl_seconds,
        }

    def confirm(self, verification_id: str, code: str) -> Dict[str, Any]:
        now = self.clock()
        settings = self.settings
        # Outcomes that record a failure must commit before answering, so errors are
        # collected here and raised after the transaction.
        error: ApiError | None = None
        result: Dict[str, Any] | None = None
        with transaction(self.engine) as session:
            verification = session.get(Verification, verification_id)
            if verification is None:
                raise ApiError(404, "verification_not_found", "No such verification.")
            id_number = str(verification.id_number)
            masked = mask_id_number(id_number)
            locked_until = self._active_lock(session, id_number, now)
            if locked_until is not None:
                raise self._locked_error(locked_until, now)
            if verification.used_at is not None:
                raise ApiError(409, "already_used", "This code was already used.")
            if verification.superseded_at is not None or now >= verification.expires_at:
                raise ApiError(410, "expired", "This code has expired or a newer one was sent.")

            if hmac.compare_digest(
                self._hash(verification_id, code.strip()), verification.code_hash
            ):
                marked = session.execute(
                    update(Verification)
                    .where(Verification.id == verification_id, Verification.used_at.is_(None))
                    .values(used_at=now)
                )
                if marked.rowcount != 1:
                    raise ApiError(409, "already_used", "This code was already used.")
                session.execute(delete(FailedAttempt).where(FailedAttempt.id_number == id_number))
                citizen = session.get(Citizen, id_number)
                token = issue_token(self.secret, id_number, now, settings.token_ttl_seconds)
                result = {
                    "access_token": token,
                    "token_type": "Bearer",
                    "expires_in": settings.token_ttl_seconds,
                    "citizen": {
                        "full_name": citizen.full_name if citizen is not None else "",
                        "id_number_masked": masked,
                    },
                }
            else:
                session.add(
                    FailedAttempt(id_number=id_number, verification_id=verification_id, at=now)
                )
                session.flush()
                failures = session.execute(
                    select(func.count(FailedAttempt.id)).where(
                        FailedAttempt.id_number == id_number,
                        FailedAttempt.at > now - settings.lockout_seconds,
                    )
                ).scalar_one()
                attempts_left = max(0, settings.otp_max_attempts - failures)
                if attempts_left == 0:
                    until = now + settings.lockout_seconds
                    lock = session.get(Lock, id_number)
                    if lock is None:
                        session.add(Lock(id_number=id_number, locked_until=until))
                    else:
                        lock.locked_until = until
                    # The count starts afresh once the lock ends.
                    session.execute(
                        delete(FailedAttempt).where(FailedAttempt.id_number == id_number)
                    )
                    error = self._locked_error(until, now, attempts_left=0)
                else:
                    error = ApiError(
                        400,
                        "wrong_code",
                        "The code is wrong.",
                        attempts_left=attempts_left,
                    )
        if error is not None:
            logger.info(
                "wrong code %s for %s (%s)", mask_code(code.strip() or "?"), masked, error.error
            )
            raise error
        assert result is not None
        logger.info("verification confirmed for %s; token issued", masked)
        return result

    def introspect(self, token: str) -> Dict[str, Any]:
        try:
            claims = verify_token(self.secret, token, self.clock())
        except TokenError:
            return {"active": False}
        return {"active": True, "sub": claims["sub"], "exp": claims["exp"]}

    def sms_for_phone(self, phone: str) -> List[Dict[str, Any]]:
        wanted = normalise_phone(phone)
        with transaction(self.engine) as session:
            rows = session.execute(
                select(SmsOutbox)
                .where(SmsOutbox.phone == wanted)
                .order_by(SmsOutbox.sent_at.desc(), SmsOutbox.id.desc())
            ).scalars()
            return [
                {"phone": r.phone, "text": r.text, "code": r.code, "sent_at": _iso(r.sent_at)}
                for r in rows
            ]
