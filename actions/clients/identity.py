"""Client of the identity API (e-authentication against the national population database)."""

from __future__ import annotations

from dataclasses import dataclass

from actions.clients.base import ApiError, BaseClient


@dataclass(frozen=True)
class VerificationStarted:
    verification_id: str
    masked_phone: str
    expires_in: int


@dataclass(frozen=True)
class Verified:
    access_token: str
    expires_in: int
    full_name: str


class IdentityError(Exception):
    """A refusal of the identity API that the citizen must be told about."""

    def __init__(
        self, code: str, retry_after: int = 0, attempts_left: int = 0, scope: str = ""
    ) -> None:
        super().__init__(code)
        self.code = code
        self.retry_after = retry_after
        self.attempts_left = attempts_left
        self.scope = scope  # "conversation" or "id_number" for locks and caps


class IdentityClient(BaseClient):
    name = "identity"

    async def start_verification(self, id_number: str, client_ref: str) -> VerificationStarted:
        """Ask the identity API to send a one-time code to the citizen's registered phone.

        ``client_ref`` is an opaque reference of the conversation, for the API's limits per
        conversation (a stranger's wrong codes elsewhere do not lock the owner out). For an ID
        number it does not know, the API answers the same way (no SMS is sent), so a stranger
        cannot learn who is registered.
        """
        try:
            data = await self.request(
                "POST",
                "/v1/verifications",
                json={"id_number": id_number, "client_ref": client_ref},
                idempotent=False,
            )
        except ApiError as exc:
            raise _identity_error(exc) from exc
        return VerificationStarted(
            verification_id=str(data["verification_id"]),
            masked_phone=str(data["masked_phone"]),
            expires_in=int(data.get("expires_in", 300)),
        )

    async def confirm(self, verification_id: str, code: str) -> Verified:
        """Check the code; on success the API returns a short-lived token bound to the citizen."""
        try:
            data = await self.request(
                "POST",
                f"/v1/verifications/{verification_id}/confirm",
                json={"code": code},
                idempotent=False,
            )
        except ApiError as exc:
            raise _identity_error(exc) from exc
        return Verified(
            access_token=str(data["access_token"]),
            expires_in=int(data.get("expires_in", 900)),
            full_name=str(data.get("citizen", {}).get("full_name", "")),
        )


def _identity_error(exc: ApiError) -> IdentityError:
    return IdentityError(
        exc.code,
        retry_after=int(exc.data.get("retry_after") or 0),
        attempts_left=int(exc.data.get("attempts_left") or 0),
        scope=str(exc.data.get("scope") or ""),
    )
