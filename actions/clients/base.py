"""Shared HTTP plumbing for the back-end clients: a deadline per call, a small retry policy
within it, a circuit breaker per back end, typed errors."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import httpx

from actions.clients import budget as message_budget
from actions.clients.breaker import CircuitBreaker

logger = logging.getLogger(__name__)

RETRYABLE_STATUS = {502, 503, 504}
# A retry is sent only if at least this much of the call's deadline is left for it.
MIN_ATTEMPT_SECONDS = 0.2


class ServiceUnavailable(Exception):
    """The back-end could not be reached, timed out, failed on its side (5xx), answered
    something that is not our JSON, or its circuit breaker is open."""


class ApiError(Exception):
    """The back-end answered with a client error (4xx) that the caller should explain."""

    def __init__(self, status: int, code: str, data: dict[str, Any]) -> None:
        super().__init__(f"{status} {code}")
        self.status = status
        self.code = code
        self.data = data


class BaseClient:
    """An ``httpx.AsyncClient`` wrapper; tests pass ``transport=httpx.MockTransport(...)``.

    ``timeout`` bounds one attempt of a read, ``deadline`` the whole call (every attempt and
    back-off together), so the citizen's wait has a ceiling whatever the back end does. A write
    has one attempt (a timeout is never retried: a code must not be sent twice), which may use
    the whole deadline.
    """

    name = "api"

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        timeout: float = 1.5,
        deadline: float = 2.2,
        retries: int = 2,
        backoff: float = 0.2,
        breaker: CircuitBreaker | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._attempt_timeout = timeout
        self._deadline = deadline
        self._retries = retries
        self._backoff = backoff
        self.breaker = breaker if breaker is not None else CircuitBreaker(self.name)
        self._transport = transport
        self._clock = clock
        self._client: httpx.AsyncClient | None = None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None or self._client.is_closed:
            headers = {"Accept": "application/json"}
            if self._api_key:
                headers["X-API-Key"] = self._api_key
            self._client = httpx.AsyncClient(
                base_url=self.base_url,
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

        Reads (idempotent) are retried on timeouts, connection failures and 502/503/504 while
        the deadline lasts; writes only when the connection could not be opened, so a code is
        never sent twice by accident. While the breaker is open nothing is sent at all.

        Within an action call, the call also waits at most what is left of the message's
        budget (actions/clients/budget.py), and a back end that already failed for this
        message fails again at once.
        """
        budget = message_budget.current()
        if budget is not None:
            if self.name in budget.failed:
                raise ServiceUnavailable(f"{method} {path}: {self.name} failed for this message")
            if budget.left() < MIN_ATTEMPT_SECONDS:
                raise ServiceUnavailable(f"{method} {path}: this message's time is over")
        if not self.breaker.allow():
            raise ServiceUnavailable(f"{method} {path}: circuit {self.name} open")
        try:
            data = await self._send(
                method,
                path,
                idempotent=idempotent,
                deadline=self._deadline if budget is None else min(self._deadline, budget.left()),
                **kwargs,
            )
        except ApiError:
            self.breaker.success()  # a refusal is an answer: the back end works
            raise
        except ServiceUnavailable:
            self.breaker.failure()
            if budget is not None:
                budget.failed.add(self.name)
            raise
        except BaseException:
            self.breaker.release()
            raise
        self.breaker.success()
        return data

    async def _send(
        self, method: str, path: str, *, idempotent: bool, deadline: float, **kwargs: Any
    ) -> dict[str, Any]:
        ends_at = self._clock() + deadline
        attempt = 0
        while True:
            left = ends_at - self._clock()
            limit = min(self._attempt_timeout, left) if idempotent else left
            try:
                response = await asyncio.wait_for(
                    self._http().request(
                        method,
                        path,
                        timeout=httpx.Timeout(limit, connect=min(limit, 1.0)),
                        **kwargs,
                    ),
                    timeout=limit,
                )
            except httpx.ConnectError as exc:
                failure: str = f"connect error: {exc.__class__.__name__}"
            except (httpx.TimeoutException, asyncio.TimeoutError) as exc:
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
            pause = self._backoff * (attempt + 1)
            if attempt >= self._retries or ends_at - self._clock() - pause < MIN_ATTEMPT_SECONDS:
                raise ServiceUnavailable(f"{method} {path}: {failure}")
            attempt += 1
            logger.warning(
                "%s %s%s failed (%s), retry %d", method, self.base_url, path, failure, attempt
            )
            await asyncio.sleep(pause)

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
