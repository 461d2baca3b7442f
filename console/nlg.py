"""Rasa's NLG endpoint (`nlg:` in bot/endpoints.yml), answered from memory.

Request (rasa/core/nlg/callback.py, `nlg_request_format`)::

    {"response": "utter_greet", "id": null, "arguments": {...},
     "tracker": {"slots": {"language": "en", ...}, ...}, "channel": {"name": "telegram_ptb"}}

Answer (`nlg_response_format_spec`): `{"text", "buttons", "image", "elements", "attachment"}`
plus `custom` / `quick_replies` when the reply has them; 404 for a name that neither the store
nor the domain knows. Only the slots, the arguments and the channel name are read; the request
is never logged or stored (a tracker can hold a conversation's personal details).
"""

from __future__ import annotations

import logging
from typing import Annotated, Any, Dict

from fastapi import APIRouter, Body, Request
from fastapi.responses import JSONResponse, Response

from console.api import ConsoleDep

logger = logging.getLogger("console.nlg")

router = APIRouter(tags=["NLG (Rasa)"])


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


@router.post("/nlg")
async def nlg(body: Annotated[Dict[str, Any], Body()], console: ConsoleDep) -> JSONResponse:
    name = body.get("response")
    if not isinstance(name, str) or not name:
        return JSONResponse({"detail": "response: the name of a reply is required"}, 422)
    tracker = _dict(body.get("tracker"))
    slots = _dict(tracker.get("slots"))
    channel = _dict(body.get("channel")).get("name")
    arguments = _dict(body.get("arguments"))
    try:
        reply = console.published.render(
            name, slots, channel if isinstance(channel, str) else "", arguments
        )
    except Exception as exc:  # never the request itself in the log: it holds slot values
        logger.error("could not render %s (%s)", name, exc.__class__.__name__)
        return JSONResponse({"detail": f"could not render {name}"}, 500)
    if reply is None:
        return JSONResponse(
            {"detail": f"no reply named {name!r} in the content store or the domain"}, 404
        )
    return JSONResponse(reply)


@router.get("/nlg/published")
def published(request: Request, console: ConsoleDep) -> Response:
    """Every published reply in Rasa's response format, for the bot's fallback copy; send
    `If-None-Match` with the last ETag to get 304 while nothing changed."""
    snapshot = console.published.export()
    etag = f'"{snapshot["version"]}"'
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers={"ETag": etag})
    return JSONResponse(snapshot, headers={"ETag": etag})


@router.get("/health")
def health(console: ConsoleDep) -> dict[str, Any]:
    return {"status": "ok", "published": console.published.counter}
