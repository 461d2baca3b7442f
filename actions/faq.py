"""FAQ entries the communications team publishes in the content service, answered without
retraining when the NLU recognises no intent of ours (the `nlu_fallback` and `out_of_scope`
rules).

The message and every published question are accent-folded with everyday abbreviations
expanded ("cccd" -> "can cuoc cong dan": nlu.components.text, the NLU's own normalisation),
then compared as character n-gram TF-IDF vectors (cosine). Below THRESHOLD the usual fallback
(actions/fallback.py) runs and the question is reported, masked, as unanswered.

The published entries come from `GET /internal/faq/published`, asked again (with the last ETag,
so usually a 304) when a fallback message arrives and the last attempt is more than
REFRESH_SECONDS old: a publish or a withdrawal counts from the next message after ~2 s. The
content service down or slow: the entries last fetched keep answering (as replies keep their
last published wording), none fetched yet: the usual fallback; never an error.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import functools
import logging
import math
import re
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml
from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher

from actions.clients import ClientSettings
from actions.common import intent_name, language
from actions.fallback import ActionClarify
from actions.out_of_scope import where_to_go
from bot.logmask import mask_pii
from nlu.components.patterns import DOSSIER_CODE
from nlu.components.text import normalise_token

logger = logging.getLogger(__name__)

# Measured on sample entries (tests/actions/test_faq.py): rephrasings without diacritics or
# with abbreviations score 0.65-1.0, unrelated questions 0.0-0.2 (with the NLU examples as
# background for the n-grams' weights; without it, "cccd" alone scored 0.6 against an entry
# about children's cards).
THRESHOLD = 0.45
REFRESH_SECONDS = 2.0
FETCH_TIMEOUT = 0.5  # one refresh; the citizen's whole message has ACTION_TIMEOUT_SECONDS
# How long a message waits for a refresh in progress (the first one reads the NLU examples,
# about a second; later ones take milliseconds): after that it is answered from the previous
# index and the refresh lands for the next message.
REFRESH_WAIT = 1.0
NLU_DIR = Path(__file__).resolve().parent.parent / "nlu"
NGRAM_SIZES = (3, 4, 5)
REPORT_TIMEOUT = 0.5
INTERNAL_HEADER = "X-Internal-Token"
MAX_REPORTED = 500  # characters of an unanswered question sent to the content service
_TOKEN = re.compile(r"[^\W_]+")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")


_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when there: 5x faster
_token = functools.lru_cache(maxsize=65536)(normalise_token)


def normalise(text: str) -> str:
    """Folded words with abbreviations expanded; long numbers and codes become one lemma."""
    return " ".join(_token(token) for token in _TOKEN.findall(text))


@functools.lru_cache(maxsize=1)
def background() -> tuple[str, ...]:
    """The NLU's training examples (vi and en), normalised: they give the n-grams every question
    shares ("o dau", "can cuoc cong dan", "khong") a low weight. Read once, off the event loop."""
    examples: set[str] = set()
    for path in sorted(NLU_DIR.glob("*/*.yml")):
        try:
            data = yaml.load(path.read_text(encoding="utf-8"), Loader=_LOADER) or {}  # noqa: S506 - a safe loader
        except (OSError, yaml.YAMLError):
            continue
        for item in data.get("nlu") or []:
            for line in str(item.get("examples") or "").splitlines():
                line = re.sub(r"\[([^\]]*)\][({][^)}]*[)}]", r"\1", line.strip())
                if line.startswith("- "):
                    examples.add(normalise(line[2:]))
    return tuple(sorted(examples))


def ngrams(text: str) -> Counter[str]:
    """Character 3-5-grams within each word padded by spaces (scikit-learn's "char_wb"):
    robust to typos, missing accents and word order."""
    found: Counter[str] = Counter()
    for word in text.split():
        padded = f" {word} "
        for size in NGRAM_SIZES:
            found.update(padded[i : i + size] for i in range(len(padded) - size + 1))
    return found


@functools.lru_cache(maxsize=1)
def background_frequencies() -> tuple[int, dict[str, int]]:
    """How many background examples hold each n-gram: counted once per process."""
    frequencies: Counter[str] = Counter()
    examples = background()
    for example in examples:
        frequencies.update(set(ngrams(example)))
    return len(examples), dict(frequencies)


Vector = dict[str, float]


class Vectors:
    """TF-IDF (sublinear tf, smoothed idf, L2 norm, as scikit-learn's TfidfVectorizer) over the
    background and ``texts``: a refresh costs only the texts, never a refit of the background."""

    def __init__(self, texts: Sequence[str]) -> None:
        total, self._background = background_frequencies()
        grams = [ngrams(text) for text in texts]
        self._own: Counter[str] = Counter()
        for counts in grams:
            self._own.update(counts.keys())
        self._documents = total + len(texts)
        self.rows = [self.vector(counts) for counts in grams]

    def vector(self, counts: Counter[str]) -> Vector:
        weights: Vector = {}
        for gram, count in counts.items():
            frequency = self._background.get(gram, 0) + self._own.get(gram, 0)
            if frequency:  # n-grams seen nowhere are dropped, as scikit-learn does
                idf = math.log((1 + self._documents) / (1 + frequency)) + 1
                weights[gram] = (1 + math.log(count)) * idf
        norm = math.sqrt(sum(w * w for w in weights.values()))
        return {gram: w / norm for gram, w in weights.items()} if norm else {}

    def of(self, text: str) -> Vector:
        return self.vector(ngrams(text))


def cosine(a: Vector, b: Vector) -> float:
    if len(b) < len(a):
        a, b = b, a
    return sum(weight * b.get(gram, 0.0) for gram, weight in a.items())


def mask(text: str) -> str:
    """What may be kept of a citizen's question: no ID number, phone, one-time code, dossier
    code or email in full (bot/logmask.py's rule, and codes and emails on top)."""
    text = _EMAIL.sub("[email]", text)
    text = DOSSIER_CODE.sub("[code]", text)
    return mask_pii(text)[:MAX_REPORTED]


def _in_window(entry: dict[str, Any], today: str) -> bool:
    start, end = entry.get("valid_from"), entry.get("valid_until")
    return (not start or start <= today) and (not end or today <= end)


@dataclass(frozen=True)
class Match:
    entry: dict[str, Any]
    score: float

    def reply(self, lang: str) -> str:
        """The entry's answer in the citizen's language, then its source link."""
        answers = self.entry.get("answer") or {}
        answer = str(answers.get(lang) or answers.get("vi") or "").strip()
        source = str(self.entry.get("source") or "").strip()
        return f"{answer}\n{source}" if source else answer


class FaqIndex:
    """Every phrasing (vi and en) of the published entries, as vectors."""

    def __init__(self, entries: Sequence[dict[str, Any]], threshold: float = THRESHOLD) -> None:
        self.entries = list(entries)
        self.threshold = threshold
        self._rows: list[int] = []  # phrasing row -> index in self.entries
        texts: list[str] = []
        for position, entry in enumerate(self.entries):
            for phrasings in (entry.get("questions") or {}).values():
                for phrasing in phrasings or []:
                    folded = normalise(str(phrasing))
                    if folded:
                        texts.append(folded)
                        self._rows.append(position)
        self._vectors = Vectors(texts) if texts else None

    def best(self, text: str, today: str | None = None) -> Match | None:
        """The closest entry valid today, if it scores at least the threshold."""
        query = normalise(text)
        if self._vectors is None or not query:
            return None
        today = today or datetime.date.today().isoformat()
        asked = self._vectors.of(query)
        found: Match | None = None
        for row, vector in enumerate(self._vectors.rows):
            score = cosine(asked, vector)
            entry = self.entries[self._rows[row]]
            if score >= self.threshold and (found is None or score > found.score):
                if _in_window(entry, today):
                    found = Match(entry, float(score))
        return found


class FaqSource:
    """The content service's published entries, refreshed on use; unanswered questions sent
    back fire-and-forget."""

    def __init__(
        self,
        base_url: str,
        token: str = "",
        *,
        refresh_seconds: float = REFRESH_SECONDS,
        timeout: float = FETCH_TIMEOUT,
        report_timeout: float = REPORT_TIMEOUT,
        threshold: float = THRESHOLD,
        refresh_wait: float = REFRESH_WAIT,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._headers = {"Accept": "application/json"}
        if token:
            self._headers[INTERNAL_HEADER] = token
        self._refresh_seconds = refresh_seconds
        self._timeout = timeout
        self._report_timeout = report_timeout
        self._threshold = threshold
        self._transport = transport
        self._clock = clock
        self._client: httpx.AsyncClient | None = None
        self._refresh_wait = refresh_wait
        self._refreshing: asyncio.Task[None] | None = None
        self._etag: str | None = None
        self._attempted_at: float | None = None
        self._pending: set[asyncio.Task[None]] = set()
        self.index: FaqIndex | None = None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None or self._client.is_closed:
            self._client = httpx.AsyncClient(
                base_url=self.base_url, headers=self._headers, transport=self._transport
            )
        return self._client

    async def current(self) -> FaqIndex | None:
        """The index, refreshed first if the last attempt is older than refresh_seconds."""
        now = self._clock()
        due = self._attempted_at is None or now - self._attempted_at >= self._refresh_seconds
        if due and (self._refreshing is None or self._refreshing.done()):
            self._attempted_at = now
            self._refreshing = asyncio.create_task(self._refresh())
        if self._refreshing is not None and not self._refreshing.done():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._refreshing), self._refresh_wait)
        return self.index

    async def _refresh(self) -> None:
        headers = {"If-None-Match": self._etag} if self._etag else {}
        try:
            answer = await self._http().get(
                "/internal/faq/published", headers=headers, timeout=self._timeout
            )
            if answer.status_code == 304:
                return
            answer.raise_for_status()
            entries = answer.json()["entries"]
            if not isinstance(entries, list):
                raise ValueError("entries is not a list")
            index = await asyncio.to_thread(FaqIndex, entries, self._threshold)
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            logger.warning(
                "FAQ entries not refreshed (%s): keeping %s",
                type(exc).__name__,
                "the last ones" if self.index else "none",
            )
            return
        self.index = index
        self._etag = answer.headers.get("ETag")

    async def lookup(self, text: str) -> Match | None:
        index = await self.current()
        return index.best(text) if index is not None else None

    def report_unanswered(self, text: str, lang: str) -> None:
        """Send the masked question without waiting for it (a failure is only logged)."""
        task = asyncio.create_task(self._report(mask(text), lang))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _report(self, masked: str, lang: str) -> None:
        try:
            answer = await self._http().post(
                "/internal/unanswered",
                json={"text": masked, "language": lang},
                timeout=self._report_timeout,
            )
            answer.raise_for_status()
        except httpx.HTTPError as exc:
            logger.info("unanswered question not recorded (%s)", type(exc).__name__)

    async def drain(self) -> None:
        """Wait for the refresh and the reports in flight (tests, shutdown)."""
        waiting = [*self._pending, *([self._refreshing] if self._refreshing else [])]
        if waiting:
            await asyncio.gather(*waiting, return_exceptions=True)


_source: FaqSource | None = None


def faq_source() -> FaqSource:
    """The process-wide source, built from the environment on first use."""
    global _source
    if _source is None:
        settings = ClientSettings.from_env()
        _source = FaqSource(settings.content_url, settings.content_token)
    return _source


def set_faq_source(value: FaqSource | None) -> None:
    """Replace the source (tests hand in one built on httpx.MockTransport)."""
    global _source
    _source = value


class ActionAnswerFaqOrFallback(Action):
    """The step of the nlu_fallback and out_of_scope rules (the NLU rarely falls back on a new
    question: it mostly calls it out of scope): a published FAQ answer if one is close enough,
    else, when the message names a neighbouring service (land, tax, visas...), where to go for
    it (actions/out_of_scope.py; answered, so not reported), else what those rules did before
    (likely topics as buttons, then the hotline; or utter_out_of_scope)."""

    def name(self) -> str:
        return "action_answer_faq_or_fallback"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        text = str(tracker.latest_message.get("text") or "")
        typed = bool(text.strip()) and not text.startswith("/")  # not a button's payload
        source = faq_source()
        match = await source.lookup(text) if typed else None
        if match is not None:
            logger.info("FAQ entry %s answered (score %.2f)", match.entry.get("id"), match.score)
            dispatcher.utter_message(text=match.reply(language(tracker)))
            return []
        elsewhere = where_to_go(tracker)
        if elsewhere is not None:
            dispatcher.utter_message(response=elsewhere)
            return []
        if typed:
            source.report_unanswered(text, language(tracker))
        if intent_name(tracker) == "out_of_scope":
            dispatcher.utter_message(response="utter_out_of_scope")
            return []
        return await ActionClarify().run(dispatcher, tracker, domain)
