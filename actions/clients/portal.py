"""Client of the public service portal API: procedure catalogue and dossier lookup."""

from __future__ import annotations

from typing import Any

from actions.clients.base import ApiError, BaseClient


class PortalError(Exception):
    """A refusal of the portal API (unknown procedure or dossier, bad code, expired token)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


class PortalClient(BaseClient):
    name = "portal"

    async def search_procedures(self, query: str, lang: str) -> list[dict[str, Any]]:
        data = await self.request(
            "GET", "/v1/procedures", params={"q": query, "lang": lang}, idempotent=True
        )
        return list(data.get("items", []))

    async def get_procedure(
        self,
        procedure_id: str,
        lang: str,
        variant: str | None = None,
        province: str | None = None,
    ) -> dict[str, Any]:
        params = {"lang": lang}
        if variant:
            params["variant"] = variant
        if province:
            params["province"] = province
        try:
            return await self.request(
                "GET", f"/v1/procedures/{procedure_id}", params=params, idempotent=True
            )
        except ApiError as exc:
            raise PortalError(exc.code) from exc

    async def get_dossier(self, code: str, lang: str, token: str | None = None) -> dict[str, Any]:
        """Coarse public status without a token; the owner's token unlocks the details."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        try:
            return await self.request(
                "GET",
                f"/v1/dossiers/{code}",
                params={"lang": lang},
                headers=headers,
                idempotent=True,
            )
        except ApiError as exc:
            raise PortalError(exc.code) from exc

    async def resolve_province(self, name: str, lang: str) -> dict[str, Any] | None:
        """The current unit for a province name as typed (old names too); None if unknown."""
        try:
            return await self.request(
                "GET",
                "/v1/provinces/resolve",
                params={"name": name, "lang": lang},
                idempotent=True,
            )
        except ApiError as exc:
            if exc.status in (404, 422):
                return None
            raise PortalError(exc.code) from exc
