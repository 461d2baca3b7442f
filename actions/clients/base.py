"""Shared HTTP plumbing for the back-end clients: timeouts, a small retry policy, typed errors."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httpx

logger = logging.getLogger(__name__)

RETRYABLE_STATUS = {502, 503, 504}


class ServiceUnavailable(Exception):
    """The back-end could not be reached, timed out, or failed on its side (5xx)."""


class ApiError(Exception):
    """The back-end answered with a client error (4xx) that the caller should explain."""

    def __init__(self, status: int, code: str, data: dict[str, Any]) -> None:
        super().__init__(f"{status} {code}")
        self.status = status
        self.code = code
        self.data = data


class BaseClient:
    """An ``httpx.AsyncClient`` wrapper; tests pass ``transport=httpx.MockTransport(...)``."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        timeout: float = 5.0,
        retries: int = 2,
        backoff: float = 0.2,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._timeout = httpx.Timeout(timeout, connect=min(timeout, 2.0))
        self._retries = retries
        self._backoff = backoff
        self._transport = transport
        self._client: httpx.AsyncClient | None = None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None or self._client.is_closed:
            headers = {"Accept": "application/json"}
            if self._api_key:
                headers["X-API-Key"] = self._api_key
            self._client = httpx.AsyncClient(
                base_url=self.base_url,
                timeout=self._timeout,
                headers=headers,
                transport=self._transport,
            )
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()

    async def request(
        self,
        method: str,
        path: str,
        *,
        idempotent: bool,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """Send a request; return the JSON body of a 2xx, raise ApiError or ServiceUnavailable.

        Reads (idempotent) are retried on timeouts and 502/503/504; writes only when the
        connection could not be opened, so a code is never sent twice by accident.
        """
        attempt = 0
        while True:
            try:
                response = await self._http().request(method, path, **kwargs)
            except httpx.ConnectError as exc:
                failure: str = f"connect error: {exc.__class__.__name__}"
            except httpx.TimeoutException as exc:
                if not idempotent:
                    raise ServiceUnavailable(f"{method} {path}: timeout") from exc
                failure = "timeout"
            except httpx.HTTPError as exc:
                raise ServiceUnavailable(f"{method} {path}: {exc.__class__.__name__}") from exc
            else:
                if response.status_code in RETRYABLE_STATUS and idempotent:
                    failure = f"status {response.status_code}"
                elif response.status_code >= 500:
                    raise ServiceUnavailable(f"{method} {path}: status {response.status_code}")
                else:
                    return self._decode(response)
            if attempt >= self._retries:
                raise ServiceUnavailable(f"{method} {path}: {failure}")
            attempt += 1
            logger.warning(
                "%s %s%s failed (%s), retry %d", method, self.base_url, path, failure, attempt
            )
            await asyncio.sleep(self._backoff * attempt)

    @staticmethod
    def _decode(response: httpx.Response) -> dict[str, Any]:
        try:
            data = response.json()
        except ValueError as exc:
            raise ServiceUnavailable(f"invalid JSON (status {response.status_code})") from exc
        if not isinstance(data, dict):
            raise ServiceUnavailable("unexpected JSON shape")
        if response.status_code >= 400:
            body = data["detail"] if isinstance(data.get("detail"), dict) else data
            code = str(body.get("error") or body.get("detail") or response.status_code)
            raise ApiError(response.status_code, code, body)
        return data
