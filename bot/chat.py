"""A terminal chat against the running stack's REST channel (``make chat`` / ``make run``).

Buttons are listed with numbers; typing the number sends the button's payload.
"""

from __future__ import annotations

import os
import sys
import uuid
from typing import Any

import httpx


def render(reply: dict[str, Any], buttons: list[dict[str, Any]]) -> None:
    if reply.get("text"):
        print(f"bot> {reply['text']}")
    if reply.get("image"):
        print(f"bot> [image] {reply['image']}")
    for button in reply.get("buttons") or []:
        buttons.append(button)
        print(f"     [{len(buttons)}] {button.get('title')}")


def chat(rasa_url: str, sender: str | None = None, token: str = "") -> None:
    """Chat through the development REST channel (sandbox mode, or REST_CHANNEL_TOKEN)."""
    sender = sender or f"terminal-{uuid.uuid4().hex[:8]}"
    url = f"{rasa_url.rstrip('/')}/webhooks/rest/webhook"
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    print("Chat with the assistant (type /quit or press Ctrl-D to leave).")
    buttons: list[dict[str, Any]] = []
    with httpx.Client(timeout=60, headers=headers) as client:
        while True:
            try:
                text = input("you> ")
            except (EOFError, KeyboardInterrupt):
                print()
                return
            if text.strip() in ("/quit", "/exit"):
                return
            message = text
            if text.strip().isdigit() and 1 <= int(text.strip()) <= len(buttons):
                message = str(buttons[int(text.strip()) - 1].get("payload") or text)
            buttons = []
            try:
                response = client.post(url, json={"sender": sender, "message": message})
                response.raise_for_status()
            except httpx.HTTPError as exc:
                print(f"(the assistant is not reachable at {rasa_url}: {exc})", file=sys.stderr)
                continue
            for reply in response.json():
                render(reply, buttons)


def main() -> None:
    port = os.environ.get("RASA_PORT", "5005")
    chat(
        os.environ.get("RASA_URL", f"http://127.0.0.1:{port}"),
        token=os.environ.get("REST_CHANNEL_TOKEN", ""),
    )


if __name__ == "__main__":
    main()
