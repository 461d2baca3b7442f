"""Checks a draft must pass before it is saved: its placeholders, its length on each channel, its
links and buttons. Each problem is one clear sentence; the API answers them with 422."""

from __future__ import annotations

import ipaddress
import re
from string import Formatter
from typing import Any
from urllib.parse import urlsplit

from console.channels import channels, module_constant
from console.rasa_format import LANGUAGES, PLACEHOLDER, Content, placeholders

# Anything that looks meant as a link: a scheme with "//", "www.", or http typed wrongly.
_LINKISH = re.compile(
    r"(?i)(?:\b[a-z][a-z0-9+.\-]*://|\bwww\.|\bhttps?:(?!//)|\bhttps?//)[^\s<>\"'`]*"
)
_TRAILING = ".,;:!?)]}»"
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


def button_title_limit() -> int:
    return int(module_constant("zalo", "MAX_BUTTON_TITLE"))  # type: ignore[call-overload]


def link_problem(link: str) -> str | None:
    """Why ``link`` is not a well-formed http(s) address, or None."""
    candidate = link.rstrip(_TRAILING)
    if candidate.lower().startswith("www."):
        candidate = "https://" + candidate
    try:
        parts = urlsplit(candidate)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        return f"{link!r} is not a well-formed address"
    if not parts.scheme:
        return f"{link!r} is not a well-formed address (write it as https://...)"
    if parts.scheme.lower() not in ("http", "https"):
        return f"{link!r}: only http:// and https:// links are allowed"
    if not candidate.lower().startswith(parts.scheme.lower() + "://"):
        return f"{link!r} is not a well-formed address (write it as https://...)"
    host = parts.hostname or ""
    if not host:
        return f"{link!r} has no host name"
    try:
        ipaddress.ip_address(host)
        return None
    except ValueError:
        pass
    try:
        ascii_host = host.encode("idna").decode("ascii")
    except UnicodeError:
        return f"{link!r} has an invalid host name"
    labels = ascii_host.split(".")
    if len(labels) < 2 or not all(_LABEL.match(label) for label in labels):
        return f"{link!r} has an invalid host name"
    if not re.fullmatch(r"[a-z]{2,63}|xn--[a-z0-9-]+", labels[-1]):
        return f"{link!r} has an invalid host name"
    return None


class _AnyValue(dict):  # type: ignore[type-arg]
    """Every key has a value: what a conversation with every slot set gives Rasa."""

    def __missing__(self, key: object) -> str:
        return ""


def brace_problem(text: str) -> str | None:
    """Why Rasa's interpolator (rasa/core/nlg/interpolator.py) cannot fill ``text`` in, or None.

    It turns each `{name}` into `{0[name]}` and calls `str.format`: a `{` or `}` that is not
    part of a placeholder raises (the NLG request failed with 500), and an empty `{}` is filled
    with every value of the conversation (the citizen would read all their slots)."""
    converted = PLACEHOLDER.sub(r"{0[\1]}", text or "")
    try:
        if any(field == "" for _, field, _, _ in Formatter().parse(converted)):
            return "'{}' names no value: write the value's name inside, as {dossier_code}"
        converted.format(_AnyValue())
    except KeyError:
        return None  # Rasa shows such a text as it is
    except (ValueError, IndexError, TypeError, AttributeError) as exc:
        if "'}'" in str(exc) and "Single '}'" in str(exc):
            return "a '}' has no '{' before it: write a value as {name}, or leave the brace out"
        if "'{'" in str(exc) or "expected '}'" in str(exc):
            return "a '{' is not closed: write a value as {name}, or leave the brace out"
        return "its braces are not {name} placeholders Rasa can fill in: check each { and }"
    return None


def links_in(text: str) -> list[str]:
    return [m.group(0) for m in _LINKISH.finditer(text or "")]


def _messages(content: Content) -> list[tuple[str, str | None, dict[str, Any]]]:
    """(language, channel or None, message) of every message in ``content``."""
    found: list[tuple[str, str | None, dict[str, Any]]] = []
    for language in LANGUAGES:
        entry = content.get(language)
        if not entry:
            continue
        found.append((language, None, entry))
        for channel, message in sorted((entry.get("channels") or {}).items()):
            found.append((language, channel, message))
    return found


def _where(language: str, channel: str | None) -> str:
    if channel is None:
        return f"{language} text"
    known = channels().get(channel)
    return f"{language} {known.label if known else channel} variant"


def _counterpart(content: Content, language: str, channel: str | None) -> dict[str, Any] | None:
    entry = content.get(language)
    if not entry:
        return None
    if channel is not None and channel in (entry.get("channels") or {}):
        return dict(entry["channels"][channel])
    return dict(entry)


def check_content(content: Content, live: Content | None, allowed: set[str]) -> list[str]:
    """Every problem of ``content`` (empty when it may be saved).

    ``live`` is the published content (its placeholders must stay); ``allowed`` the names a
    placeholder may use (the domain's slots, and whatever the reply already used).
    """
    problems: list[str] = []
    known_channels = channels()
    for language in LANGUAGES:
        if not (content.get(language) or {}).get("text", "").strip():
            problems.append(f"{language} text is empty: every reply needs both languages")
    for language, channel, message in _messages(content):
        where = _where(language, channel)
        text = str(message.get("text") or "")
        if channel is not None and channel not in known_channels:
            problems.append(f"{where}: unknown channel {channel!r}")
            continue
        if channel is not None and not text.strip():
            problems.append(f"{where}: the text is empty")
        published = _counterpart(live, language, channel) if live else None
        if published is not None:
            missing = placeholders(published.get("text")) - placeholders(text)
            for name in sorted(missing):
                problems.append(
                    f"{where}: keep the placeholder {{{name}}} of the published text "
                    f"(it is filled in for each citizen)"
                )
        for name in sorted(placeholders(text) - allowed):
            problems.append(
                f"{where}: {{{name}}} is not a value this reply receives "
                f"(known: {', '.join('{' + n + '}' for n in sorted(allowed)) or 'none'})"
            )
        # A channel without its own variant shows the language's default text.
        if channel is None:
            limited = [
                c
                for c in known_channels.values()
                if c.text_limit is not None and c.name not in (message.get("channels") or {})
            ]
        else:
            limited = [c for c in [known_channels[channel]] if c.text_limit is not None]
        for target in limited:
            assert target.text_limit is not None
            if len(text) > target.text_limit:
                problems.append(
                    f"{where} is {len(text)} characters: {target.label} shows at most "
                    f"{target.text_limit} ({target.source}); shorten it"
                    + (f" or add a {target.label} variant" if channel is None else "")
                )
        brace = brace_problem(text)
        if brace:
            problems.append(f"{where}: {brace}")
        for link in links_in(text):
            problem = link_problem(link)
            if problem:
                problems.append(f"{where}: {problem}")
        problems += _button_problems(where, message.get("buttons"))
    return problems


def _button_problems(where: str, buttons: Any) -> list[str]:
    if buttons in (None, []):
        return []
    if not isinstance(buttons, list):
        return [f"{where}: buttons must be a list"]
    problems = []
    limit = button_title_limit()
    for number, button in enumerate(buttons, 1):
        if not isinstance(button, dict):
            problems.append(f"{where}: button {number} must have a title and a payload")
            continue
        title = button.get("title")
        for key in ("title", "payload", "url"):  # Rasa fills placeholders in buttons too
            value = button.get(key)
            brace = brace_problem(value) if isinstance(value, str) else None
            if brace:
                problems.append(f"{where}: button {number}'s {key}: {brace}")
        if not isinstance(title, str) or not title.strip():
            problems.append(f"{where}: button {number} has no title")
        elif len(title) > limit:
            problems.append(
                f"{where}: button {number}'s title is {len(title)} characters, at most {limit}"
                f" (bot/channels/zalo.py MAX_BUTTON_TITLE)"
            )
        payload, url = button.get("payload"), button.get("url")
        if url is not None:
            problem = link_problem(str(url)) if isinstance(url, str) else "url must be text"
            if problem:
                problems.append(f"{where}: button {number}: {problem}")
        elif not isinstance(payload, str) or not payload.strip():
            problems.append(f"{where}: button {number} has no payload (an /intent or a link)")
        elif links_in(payload):
            for link in links_in(payload):
                problem = link_problem(link)
                if problem:
                    problems.append(f"{where}: button {number}: {problem}")
    return problems
