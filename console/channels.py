"""The output channels a reply can have a variant for, named as Rasa's output channel names
itself (the `channel` of an NLG request), with each one's text limit.

The limits are the channels' own constants in bot/channels/, read from the source (not imported:
that would load Rasa and the platform SDKs into the content service). Messenger is Rasa's own
`facebook` connector, which has no constant: 2000 characters is Messenger's Send API limit.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from functools import cache
from pathlib import Path

CHANNELS_DIR = Path(__file__).resolve().parent.parent / "bot" / "channels"
MESSENGER_TEXT_LIMIT = 2000


@dataclass(frozen=True)
class Channel:
    name: str  # Rasa's output channel name, as in the domain's `channel:` key
    label: str
    text_limit: int | None  # None: the channel itself sets no limit
    source: str  # where the limit comes from, for error messages
    aliases: tuple[str, ...] = ()


def module_constant(module: str, constant: str) -> object:
    """A top-level `NAME = literal` of bot/channels/<module>.py, without importing it."""
    tree = ast.parse((CHANNELS_DIR / f"{module}.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name) and target.id == constant:
                    return ast.literal_eval(node.value)
    raise LookupError(f"bot/channels/{module}.py has no constant {constant}")


def _from_module(module: str, label: str, aliases: tuple[str, ...], limit: bool) -> Channel:
    name = str(module_constant(module, "CHANNEL_NAME"))
    text_limit = int(module_constant(module, "TEXT_LIMIT")) if limit else None  # type: ignore[call-overload]
    source = f"bot/channels/{module}.py TEXT_LIMIT" if limit else f"bot/channels/{module}.py"
    return Channel(name, label, text_limit, source, aliases)


@cache
def channels() -> dict[str, Channel]:
    found = [
        _from_module("telegram", "Telegram", ("telegram",), limit=True),
        _from_module("zalo", "Zalo", (), limit=True),
        Channel(
            "facebook",
            "Messenger",
            MESSENGER_TEXT_LIMIT,
            "Messenger's Send API (Rasa's facebook connector)",
            ("messenger",),
        ),
        _from_module("webchat", "Web chat", ("web",), limit=False),
        _from_module("rest", "REST (development)", (), limit=False),
    ]
    return {channel.name: channel for channel in found}


def resolve(name: str) -> Channel | None:
    """A channel by its Rasa name or a common alias (telegram, messenger, web)."""
    key = name.strip().lower()
    for channel in channels().values():
        if key == channel.name or key in channel.aliases:
            return channel
    return None
