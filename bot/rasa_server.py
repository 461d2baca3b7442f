"""`python -m bot.rasa_server run ...`: Rasa's own command line, with these additions.

- Personal data is masked in every log record of the process (bot/logmask.py), installed
  before Rasa configures its logging.
- Rasa's HTTP API is never open: `run --enable-api` takes its token from RASA_AUTH_TOKEN (the
  environment, which other users cannot read, instead of the command line, which `ps` shows)
  and refuses to start without one.
- The action server's answers are checked against Rasa's JSON schema with a validator built
  once, instead of `jsonschema.validate`, which checks the schema itself against the
  meta-schema at every call: that was two thirds of Rasa's CPU time (docs/PERFORMANCE.md).
- The action server down, hung or failing: the citizen gets `utter_action_server_down` (made by
  Rasa's NLG, like any response) instead of silence, within ACTION_TIMEOUT_SECONDS for the whole
  message, and a form in progress keeps what it had (docs/FAULTS.md).
- `run` loads the model without Rasa's one-example training step (bot/fast_load.py).
- A conversation handed to a call-centre agent (paused) keeps its session however long the
  citizen is silent, so the bot never answers it before the agent hands it back.
- The `language` slot's mapping is answered inside Rasa, not by a round trip to the action
  server on every message (bot/language_slot.py), and the calls to the action server reuse
  their connections (bot/keepalive.py).
- A Sanic worker (RASA_WORKERS) that dies is replaced by a new one (bot/workers.py).
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
import os
import sys
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bot.keepalive import install_kept_connections
from bot.language_slot import install_in_process_language_slot
from bot.logmask import install_pii_masking
from bot.workers import install_replaced_workers

if TYPE_CHECKING:
    from rasa.core.channels import OutputChannel
    from rasa.core.nlg import NaturalLanguageGenerator
    from rasa.shared.core.domain import Domain
    from rasa.shared.core.events import Event
    from rasa.shared.core.trackers import DialogueStateTracker

logger = logging.getLogger("bot.rasa_server")

ACTION_SERVER_DOWN = "utter_action_server_down"
# How long one message may wait for the action server, all its custom actions together. It only
# bounds a hung or lost action server: a slow back end is the action server's to answer within
# ~3 s (one back-end budget per message, actions/clients/budget.py). Under heavy load the action
# server's answers wait in Rasa's own event loop; 2.5 s here turned most of them into apologies.
DEFAULT_ACTION_TIMEOUT_SECONDS = 8.0


def with_auth_token(argv: list[str], environ: dict[str, str]) -> list[str]:
    """``argv`` with ``--auth-token`` from the environment; SystemExit if the API would be open."""
    if len(argv) < 2 or argv[1] != "run" or "--enable-api" not in argv:
        return argv
    if "-t" in argv or any(a == "--auth-token" or a.startswith("--auth-token=") for a in argv):
        return argv
    token = environ.get("RASA_AUTH_TOKEN", "")
    if not token:
        raise SystemExit(
            "bot.rasa_server: refusing to start Rasa's HTTP API without a token: set "
            "RASA_AUTH_TOKEN (the launcher makes one and keeps it in var/secrets/rasa_token)"
        )
    # One argument: a random token may begin with "-", which argparse takes for an option when
    # it comes as a separate word (Rasa then exits with code 2 at start-up, as CI once saw).
    return [*argv, f"--auth-token={token}"]


@functools.cache
def _action_response_validator() -> Any:
    from jsonschema.validators import validator_for
    from rasa.core.actions.action import RemoteAction

    schema = RemoteAction.action_response_format_spec()
    cls = validator_for(schema)
    cls.check_schema(schema)  # once, not at every call
    return cls(schema)


def install_fast_action_validation() -> None:
    """Same check, same error, as RemoteAction._validate_action_result; the schema compiled once."""
    from jsonschema import ValidationError
    from rasa.core.actions.action import RemoteAction
    from rasa.shared.constants import DOCS_BASE_URL

    def validate(self: RemoteAction, result: dict[str, Any]) -> bool:
        try:
            _action_response_validator().validate(result)
            return True
        except ValidationError as e:
            e.message += (
                f". Failed to validate Action server response from API, "
                f"make sure your response from the Action endpoint is valid. "
                f"For more information about the format visit "
                f"{DOCS_BASE_URL}/custom-actions"
            )
            raise e

    RemoteAction._validate_action_result = validate  # type: ignore[method-assign]


@dataclass
class _Turn:
    """One incoming message: when its wait for the action server ends, and whether the action
    server was already found unreachable (then the message's other actions do not wait again)."""

    ends_at: float
    unreachable: bool = False


_turn: contextvars.ContextVar[_Turn | None] = contextvars.ContextVar("turn", default=None)


class ActionServerUnreachable(Exception):
    """No answer from the action server in time, or no connection to it."""


def _unreachable(exc: BaseException) -> bool:
    """A refused or broken connection, or a timeout, anywhere in the exception's chain."""
    import aiohttp

    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(
            seen, (ActionServerUnreachable, asyncio.TimeoutError, aiohttp.ClientConnectionError)
        ):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _slot_mapping_actions(domain: Domain) -> set[str]:
    """Custom actions that fill slots while Rasa reads a message: Rasa goes on without them."""
    return {
        str(mapping["action"])
        for slot in domain.slots
        for mapping in slot.mappings
        if mapping.get("type") == "custom" and mapping.get("action")
    }


def _restore_form_slots(
    action_name: str, tracker: DialogueStateTracker, domain: Domain
) -> list[Event]:
    """For a failed ``validate_<form>``: the slots this message filled, back to what they were.

    Rasa has already set them from the message, unvalidated; left so, the form would take an
    unchecked value and move on. Restored, the form asks for the same slot again.
    """
    from rasa.shared.core.constants import REQUESTED_SLOT
    from rasa.shared.core.events import ActionExecuted, SlotSet, UserUttered
    from rasa.shared.core.trackers import DialogueStateTracker

    form = action_name.removeprefix("validate_")
    if not action_name.startswith("validate_") or form not in domain.form_names:
        return []
    events = list(tracker.events)
    # The form's validation call sees the slot candidates after the form's ActionExecuted.
    start = max(
        (
            i
            for i, e in enumerate(events)
            if isinstance(e, ActionExecuted) and e.action_name == form
        ),
        default=len(events),
    )
    keys = [
        e.key for e in events[start + 1 :] if isinstance(e, SlotSet) and e.key != REQUESTED_SLOT
    ]
    if not keys:
        return []
    last_message = max(
        (i for i, e in enumerate(events) if isinstance(e, UserUttered)), default=len(events)
    )
    before = DialogueStateTracker.from_events(
        tracker.sender_id, events[:last_message], slots=domain.slots
    )
    return [SlotSet(key, before.get_slot(key)) for key in dict.fromkeys(keys)]


def _apologised(tracker: DialogueStateTracker) -> bool:
    """The apology was already said for this message (a form can fail twice in one turn)."""
    from rasa.shared.core.events import BotUttered, UserUttered

    for event in reversed(tracker.events):
        if isinstance(event, UserUttered):
            return False
        if isinstance(event, BotUttered) and event.metadata.get("utter_action") == (
            ACTION_SERVER_DOWN
        ):
            return True
    return False


async def _apology(
    output_channel: OutputChannel,
    nlg: NaturalLanguageGenerator,
    tracker: DialogueStateTracker,
    domain: Domain,
) -> list[Event]:
    from rasa.core.actions.action import create_bot_utterance

    if _apologised(tracker):
        return []
    message = await nlg.generate(
        ACTION_SERVER_DOWN, tracker, output_channel.name(), domain_responses=domain.responses
    )
    if message is None:
        logger.error("no response %s in the domain: the citizen hears nothing", ACTION_SERVER_DOWN)
        return []
    message["utter_action"] = ACTION_SERVER_DOWN
    return [create_bot_utterance(message)]


def install_action_server_apology(timeout: float = DEFAULT_ACTION_TIMEOUT_SECONDS) -> None:
    """Custom actions that fail answer with an apology instead of silence, within ``timeout``.

    Rasa 3.6 waits up to 5 minutes for the action server (DEFAULT_REQUEST_TIMEOUT), and when a
    custom action fails the processor logs it and goes on with no reply. Here every message
    has ``timeout`` seconds for all its custom actions; the first action that cannot reach the
    action server ends the waiting for the others of that message. A form's validation
    rejecting a value (ActionExecutionRejection) is not a failure and goes through unchanged.
    """
    from rasa.core.actions.action import ActionExecutionRejection, RemoteAction
    from rasa.core.processor import MessageProcessor
    from rasa.shared.exceptions import RasaException

    run_remote = RemoteAction.run
    handle_message = MessageProcessor.handle_message
    if getattr(run_remote, "_apologises", False):
        return

    async def handle(self: MessageProcessor, message: Any) -> Any:
        token = _turn.set(_Turn(ends_at=time.monotonic() + timeout))
        try:
            return await handle_message(self, message)
        finally:
            _turn.reset(token)

    async def run(
        self: RemoteAction,
        output_channel: OutputChannel,
        nlg: NaturalLanguageGenerator,
        tracker: DialogueStateTracker,
        domain: Domain,
    ) -> list[Event]:
        turn = _turn.get()
        left = timeout if turn is None else turn.ends_at - time.monotonic()
        try:
            if turn is not None and turn.unreachable:
                raise ActionServerUnreachable("already unreachable for this message")
            if left <= 0:
                raise ActionServerUnreachable("this message's time for custom actions is over")
            return await asyncio.wait_for(
                run_remote(self, output_channel, nlg, tracker, domain), timeout=left
            )
        except ActionExecutionRejection:
            raise
        except Exception as exc:
            unreachable = _unreachable(exc)
            if turn is not None and unreachable:
                turn.unreachable = True
            logger.error(
                "custom action %s failed (%s: %s)",
                self.name(),
                "unreachable" if unreachable else "error",
                exc.__class__.__name__,
            )
            if self.name() in _slot_mapping_actions(domain):
                # Rasa's slot extraction logs this and goes on without the slot: no apology
                # for a message that may need no custom action at all (a greeting).
                raise RasaException(f"custom action {self.name()} failed") from exc
            restored = _restore_form_slots(self.name(), tracker, domain)
            return [*(await _apology(output_channel, nlg, tracker, domain)), *restored]

    run._apologises = True  # type: ignore[attr-defined]
    RemoteAction.run = run  # type: ignore[method-assign]
    MessageProcessor.handle_message = handle  # type: ignore[method-assign]


def install_paused_sessions_never_expire() -> None:
    """While a conversation is paused (``ConversationPaused``: queued for or held by an agent,
    actions/handoff.py), its session does not expire.

    Rasa 3.6 starts a new session when the citizen writes after ``session_expiration_time``
    without a message, and the new session's reset drops the pause: the bot would answer a
    citizen who waited an hour in the queue, while an agent holds the conversation. Once the
    console resumes the conversation, sessions expire as before.
    """
    from rasa.core.processor import MessageProcessor

    has_expired = MessageProcessor._has_session_expired
    if getattr(has_expired, "_keeps_paused", False):
        return

    def expired(self: MessageProcessor, tracker: DialogueStateTracker) -> bool:
        if tracker.is_paused():
            return False
        return has_expired(self, tracker)

    expired._keeps_paused = True  # type: ignore[attr-defined]
    MessageProcessor._has_session_expired = expired  # type: ignore[method-assign]


def action_timeout(environ: dict[str, str]) -> float:
    raw = environ.get("ACTION_TIMEOUT_SECONDS", "").strip()
    try:
        value = float(raw) if raw else DEFAULT_ACTION_TIMEOUT_SECONDS
    except ValueError:
        raise SystemExit(
            f"ACTION_TIMEOUT_SECONDS must be a number of seconds, got {raw!r}"
        ) from None
    if value <= 0:
        raise SystemExit(f"ACTION_TIMEOUT_SECONDS must be positive, got {raw!r}")
    return value


def main() -> None:
    install_pii_masking()
    sys.argv = with_auth_token(sys.argv, dict(os.environ))
    install_fast_action_validation()
    install_action_server_apology(action_timeout(dict(os.environ)))
    install_paused_sessions_never_expire()
    install_in_process_language_slot()
    install_kept_connections()
    if len(sys.argv) > 1 and sys.argv[1] == "run":
        from bot.fast_load import install_fast_model_loading

        install_fast_model_loading()  # model load 48 s -> 8 s, same predictions
        install_replaced_workers()
    from rasa.__main__ import main as rasa_main  # heavy: imported once masking is in place

    rasa_main()


if __name__ == "__main__":
    main()
