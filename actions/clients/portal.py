"""Client of the public service portal API: procedure catalogue and dossier lookup."""

from __future__ import annotations

import copy
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

from actions.clients.base import ApiError, BaseClient, ServiceUnavailable

logger = logging.getLogger(__name__)

CATALOGUE_TTL_SECONDS = 300.0  # a fee or deadline changed in the catalogue shows within 5 min
CATALOGUE_STALE_SECONDS = 86400.0  # the portal down: answer from what it said in the last day
CATALOGUE_MAX_ENTRIES = 5000


class PortalError(Exception):
    """A refusal of the portal API (unknown procedure or dossier, bad code, expired token)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


class PortalClient(BaseClient):
    """Catalogue answers (procedures, provinces) are public and change rarely: each is kept for
    ``catalogue_ttl`` seconds, so one message asks the portal once, not three times, and when
    the portal is down or slow an answer it gave in the last ``catalogue_stale`` seconds is used.
    Dossiers are never cached."""

    name = "portal"

    def __init__(
        self,
        base_url: str,
        *,
        catalogue_ttl: float = CATALOGUE_TTL_SECONDS,
        catalogue_stale: float = CATALOGUE_STALE_SECONDS,
        **kwargs: Any,
    ) -> None:
        super().__init__(base_url, **kwargs)
        self.catalogue_ttl = catalogue_ttl
        self.catalogue_stale = catalogue_stale
        self._catalogue: OrderedDict[tuple[Any, ...], tuple[float, Any]] = OrderedDict()

    def forget_catalogue(self) -> None:
        """Drop every kept catalogue answer (tests that change the catalogue under a client)."""
        self._catalogue.clear()

    async def _catalogue_read(
        self, key: tuple[Any, ...], fetch: Callable[[], Awaitable[Any]]
    ) -> Any:
        now = time.monotonic()
        kept = self._catalogue.get(key)
        if kept is not None and now - kept[0] < self.catalogue_ttl:
            return copy.deepcopy(kept[1])
        try:
            value = await fetch()
        except ServiceUnavailable:
            if kept is not None and now - kept[0] < self.catalogue_stale:
                logger.warning("portal unavailable: catalogue answer from %.0fs ago", now - kept[0])
                return copy.deepcopy(kept[1])
            raise
        self._catalogue[key] = (now, copy.deepcopy(value))
        self._catalogue.move_to_end(key)
        while len(self._catalogue) > CATALOGUE_MAX_ENTRIES:
            self._catalogue.popitem(last=False)
        return value

    async def search_procedures(self, query: str, lang: str) -> list[dict[str, Any]]:
        async def fetch() -> list[dict[str, Any]]:
            data = await self.request(
                "GET", "/v1/procedures", params={"q": query, "lang": lang}, idempotent=True
            )
            return list(data.get("items", []))

        return list(await self._catalogue_read(("search", query, lang), fetch))

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

        async def fetch() -> dict[str, Any]:
            try:
                return await self.request(
                    "GET", f"/v1/procedures/{procedure_id}", params=params, idempotent=True
                )
            except ApiError as exc:
                raise PortalError(exc.code) from exc

        key = ("procedure", procedure_id, lang, variant, province)
        return dict(await self._catalogue_read(key, fetch))

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

        async def fetch() -> dict[str, Any] | None:
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

        found = await self._catalogue_read(("province", name, lang), fetch)
        return dict(found) if found is not None else None
