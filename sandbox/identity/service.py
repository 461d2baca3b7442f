"""Rules of e-authentication: codes, attempts, locks with back-off and SMS caps, without HTTP.

Every limit is checked before anything about the ID number is answered, and an ID number that
is well-formed but not in the population database gets a decoy verification that answers
exactly like a real one, so the API never tells whether a citizen exists.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import secrets
from datetime import datetime, timezone
from typing import Any, Dict, List, Tuple

from sqlalchemy import delete, func, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from sandbox.common import (
    ApiError,
    Clock,
    mask_id_number,
    mask_phone,
    retry_after_seconds,
    transaction,
)
from sandbox.identity.id_numbers import PROVINCE_CODES, REASON_PROVINCE, id_number_problem
from sandbox.identity.models import (
    SCOPE_CONVERSATION,
    SCOPE_ID_NUMBER,
    SHARED_CLIENT_REF,
    Citizen,
    FailedAttempt,
    Lock,
    SmsOutbox,
    Verification,
)
from sandbox.settings import Settings
from sandbox.tokens import TokenError, issue_token, verify_token

logger = logging.getLogger("sandbox.identity")

SMS_TEMPLATE = (
    "[SANDBOX] Ma xac thuc cua ban la {code}. Hieu luc {minutes} phut. "
    "Khong chia se ma nay cho bat ky ai, ke ca nguoi tu xung la cong an."
)

# (scope, until): a lock or a cap that refuses the request until `until`.
Limit = Tuple[str, float]

_LOCKED_MESSAGES = {
    SCOPE_CONVERSATION: "Too many wrong codes in this conversation: it cannot verify anyone "
    "for a while.",
    SCOPE_ID_NUMBER: "Too many wrong codes for this ID number: it is locked for a while, in "
    "every conversation.",
}
_TOO_MANY_MESSAGES = {
    SCOPE_CONVERSATION: "Too many codes were requested in this conversation; try again later.",
    SCOPE_ID_NUMBER: "Too many codes were requested for this ID number; try again later.",
}


def normalise_phone(phone: str) -> str:
    """0912345678, +84912345678, 84 912 345 678 -> 0912345678."""
    digits = "".join(ch for ch in phone if ch.isdigit())
    if digits.startswith("84") and len(digits) == 11:
        return "0" + digits[2:]
    return digits


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).isoformat()


def _latest(limits: List[Limit]) -> Limit:
    """The limit that ends last; on a tie the ID number's, which concerns every conversation."""
    return max(limits, key=lambda limit: (limit[1], limit[0] == SCOPE_ID_NUMBER))


def _short_ref(client_ref: str) -> str:
    """Enough of a client_ref to follow one conversation through the log."""
    if client_ref == SHARED_CLIENT_REF:
        return "(none)"
    return client_ref if len(client_ref) <= 8 else client_ref[:8] + "…"


class IdentityService:
    def __init__(self, engine: Engine, settings: Settings, clock: Clock) -> None:
        self.engine = engine
        self.settings = settings
        self.clock = clock
        self.secret = settings.require_secret()

    # -- helpers --------------------------------------------------------------------------

    def _hmac(self, message: str) -> str:
        return hmac.new(self.secret.encode(), message.encode(), hashlib.sha256).hexdigest()

    def _code_hash(self, verification_id: str, code: str) -> str:
        return self._hmac(f"{verification_id}:{code}")

    def decoy_masked_phone(self, id_number: str) -> str:
        """Last 3 "digits" for an ID number without a citizen: the same on every request."""
        digits = int(self._hmac(f"decoy-phone:{id_number}"), 16) % 1000
        return mask_phone(f"0000000{digits:03d}")

    def _active_locks(
        self, session: Session, client_ref: str, id_number: str, now: float
    ) -> List[Limit]:
        found: List[Limit] = []
        for scope, key in ((SCOPE_CONVERSATION, client_ref), (SCOPE_ID_NUMBER, id_number)):
            lock = session.get(Lock, (scope, key))
            if lock is not None and lock.locked_until > now:
                found.append((scope, float(lock.locked_until)))
        return found

    def _refuse_if_locked(
        self, session: Session, client_ref: str, id_number: str, now: float
    ) -> None:
        locks = self._active_locks(session, client_ref, id_number, now)
        if locks:
            raise self._locked_error(_latest(locks), now)

    def _locked_error(self, limit: Limit, now: float, **extra: Any) -> ApiError:
        scope, until = limit
        retry = retry_after_seconds(until, now)
        return ApiError(
            423,
            "locked",
            _LOCKED_MESSAGES[scope],
            headers={"Retry-After": str(retry)},
            scope=scope,
            retry_after=retry,
            **extra,
        )

    def _refuse_if_over_code_caps(
        self, session: Session, client_ref: str, id_number: str, now: float
    ) -> None:
        """429 when this conversation or this ID number already had its codes in the window."""
        settings = self.settings
        window_start = now - settings.code_window_seconds
        over: List[Limit] = []
        for scope, column, key, cap in (
            (
                SCOPE_CONVERSATION,
                Verification.client_ref,
                client_ref,
                settings.max_codes_per_conversation,
            ),
            (SCOPE_ID_NUMBER, Verification.id_number, id_number, settings.max_codes_per_window),
        ):
            sent = (
                session.execute(
                    select(Verification.created_at)
                    .where(column == key, Verification.created_at > window_start)
                    .order_by(Verification.created_at)
                )
                .scalars()
                .all()
            )
            if len(sent) >= cap:
                # Allowed again once enough of the oldest codes have left the window.
                over.append((scope, sent[len(sent) - cap] + settings.code_window_seconds))
        if over:
            scope, until = _latest(over)
            retry = retry_after_seconds(until, now)
            raise ApiError(
                429,
                "too_many_requests",
                _TOO_MANY_MESSAGES[scope],
                headers={"Retry-After": str(retry)},
                scope=scope,
                retry_after=retry,
            )

    def _failures_since_last_lock(
        self, session: Session, scope: str, key: str, window_seconds: int, now: float
    ) -> int:
        """Wrong codes within the window; those before the start of the last lock are spent."""
        since = now - window_seconds
        lock = session.get(Lock, (scope, key))
        if lock is not None:
            since = max(since, float(lock.started_at))
        by_conversation = scope == SCOPE_CONVERSATION
        column = FailedAttempt.client_ref if by_conversation else FailedAttempt.id_number
        count: int = session.execute(
            select(func.count(FailedAttempt.id)).where(column == key, FailedAttempt.at > since)
        ).scalar_one()
        return count

    def _start_lock(self, session: Session, scope: str, key: str, now: float) -> Limit:
        """Lock with back-off: a lock soon after the previous one ends lasts twice as long."""
        settings = self.settings
        lock = session.get(Lock, (scope, key))
        level = 1
        if lock is not None and now - lock.locked_until < settings.lockout_memory_seconds:
            level = min(int(lock.level) + 1, 32)
        duration = min(settings.lockout_seconds * 2 ** (level - 1), settings.lockout_max_seconds)
        if lock is None:
            lock = Lock(scope=scope, key=key)
            session.add(lock)
        lock.level = level
        lock.started_at = now
        lock.locked_until = now + duration
        logger.info(
            "%s %s locked for %d s (lock %d in a row)",
            scope,
            _short_ref(key) if scope == SCOPE_CONVERSATION else mask_id_number(key),
            duration,
            level,
        )
        return scope, now + duration

    def _wrong_code(self, session: Session, verification: Verification, now: float) -> ApiError:
        """Count a wrong code for the code, the conversation and the ID number; lock if due."""
        settings = self.settings
        client_ref, id_number = str(verification.client_ref), str(verification.id_number)
        verification.attempts = int(verification.attempts) + 1
        session.add(
            FailedAttempt(
                id_number=id_number,
                client_ref=client_ref,
                verification_id=verification.id,
                at=now,
            )
        )
        session.flush()
        new_locks: List[Limit] = []
        for scope, key, window, limit in (
            (
                SCOPE_CONVERSATION,
                client_ref,
                settings.lockout_seconds,
                settings.conversation_max_failures,
            ),
            (
                SCOPE_ID_NUMBER,
                id_number,
                settings.id_failure_window_seconds,
                settings.id_max_failures,
            ),
        ):
            if self._failures_since_last_lock(session, scope, key, window, now) >= limit:
                new_locks.append(self._start_lock(session, scope, key, now))
        if new_locks:
            return self._locked_error(_latest(new_locks), now, attempts_left=0)
        return ApiError(
            400,
            "wrong_code",
            "The code is wrong.",
            attempts_left=max(0, settings.otp_max_attempts - int(verification.attempts)),
        )

    # -- use cases ------------------------------------------------------------------------

    def start_verification(self, raw_id_number: str, client_ref: str | None) -> Dict[str, Any]:
        id_number = raw_id_number.strip()
        problem = id_number_problem(id_number)  # structure only: no database knowledge
        if problem is not None:
            message = "The ID number must be 12 digits with a valid structure."
            if problem == REASON_PROVINCE:
                message += f" Known province codes: {', '.join(sorted(PROVINCE_CODES))}."
            raise ApiError(400, "invalid_id_number", message, reason=problem)

        ref = client_ref or SHARED_CLIENT_REF
        now = self.clock()
        settings = self.settings
        with transaction(self.engine) as session:
            # Limits first, the same for every ID number: only then look the citizen up.
            self._refuse_if_locked(session, ref, id_number, now)
            self._refuse_if_over_code_caps(session, ref, id_number, now)
            citizen = session.get(Citizen, id_number)

            # A newer code of the same conversation voids its older ones; codes of other
            # conversations (perhaps a stranger's) are left alone.
            session.execute(
                update(Verification)
                .where(
                    Verification.id_number == id_number,
                    Verification.client_ref == ref,
                    Verification.used_at.is_(None),
                    Verification.superseded_at.is_(None),
                )
                .values(superseded_at=now)
            )
            verification_id = secrets.token_urlsafe(24)
            verification = Verification(
                id=verification_id,
                id_number=id_number,
                client_ref=ref,
                attempts=0,
                created_at=now,
                expires_at=now + settings.otp_ttl_seconds,
            )
            session.add(verification)
            if citizen is None:
                verification.decoy = True  # no code, no SMS: confirm always answers wrong_code
                masked_phone = self.decoy_masked_phone(id_number)
            else:
                code = f"{secrets.randbelow(10**6):06d}"
                verification.decoy = False
                verification.code_hash = self._code_hash(verification_id, code)
                masked_phone = mask_phone(str(citizen.phone))
                if settings.sandbox_mode:
                    minutes = math.ceil(settings.otp_ttl_seconds / 60)
                    session.add(
                        SmsOutbox(
                            phone=citizen.phone,
                            text=SMS_TEMPLATE.format(code=code, minutes=minutes),
                            code=code,
                            sent_at=now,
                        )
                    )
        # The same line for a decoy: the log does not tell whether the citizen exists.
        logger.info(
            "verification started for %s (conversation %s): SMS with a one-time code %s %s",
            mask_id_number(id_number),
            _short_ref(ref),
            "written to the sandbox outbox for" if settings.sandbox_mode else "would be sent to",
            masked_phone,
        )
        return {
            "verification_id": verification_id,
            "masked_phone": masked_phone,
            "expires_in": settings.otp_ttl_seconds,
        }

    def confirm(self, verification_id: str, code: str) -> Dict[str, Any]:
        now = self.clock()
        settings = self.settings
        # A wrong code must be committed before it is answered, so that error is kept here
        # and raised after the transaction; the other errors change nothing.
        error: ApiError | None = None
        result: Dict[str, Any] | None = None
        with transaction(self.engine) as session:
            verification = session.get(Verification, verification_id)
            if verification is None:
                raise ApiError(404, "verification_not_found", "No such verification.")
            id_number = str(verification.id_number)
            client_ref = str(verification.client_ref)
            masked = mask_id_number(id_number)
            self._refuse_if_locked(session, client_ref, id_number, now)
            if verification.used_at is not None:
                raise ApiError(409, "already_used", "This code was already used.")
            if verification.attempts >= settings.otp_max_attempts:
                raise ApiError(
                    410, "code_exhausted", "Too many wrong tries for this code: ask for a new one."
                )
            if verification.superseded_at is not None or now >= verification.expires_at:
                raise ApiError(410, "expired", "This code has expired or a newer one was sent.")

            candidate = self._code_hash(verification_id, code.strip())
            matches = hmac.compare_digest(candidate, verification.code_hash or "")
            if matches and not verification.decoy:
                verification.used_at = now
                # The citizen's own typos in this conversation are forgiven; a stranger's
                # wrong codes (other conversations) still count against the ID number.
                session.execute(
                    delete(FailedAttempt).where(
                        FailedAttempt.id_number == id_number,
                        FailedAttempt.client_ref == client_ref,
                    )
                )
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
                error = self._wrong_code(session, verification, now)
        if error is not None:
            logger.info(
                "wrong code for %s (conversation %s): %s",
                masked,
                _short_ref(client_ref),
                error.error,
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
