"""Rasa's replies from the content service (console/), and never silence when it fails.

`nlg: type: bot.nlg.ContentNLG` in bot/endpoints.yml. Every reply is asked of the service's
`POST /nlg` (Rasa's callback contract, rasa/core/nlg/callback.py) with a short timeout. When the
service is down, slow or answers an error, the reply is rendered here from the last published
set this process fetched (`GET /nlg/published`, polled every few seconds with its ETag), and for
a reply that set lacks, from the domain, exactly as Rasa's own templated generator does. After a
failure the service is not asked again until the poller reaches it, so a hung service costs one
timeout, not one per reply.

Privacy: Rasa's callback generator sends the whole tracker, every event of the conversation.
This sends the same shape with only what rendering needs: the slots, the latest intent, the
channel, the active form; no events, no texts, no conversation id.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import httpx
from rasa.core.nlg.callback import CallbackNaturalLanguageGenerator, nlg_response_format_spec
from rasa.core.nlg.response import TemplatedNaturalLanguageGenerator
from rasa.shared.core.domain import Domain
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.utils.endpoints import EndpointConfig

logger = logging.getLogger("bot.nlg")

DEFAULT_TIMEOUT_SECONDS = 0.5
DEFAULT_REFRESH_SECONDS = 5.0
POLL_TIMEOUT_SECONDS = 2.0


def rendering_state(tracker: DialogueStateTracker) -> dict[str, Any]:
    """The tracker as Rasa's callback sends it (`current_state`), less what rendering does not
    need: no events, no message text or entities, no sender id."""
    intent = tracker.latest_message.intent if tracker.latest_message else {}
    return {
        "slots": tracker.current_slot_values(),
        "latest_message": {
            "intent": {"name": intent.get("name"), "confidence": intent.get("confidence")}
        },
        "latest_input_channel": tracker.get_latest_input_channel(),
        "active_loop": {"name": tracker.active_loop_name} if tracker.active_loop_name else {},
        "latest_action_name": tracker.latest_action_name,
        "events": [],
    }


class _QuietRequests(logging.Filter):
    """httpx logs every request at INFO: not one line per reply for the content service."""

    def __init__(self, prefix: str) -> None:
        super().__init__()
        self.prefix = prefix

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        return not (len(args) > 1 and str(args[1]).startswith(self.prefix))


def _validator() -> Any:
    from jsonschema.validators import validator_for

    schema = nlg_response_format_spec()
    return validator_for(schema)(schema)  # built once (rasa_server.py explains why)


class ContentNLG(TemplatedNaturalLanguageGenerator):
    """Subclasses Rasa's templated generator so that Rasa hands it the model's domain
    responses when it loads a model (rasa/core/agent.py, `load_model`): the last resort."""

    responses: dict[str, list[dict[str, Any]]]

    def __init__(self, endpoint_config: EndpointConfig, domain: Domain | None = None) -> None:
        super().__init__(domain.responses if domain else {})
        if not endpoint_config.url:
            raise ValueError("nlg: bot.nlg.ContentNLG needs the content service's url")
        self.url = endpoint_config.url.rstrip("/")
        options = endpoint_config.kwargs
        self.timeout = float(options.get("timeout") or DEFAULT_TIMEOUT_SECONDS)
        self.refresh_seconds = float(options.get("refresh_seconds") or DEFAULT_REFRESH_SECONDS)
        self.headers = dict(endpoint_config.headers or {})
        self.published: dict[str, list[dict[str, Any]]] = {}
        self.published_version: str | None = None  # the ETag of the set held
        self._skip_until = 0.0  # after a failure, the service is not asked until then
        self._reachable = True
        # Made now, not at the first reply (it loads certificates: tens of milliseconds).
        self._client: httpx.AsyncClient | None = httpx.AsyncClient(timeout=self.timeout)
        self._poller: asyncio.Task[None] | None = None
        self._valid = _validator()
        logging.getLogger("httpx").addFilter(_QuietRequests(self.url))

    # --- the three sources, in order ------------------------------------------------------

    async def generate(
        self,
        utter_action: str,
        tracker: DialogueStateTracker,
        output_channel: str,
        **kwargs: Any,
    ) -> dict[str, Any] | None:
        domain_responses = kwargs.pop("domain_responses", None)
        if domain_responses and not self.responses:
            self.responses = domain_responses
        self._start_polling()
        if time.monotonic() >= self._skip_until:
            body = {
                "response": utter_action,
                "id": CallbackNaturalLanguageGenerator.fetch_response_id(
                    utter_action, tracker, output_channel, domain_responses
                ),
                "arguments": kwargs,
                "tracker": rendering_state(tracker),
                "channel": {"name": output_channel},
            }
            reply = await self._ask(utter_action, body)
            if reply is not None:
                return reply
        return self.render_locally(
            utter_action, tracker.current_slot_values(), output_channel, **kwargs
        )

    def render_locally(
        self, utter_action: str, slots: dict[str, Any], output_channel: str, **kwargs: Any
    ) -> dict[str, Any] | None:
        """The last published wording fetched, else the domain's."""
        if utter_action in self.published:
            message = TemplatedNaturalLanguageGenerator(self.published).generate_from_slots(
                utter_action, slots, output_channel, **kwargs
            )
            if message is not None:
                return message
        return self.generate_from_slots(utter_action, slots, output_channel, **kwargs)

    async def _ask(self, utter_action: str, body: dict[str, Any]) -> dict[str, Any] | None:
        try:
            response = await self._http().post(
                f"{self.url}/nlg", json=body, headers=self.headers, timeout=self.timeout
            )
        except (httpx.HTTPError, OSError) as exc:
            self._failed(f"{exc.__class__.__name__}")
            return None
        if response.status_code == 404:  # a reply the service does not know: the domain's
            return None
        if response.status_code != 200:
            self._failed(f"status {response.status_code}")
            return None
        try:
            reply = response.json()
        except ValueError:
            reply = None
        if not isinstance(reply, dict) or not self._valid.is_valid(reply):
            self._failed(f"an invalid answer for {utter_action}")
            return None
        return reply

    def _failed(self, why: str) -> None:
        # Until the poller reaches the service again (or one refresh period passes).
        self._skip_until = time.monotonic() + self.refresh_seconds
        if self._reachable:
            logger.warning(
                "content service %s failed (%s): replies come from the last published set "
                "(%d replies) or the domain",
                self.url,
                why,
                len(self.published),
            )
        self._reachable = False

    # --- the published set, polled ----------------------------------------------------------

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.timeout)
        return self._client

    def _start_polling(self) -> None:
        if self._poller is None or self._poller.done():
            with contextlib.suppress(RuntimeError):  # no running loop: the next reply starts it
                self._poller = asyncio.get_running_loop().create_task(self._poll())

    async def _poll(self) -> None:
        while True:
            await self.refresh()
            await asyncio.sleep(self.refresh_seconds)

    async def refresh(self) -> bool:
        """Fetch the published set if it changed; True if the service answered."""
        headers = dict(self.headers)
        if self.published_version:
            headers["If-None-Match"] = self.published_version
        try:
            response = await self._http().get(
                f"{self.url}/nlg/published", headers=headers, timeout=POLL_TIMEOUT_SECONDS
            )
        except (httpx.HTTPError, OSError):
            return False
        if response.status_code == 200:
            try:
                responses = response.json()["responses"]
            except (ValueError, KeyError, TypeError):
                return False
            if isinstance(responses, dict):
                self.published = responses
                self.published_version = response.headers.get("ETag")
        elif response.status_code != 304:
            return False
        if not self._reachable:
            logger.info("content service %s answers again", self.url)
        self._reachable = True
        self._skip_until = 0.0
        return True

    async def close(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
        if self._client is not None:
            await self._client.aclose()
            self._client = None
