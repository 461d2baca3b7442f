"""What each conversation says: a stock `rasa init` conversation, and the project's journey."""

from __future__ import annotations

import itertools
from datetime import datetime
from typing import Any

import httpx

from bench.load import Turn

# The stock bot's own paths (data/stories.yml and rules.yml of `rasa init`), walked in one
# conversation, worded a little apart from its training examples: 11 messages, like ours, in
# two parts (a conversation with ``turn.start == 1`` begins with the second).
STOCK_PARTS = [
    [
        "hello",
        "I am sad",
        "no",  # did that help? no -> goodbye (sad path 2)
        "hi again",
        "I'm feeling very sad today",
        "yes",  # did that help? yes -> happy (sad path 1)
    ],
    [
        "are you a bot?",
        "good evening",
        "I am feeling great",  # happy path
        "are you a human?",
        "bye",
    ],
]


async def stock_script(turn: Turn) -> None:
    for part in STOCK_PARTS[turn.start :]:
        for text in part:
            await turn.say(text)


def texts(replies: list[dict[str, Any]]) -> str:
    return "\n".join(str(r.get("text") or "") for r in replies)


def buttons(replies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [b for r in replies for b in r.get("buttons") or []]


# The test citizens of README.md, each with a dossier of theirs (Dung has none: she sees the
# public status of An's after verifying, which is one more path of the same load).
CITIZENS = [
    ("001090001234", "0912345678", "000.00.10.H26-261110-0001"),
    ("079185005678", "0987654321", "000.00.20.H29-261115-0003"),
    ("031200001111", "0903111222", "H31.05-260915-0006"),
    ("048195002222", "0935222333", "000.00.10.H26-261110-0001"),
]
VERIFIED = "Xác thực thành công"
SLACK = 0.05  # seconds of clock slack around the ID-number request (same machine, same clock)


class ProjectScript:
    """Greeting and a procedure question with its follow-ups (part 1); a dossier status
    question with identity verification, the code read from the sandbox outbox, and goodbye
    (part 2; a conversation with ``turn.start == 1`` begins there).

    Conversations take the four test citizens in turn, so several verify the same citizen at
    once and the outbox holds their codes side by side, with nothing saying whose each is. A
    conversation takes the oldest code sent to its phone while its own ID-number message was
    being answered that no other conversation has taken (conversations that asked earlier
    mostly get their answer earlier, so first come, first served pairs most codes right); a
    wrong code is given back and the next one tried, at most 3 (a code's tries). Each outcome
    is counted in the level's notes, so an unlucky pick is reported, not hidden.
    """

    def __init__(self) -> None:
        self._next = itertools.count()
        self._used: set[str] = set()  # codes that verified some conversation
        self._taken: set[str] = set()  # codes some conversation is trying now

    async def __call__(self, turn: Turn) -> None:
        index = next(self._next)
        id_number, phone, dossier = CITIZENS[index % len(CITIZENS)]
        if turn.start == 0:
            await turn.say("xin chào")
            asked = await turn.say("làm căn cước cần giấy tờ gì")
            options = buttons(asked)
            if options:  # the bot asks which case: answer with one of its buttons
                await turn.say(str(options[index % len(options)]["payload"]))
            await turn.say("lệ phí bao nhiêu")
            await turn.say("mất bao lâu")
            await turn.say("nộp online được không")
        await turn.say(f"hồ sơ {dossier} đến đâu rồi")
        await turn.say("/affirm")
        before = _now()
        await turn.say(id_number)
        after = _now()
        await self._verify(turn, phone, before - SLACK, after + SLACK)
        await turn.say("tạm biệt")

    async def _verify(self, turn: Turn, phone: str, start: float, end: float) -> None:
        tried: set[str] = set()
        for attempt in range(3):
            code = await self._candidate(turn, phone, start, end, tried)
            if code is None:
                turn.note("no code left to try" if attempt else "no code found")
                return
            tried.add(code)
            self._taken.add(code)  # no await since the choice: no one else took it meanwhile
            try:
                reply = await turn.say(code)
            finally:
                self._taken.discard(code)
            if VERIFIED in texts(reply):
                self._used.add(code)
                turn.note("verified" if attempt == 0 else f"verified at try {attempt + 1}")
                return
            turn.note("wrong code tried")
        turn.note("not verified")

    async def _candidate(
        self, turn: Turn, phone: str, start: float, end: float, tried: set[str]
    ) -> str | None:
        try:
            response = await turn.client.get(
                f"{turn.system.identity_url}/sandbox/sms", params={"phone": phone}, timeout=30
            )
            response.raise_for_status()
            messages = response.json()["messages"][::-1]  # oldest first
        except (httpx.HTTPError, ValueError, KeyError):
            turn.error("SMS outbox", turn.result.measuring())
        candidates = [
            str(m["code"])
            for m in messages
            if start <= datetime.fromisoformat(m["sent_at"]).timestamp() <= end
        ]
        candidates = [c for c in candidates if c not in tried and c not in self._used]
        free = [c for c in candidates if c not in self._taken]
        ranked = free or candidates
        return ranked[0] if ranked else None


def _now() -> float:
    return datetime.now().timestamp()
