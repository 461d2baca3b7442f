"""Replies: search, read, edit a draft, submit, publish, send back, roll back, history.

Each request is one transaction: a refused or invalid request changes nothing.
"""

from __future__ import annotations

from typing import Annotated, Any, Dict, List, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from console import audit
from console import content as store
from console.api import ConsoleDep, Editor, Publisher, Reader
from console.channels import channels, resolve
from console.db import transaction
from console.rasa_format import LANGUAGES, nlg_reply, render, variations_from_content

router = APIRouter(prefix="/api/responses", tags=["replies"])

MAX_TEXT = 10_000  # far above every channel's limit; the checks give the exact one
BUTTON_KEYS = ("title", "payload", "url", "type")


class Draft(BaseModel):
    """One language's text (or one channel's variant of it) and, optionally, its buttons."""

    language: Literal["vi", "en"]
    text: str | None = Field(None, max_length=MAX_TEXT)
    channel: str | None = Field(
        None, description="telegram, zalo, messenger, webchat or rest; none: the default text"
    )
    buttons: List[Dict[str, Any]] | None = Field(
        None, max_items=20, description="[{title, payload}]; omitted: unchanged; []: none"
    )
    remove: bool = Field(False, description="remove this channel's variant")


class Rollback(BaseModel):
    version: int = Field(..., ge=1)


class SendBack(BaseModel):
    note: str = Field(..., min_length=1, max_length=2000)


def _channel_name(name: str | None) -> str | None:
    if name is None or not name.strip():
        return None
    channel = resolve(name)
    if channel is None:
        known = ", ".join(c.aliases[0] if c.aliases else c.name for c in channels().values())
        raise store.Invalid(f"unknown channel {name!r} (known: {known})", ["channel: unknown"])
    return channel.name


@router.get("")
def search(
    staff: Reader,
    console: ConsoleDep,
    q: Annotated[str, Query(max_length=200, description="words or a name; accents ignored")] = "",
) -> dict[str, Any]:
    with transaction(console.engine) as session:
        return {"responses": store.search(session, q)}


@router.get("/{name}")
def read(name: str, staff: Reader, console: ConsoleDep) -> dict[str, Any]:
    with transaction(console.engine) as session:
        return store.detail(session, name, staff)


@router.put("/{name}/draft")
def save_draft(
    name: str,
    body: Draft,
    staff: Editor,
    console: ConsoleDep,
) -> dict[str, Any]:
    buttons = None
    if body.buttons is not None:
        buttons = [{k: b[k] for k in BUTTON_KEYS if k in b} for b in body.buttons]
    with transaction(console.engine) as session:
        return store.save_draft(
            session,
            staff,
            name,
            body.language,
            body.text,
            channel=_channel_name(body.channel),
            buttons=buttons,
            remove=body.remove,
            allowed_placeholders=console.slot_names,
        )


@router.delete("/{name}/draft")
def discard_draft(name: str, staff: Editor, console: ConsoleDep) -> dict[str, Any]:
    with transaction(console.engine) as session:
        return store.discard(session, staff, name)


@router.post("/{name}/submit")
def submit(name: str, staff: Editor, console: ConsoleDep) -> dict[str, Any]:
    with transaction(console.engine) as session:
        return store.submit(session, staff, name)


@router.post("/{name}/send-back")
def send_back(
    name: str,
    body: SendBack,
    staff: Publisher,
    console: ConsoleDep,
) -> dict[str, Any]:
    with transaction(console.engine) as session:
        return store.send_back(session, staff, name, body.note)


@router.post("/{name}/publish")
def publish(name: str, staff: Publisher, console: ConsoleDep) -> dict[str, Any]:
    with transaction(console.engine) as session:
        result = store.publish(session, staff, name)
    console.published.refresh()  # this process serves it at once; the others within a second
    return result


@router.post("/{name}/rollback")
def rollback(
    name: str,
    body: Rollback,
    staff: Publisher,
    console: ConsoleDep,
) -> dict[str, Any]:
    with transaction(console.engine) as session:
        result = store.rollback(session, staff, name, body.version)
    console.published.refresh()
    return result


@router.get("/{name}/versions")
def versions(name: str, staff: Reader, console: ConsoleDep) -> dict[str, Any]:
    with transaction(console.engine) as session:
        return {"name": name, "versions": store.history(session, name, staff)}


@router.get("/{name}/preview")
def preview(
    name: str,
    staff: Reader,
    console: ConsoleDep,
    version: Annotated[
        int | None, Query(ge=1, description="default: the draft, else the live")
    ] = None,
) -> dict[str, Any]:
    """What each channel would send, per language, as the NLG endpoint renders it (slots
    appear as their {placeholders})."""
    with transaction(console.engine) as session:
        found = store.detail(session, name, staff)
        chosen = found["working"] or found["live"]
        if version is not None:
            by_number = {v["version"]: v for v in store.history(session, name, staff)}
            if version not in by_number:
                raise store.NotFound(f"{name} has no version {version}")
            chosen = by_number[version]
    variations = variations_from_content(chosen["content"])
    shown: dict[str, Any] = {}
    for language in LANGUAGES:
        shown[language] = {}
        for channel in channels().values():
            message = render(variations, name, {"language": language}, channel.name, {})
            shown[language][channel.name] = nlg_reply(message) if message else None
    return {"name": name, "version": chosen["version"], "state": chosen["state"], "channels": shown}


@router.get("/{name}/audit")
def history_of_changes(name: str, staff: Reader, console: ConsoleDep) -> dict[str, Any]:
    with transaction(console.engine) as session:
        store.get_response(session, name)
        return {"name": name, "entries": audit.entries(session, target=f"response:{name}")}
