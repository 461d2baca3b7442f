"""What the desk asks of Rasa and the portal, and how a conversation is shown to staff.

Rasa's HTTP API (with its token, RASA_AUTH_TOKEN): the tracker of a conversation
(`GET /conversations/{id}/tracker`); the hand-back (the bot's `action_handoff_returned` run by
`POST /conversations/{id}/execute`, else a `resume` event posted to
`/conversations/{id}/tracker/events`); a `pause` event there when staff take a conversation the
bot did not hand over; the channels' agent endpoint
(`POST /webhooks/{channel}/agent`, built in bot/channels/) that sends an agent's text to the
citizen and records it in the tracker as a bot event with metadata `{"from_agent": name}`. The
portal API gives a procedure's checklist and a dossier's public status.

Everything a conversation says is masked here before it leaves the console (`mask`): ID
numbers, phones and one-time codes by bot/logmask.py's rule (the logs' and the tracker store's),
and dossier codes and emails on top (the FAQ's rule for unanswered questions).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx

from bot.logmask import mask_pii
from console.settings import ConsoleSettings
from nlu.components.patterns import DOSSIER_CODE

TIMEOUT = httpx.Timeout(3.0, connect=1.0)  # an agent waits for these; Rasa answers in ms
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
VERIFIED_MARKER = "verified"  # the otp slot once the citizen proved identity (actions/identity.py)
CODE_MASK = "[dossier code]"
MAX_ERROR = 300


def mask(text: Any) -> str:
    """A conversation's text as staff may see it: no ID number, phone, code, dossier code or
    email in full."""
    if text is None or text == "":
        return ""
    if not isinstance(text, str):
        text = str(text)
    text = _EMAIL.sub("[email]", text)
    text = DOSSIER_CODE.sub(CODE_MASK, text)
    return mask_pii(text)


class DeskError(Exception):
    """Rasa, a channel or the portal refused or did not answer; ``message`` is for the agent."""

    def __init__(self, message: str, status: int = 502) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass
class Conversation:
    """What the desk reads of a tracker."""

    conversation_id: str
    messages: list[dict[str, Any]]  # masked: {"who", "name", "text", "at"}
    slots: dict[str, Any]
    latest_intents: list[dict[str, Any]]
    latest_text: str  # the citizen's last message, unmasked: for matching suggestions only
    paused: bool
    channel: str | None = None  # the latest input channel (as actions/handoff.py reads it)
    known: bool = False  # the citizen wrote at least once (Rasa makes up a tracker for any id)

    @property
    def language(self) -> str:
        return "en" if self.slots.get("language") == "en" else "vi"

    @property
    def verified(self) -> bool:
        return self.slots.get("otp") == VERIFIED_MARKER


def read_tracker(conversation_id: str, tracker: dict[str, Any]) -> Conversation:
    messages: list[dict[str, Any]] = []
    paused = known = False
    channel = None
    for event in tracker.get("events") or []:
        kind = event.get("event")
        if kind == "user":
            known = True
            channel = event.get("input_channel") or channel
        if kind == "pause":
            paused = True
        elif kind == "resume":
            paused = False
        if kind not in ("user", "bot") or not event.get("text"):
            continue
        metadata = event.get("metadata") or {}
        agent = metadata.get("from_agent") if kind == "bot" else None
        who = "citizen" if kind == "user" else ("agent" if agent else "bot")
        messages.append(
            {
                "who": who,
                "name": mask(str(agent)) if agent else None,
                "text": mask(event.get("text")),
                "at": event.get("timestamp"),
            }
        )
    latest = tracker.get("latest_message") or {}
    ranking = latest.get("intent_ranking") or []
    intents = [
        {"name": str(i.get("name")), "confidence": round(float(i.get("confidence") or 0), 3)}
        for i in ranking[:3]
        if isinstance(i, dict) and i.get("name")
    ]
    return Conversation(
        conversation_id=conversation_id,
        messages=messages,
        slots=dict(tracker.get("slots") or {}),
        latest_intents=intents,
        latest_text=str(latest.get("text") or ""),
        paused=paused,
        channel=str(tracker.get("latest_input_channel") or channel or "") or None,
        known=known,
    )


def _error(answer: httpx.Response, what: str) -> DeskError:
    try:
        body = answer.json()
        detail = body.get("error") or body.get("message") or body.get("detail") or ""
    except ValueError:
        detail = ""
    text = mask(str(detail))[:MAX_ERROR] or f"HTTP {answer.status_code}"
    return DeskError(f"{what}: {text}")


@dataclass
class DeskClients:
    """httpx clients for Rasa and the portal; tests hand in an httpx.MockTransport."""

    settings: ConsoleSettings
    transport: httpx.AsyncBaseTransport | None = None
    _rasa: httpx.AsyncClient | None = field(default=None, init=False, repr=False)
    _portal: httpx.AsyncClient | None = field(default=None, init=False, repr=False)

    @property
    def rasa(self) -> httpx.AsyncClient:
        if self._rasa is None:
            self._rasa = httpx.AsyncClient(
                base_url=self.settings.rasa_url,
                timeout=TIMEOUT,
                transport=self.transport,
                headers={"Authorization": f"Bearer {self.settings.rasa_token}"},
            )
        return self._rasa

    @property
    def portal(self) -> httpx.AsyncClient:
        if self._portal is None:
            headers = {"Accept": "application/json"}
            if self.settings.portal_api_key:
                headers["X-API-Key"] = self.settings.portal_api_key
            self._portal = httpx.AsyncClient(
                base_url=self.settings.portal_url,
                timeout=TIMEOUT,
                transport=self.transport,
                headers=headers,
            )
        return self._portal

    async def close(self) -> None:
        for client in (self._rasa, self._portal):
            if client is not None:
                await client.aclose()
        self._rasa = self._portal = None

    def _token(self) -> dict[str, str]:
        return {"token": self.settings.rasa_token} if self.settings.rasa_token else {}

    async def conversation(self, conversation_id: str) -> Conversation:
        try:
            answer = await self.rasa.get(
                f"/conversations/{quote(conversation_id, safe=':@')}/tracker", params=self._token()
            )
        except httpx.HTTPError as exc:
            raise DeskError(f"Rasa did not answer ({exc.__class__.__name__})") from exc
        if answer.status_code != 200:
            raise _error(answer, "Rasa refused to read the conversation")
        return read_tracker(conversation_id, answer.json())

    async def send(self, channel: str, conversation_id: str, text: str, agent: str) -> None:
        """The agent's text to the citizen, through their channel (bot/channels/)."""
        try:
            answer = await self.rasa.post(
                f"/webhooks/{quote(channel, safe='')}/agent",
                json={"conversation_id": conversation_id, "text": text, "agent": agent},
            )
        except httpx.HTTPError as exc:
            raise DeskError(f"the channel did not answer ({exc.__class__.__name__})") from exc
        if answer.status_code != 200:
            raise _error(answer, f"the {channel} channel did not deliver it")

    async def _append(self, conversation_id: str, event: str, refused: str) -> None:
        try:
            answer = await self.rasa.post(
                f"/conversations/{quote(conversation_id, safe=':@')}/tracker/events",
                params=self._token(),
                json=[{"event": event}],
            )
        except httpx.HTTPError as exc:
            raise DeskError(f"Rasa did not answer ({exc.__class__.__name__})") from exc
        if answer.status_code != 200:
            raise _error(answer, refused)

    async def pause(self, conversation_id: str) -> None:
        """The bot stops answering this conversation (Rasa's ConversationPaused)."""
        await self._append(conversation_id, "pause", "Rasa refused to pause the conversation")

    async def resume(self, conversation_id: str) -> None:
        """The bot answers this conversation again (Rasa's ConversationResumed)."""
        await self._append(conversation_id, "resume", "Rasa refused to hand the conversation back")

    async def execute(self, conversation_id: str, action: str) -> None:
        """Run one of the bot's actions now, its messages sent through the citizen's channel
        (Rasa's `POST /conversations/{id}/execute?output_channel=latest`)."""
        try:
            answer = await self.rasa.post(
                f"/conversations/{quote(conversation_id, safe=':@')}/execute",
                params={**self._token(), "output_channel": "latest"},
                json={"name": action},
            )
        except httpx.HTTPError as exc:
            raise DeskError(f"Rasa did not answer ({exc.__class__.__name__})") from exc
        if answer.status_code != 200:
            raise _error(answer, f"Rasa could not run {action}")

    async def checklist(self, procedure: str, language: str) -> dict[str, Any] | None:
        """A procedure's documents, fee, time and place from the portal; None if unknown."""
        try:
            answer = await self.portal.get(
                f"/v1/procedures/{quote(procedure, safe='')}", params={"lang": language}
            )
        except httpx.HTTPError as exc:
            raise DeskError(f"the portal did not answer ({exc.__class__.__name__})") from exc
        if answer.status_code == 404:
            return None
        if answer.status_code != 200:
            raise _error(answer, "the portal refused")
        body = answer.json()
        return {
            "procedure": procedure,
            "name": body.get("name"),
            "documents": list(body.get("documents") or []),
            "fee": body.get("fee"),
            "processing_time": body.get("processing_time"),
            "where_to_submit": body.get("where_to_submit"),
            "source": body.get("source"),
        }

    async def public_status(self, code: str, language: str) -> dict[str, Any] | None:
        """The coarse public status of a dossier (no token asked, no personal detail)."""
        try:
            answer = await self.portal.get(
                f"/v1/dossiers/{quote(code, safe='')}", params={"lang": language}
            )
        except httpx.HTTPError as exc:
            raise DeskError(f"the portal did not answer ({exc.__class__.__name__})") from exc
        if answer.status_code == 404:
            return None
        if answer.status_code != 200:
            raise _error(answer, "the portal refused")
        body = answer.json()
        return {
            "status": body.get("status"),
            "status_label": body.get("status_label"),
            "updated_on": body.get("updated_on"),
        }


def markdown(
    handoff: dict[str, Any], conversation: Conversation, notes: list[dict[str, Any]]
) -> str:
    """The masked transcript for a ticket."""
    lines = [
        f"# Conversation handed to a person ({handoff['channel']}, {handoff['language']})",
        "",
        f"- Handoff: {handoff['handoff_id']}",
        f"- Summary: {handoff['summary']}",
        f"- Agent: {handoff.get('agent') or 'none yet'}",
        f"- Status: {handoff['status']}",
        "",
        "## Transcript (personal data masked)",
        "",
    ]
    labels = {"citizen": "Citizen", "bot": "Bot"}
    for message in conversation.messages:
        who = labels.get(message["who"]) or f"Agent {message.get('name') or ''}".strip()
        text = message["text"].replace("\n", "\n  ")
        lines.append(f"- **{who}**: {text}")
    if notes:
        lines += ["", "## Internal notes", ""]
        lines += [f"- {n['author']}: {n['text']}" for n in notes]
    return "\n".join(lines) + "\n"
