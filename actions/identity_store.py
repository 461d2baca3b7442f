"""What identity proof leaves behind, kept by the action server and never in the tracker.

A conversation that is verifying holds its full ID number and the verification id here; one that
has verified holds the identity API's token and the citizen's name here. Both are keyed by the
conversation (the channel-namespaced sender id) and by a random handle whose only copy outside
this store is a slot of that conversation's current session. So:

- the tracker store never sees a token, a full ID number or a verification id;
- a handle copied into another conversation unlocks nothing (the key is the pair), and the
  handle is compared in constant time;
- a new session starts without the slot (``carry_over_slots_to_new_session: false``), so
  verification never outlives the session; goodbye and "stop" drop the entry; entries expire.

Two stores, one chosen by ``identity_store_from_env`` (the only place their settings are read):

- ``SHARED_STATE_URL`` unset: ``MemoryIdentityStore``, one per action-server process; a restart
  ends every verification and the citizen is told to verify again.
- ``SHARED_STATE_URL=redis://...``: ``RedisIdentityStore``, shared by every action server, so
  the next turn may land on any of them. Each entry is one Redis string: the key is
  ``civic:identity:`` + HMAC-SHA256 of the conversation id (Redis never sees the sender id), the
  value is AES-256-GCM of the entry (handle, ID number, verification id, token, name) with the
  key as associated data (a value moved to another conversation's key does not decrypt), and
  Redis expires it when the verification or the token does. Both keys are derived (HKDF-SHA256)
  from ``IDENTITY_STORE_KEY``, required then; a new key makes every entry unreadable, which is
  the same as a restart. Nothing of an entry is ever logged.

A store that cannot answer raises ``IdentityStoreUnavailable`` (the actions tell the citizen the
service is unavailable), except ``forget``: the actions clear the handle slot at the same time,
so an entry that could not be deleted can no longer be reached, and it expires by itself.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import math
import os
import secrets
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, Protocol, TypeVar

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from rasa_sdk import Tracker
from redis.asyncio import Redis
from redis.exceptions import RedisError, WatchError

from bot.channels.state import SHARED_STATE_ENV, check_redis_url, redacted_url

logger = logging.getLogger(__name__)

PENDING_LIFETIME_SECONDS = 900.0  # a verification not completed within this is forgotten
MAX_ENTRIES = 100_000
STORE_KEY_ENV = "IDENTITY_STORE_KEY"
MIN_STORE_KEY_CHARS = 32
REDIS_KEY_PREFIX = "civic:identity:"
# A citizen hears back within ~3 s (actions/clients/budget.py); an action may call the store twice.
REDIS_TIMEOUT_SECONDS = 0.5
NONCE_BYTES = 12
_CIPHER_LABEL = b"civic identity store: AES-256-GCM of an entry/1"
_NAME_LABEL = b"civic identity store: HMAC of a conversation id/1"

Clock = Callable[[], float]
T = TypeVar("T")


class IdentityStoreUnavailable(Exception):
    """The store could not be read or written (Redis down or slow); nothing was decided."""


@dataclass(frozen=True)
class Pending:
    """A verification under way: the code was sent for this ID number."""

    id_number: str
    verification_id: str
    expires_at: float


@dataclass(frozen=True)
class Proof:
    """A completed verification: the token unlocks the citizen's own dossiers until it expires."""

    token: str
    full_name: str
    expires_at: float


@dataclass
class _Entry:
    handle: str
    pending: Pending | None = None
    proof: Proof | None = None


class IdentityStore(Protocol):
    """Pending verifications and proofs, by conversation and handle."""

    async def start(self, conversation: str, id_number: str, verification_id: str) -> str:
        """Record a sent code; returns the handle to keep in the conversation's slot."""
        ...

    async def pending(self, conversation: str, handle: str | None) -> Pending | None: ...

    async def prove(self, conversation: str, handle: str | None, proof: Proof) -> bool:
        """Replace the pending verification by its proof (same handle); False if it is gone."""
        ...

    async def proof(self, conversation: str, handle: str | None) -> Proof | None: ...

    async def forget(self, conversation: str) -> None:
        """Drop whatever this conversation holds; never raises."""
        ...

    async def aclose(self) -> None: ...


def _handle_matches(entry: _Entry | None, handle: str | None) -> bool:
    return entry is not None and bool(handle) and hmac.compare_digest(entry.handle, handle or "")


class MemoryIdentityStore:
    """The embedded default: one dictionary per action-server process (at most MAX_ENTRIES)."""

    def __init__(self, clock: Clock = time.time) -> None:
        self.clock = clock
        self._entries: OrderedDict[str, _Entry] = OrderedDict()

    def _entry(self, conversation: str, handle: str | None) -> _Entry | None:
        entry = self._entries.get(conversation)
        return entry if _handle_matches(entry, handle) else None

    async def start(self, conversation: str, id_number: str, verification_id: str) -> str:
        handle = secrets.token_urlsafe(16)
        pending = Pending(id_number, verification_id, self.clock() + PENDING_LIFETIME_SECONDS)
        self._entries[conversation] = _Entry(handle=handle, pending=pending)
        self._entries.move_to_end(conversation)
        while len(self._entries) > MAX_ENTRIES:
            self._entries.popitem(last=False)
        return handle

    async def pending(self, conversation: str, handle: str | None) -> Pending | None:
        entry = self._entry(conversation, handle)
        if entry is None or entry.pending is None:
            return None
        if entry.pending.expires_at <= self.clock():
            entry.pending = None
            return None
        return entry.pending

    async def prove(self, conversation: str, handle: str | None, proof: Proof) -> bool:
        entry = self._entry(conversation, handle)
        if entry is None:
            return False
        entry.pending = None
        entry.proof = proof
        return True

    async def proof(self, conversation: str, handle: str | None) -> Proof | None:
        entry = self._entry(conversation, handle)
        if entry is None or entry.proof is None:
            return None
        if entry.proof.expires_at <= self.clock():
            self._entries.pop(conversation, None)
            return None
        return entry.proof

    async def forget(self, conversation: str) -> None:
        self._entries.pop(conversation, None)

    async def aclose(self) -> None:
        self._entries.clear()


def _derive(secret: str, label: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=label).derive(
        secret.encode("utf-8")
    )


def _to_json(entry: _Entry) -> bytes:
    return json.dumps(asdict(entry), separators=(",", ":")).encode("utf-8")


def _from_json(data: bytes) -> _Entry:
    raw: dict[str, Any] = json.loads(data)
    pending, proof = raw.get("pending"), raw.get("proof")
    return _Entry(
        handle=str(raw["handle"]),
        pending=Pending(**pending) if pending else None,
        proof=Proof(**proof) if proof else None,
    )


class RedisIdentityStore:
    """The store shared by several action servers: one encrypted Redis string per conversation.

    ``prove`` replaces the entry only if nobody changed it since it was read (``WATCH``), so a
    proof never overwrites a newer verification of the same conversation.
    """

    def __init__(
        self,
        url: str,
        key: str,
        *,
        clock: Clock = time.time,
        timeout_seconds: float = REDIS_TIMEOUT_SECONDS,
        prefix: str = REDIS_KEY_PREFIX,
    ) -> None:
        if len(key) < MIN_STORE_KEY_CHARS:
            raise ValueError(
                f"{STORE_KEY_ENV} must be at least {MIN_STORE_KEY_CHARS} random characters"
            )
        self.url = check_redis_url(url)
        self.clock = clock
        self.timeout_seconds = timeout_seconds
        self.prefix = prefix
        self._cipher = AESGCM(_derive(key, _CIPHER_LABEL))
        self._name_key = _derive(key, _NAME_LABEL)
        self._client: Redis | None = None

    @property
    def client(self) -> Redis:
        if self._client is None:
            self._client = Redis.from_url(
                self.url,
                socket_timeout=self.timeout_seconds,
                socket_connect_timeout=self.timeout_seconds,
            )
        return self._client

    def key(self, conversation: str) -> str:
        """The Redis key of a conversation: a keyed hash, not the sender id."""
        digest = hmac.new(self._name_key, conversation.encode("utf-8"), hashlib.sha256)
        return self.prefix + digest.hexdigest()

    def _seal(self, key: str, entry: _Entry) -> bytes:
        nonce = secrets.token_bytes(NONCE_BYTES)
        return nonce + self._cipher.encrypt(nonce, _to_json(entry), key.encode())

    def _open(self, key: str, sealed: bytes | None) -> _Entry | None:
        if not sealed:
            return None
        try:
            plain = self._cipher.decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], key.encode())
            return _from_json(plain)
        except (InvalidTag, ValueError, KeyError, TypeError):
            # Another key (rotated), or not ours: unreadable, so as good as gone.
            logger.warning("identity store: an entry could not be decrypted; ignored")
            return None

    def _ttl_ms(self, expires_at: float) -> int:
        return max(1, math.ceil((expires_at - self.clock()) * 1000))

    async def _call(self, command: Callable[[], Awaitable[T]]) -> T:
        try:
            return await command()
        except (RedisError, OSError, asyncio.TimeoutError) as exc:
            if isinstance(exc, WatchError):
                raise
            raise IdentityStoreUnavailable(
                f"{redacted_url(self.url)}: {type(exc).__name__}"
            ) from exc

    async def _read(self, conversation: str, handle: str | None) -> tuple[str, _Entry | None]:
        key = self.key(conversation)
        if not handle:
            return key, None
        entry = self._open(key, await self._call(lambda: self.client.get(key)))
        return key, entry if _handle_matches(entry, handle) else None

    async def start(self, conversation: str, id_number: str, verification_id: str) -> str:
        handle = secrets.token_urlsafe(16)
        pending = Pending(id_number, verification_id, self.clock() + PENDING_LIFETIME_SECONDS)
        key = self.key(conversation)
        sealed = self._seal(key, _Entry(handle=handle, pending=pending))
        await self._call(lambda: self.client.set(key, sealed, px=self._ttl_ms(pending.expires_at)))
        return handle

    async def pending(self, conversation: str, handle: str | None) -> Pending | None:
        _, entry = await self._read(conversation, handle)
        if entry is None or entry.pending is None or entry.pending.expires_at <= self.clock():
            return None
        return entry.pending

    async def prove(self, conversation: str, handle: str | None, proof: Proof) -> bool:
        if not handle:
            return False
        key = self.key(conversation)

        async def replace() -> bool:
            async with self.client.pipeline(transaction=True) as pipe:
                await pipe.watch(key)
                entry = self._open(key, await pipe.get(key))
                if not _handle_matches(entry, handle):
                    return False
                sealed = self._seal(key, _Entry(handle=handle, proof=proof))
                pipe.multi()
                pipe.set(key, sealed, px=self._ttl_ms(proof.expires_at))
                await pipe.execute()
                return True

        try:
            return await self._call(replace)
        except WatchError:
            return False  # changed (a new code, a goodbye) while we were proving

    async def proof(self, conversation: str, handle: str | None) -> Proof | None:
        key, entry = await self._read(conversation, handle)
        if entry is None or entry.proof is None:
            return None
        if entry.proof.expires_at <= self.clock():
            await self._call(lambda: self.client.delete(key))
            return None
        return entry.proof

    async def forget(self, conversation: str) -> None:
        key = self.key(conversation)
        try:
            await self._call(lambda: self.client.delete(key))
        except IdentityStoreUnavailable as exc:
            logger.warning("identity store: an entry not deleted (%s); it expires by itself", exc)

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.close(close_connection_pool=True)


def identity_store_from_env(env: Mapping[str, str] | None = None) -> IdentityStore:
    """Redis at ``SHARED_STATE_URL`` (with ``IDENTITY_STORE_KEY``) if set, else in memory.

    Refuses a shared store without a key: proofs never reach Redis in clear.
    """
    env = os.environ if env is None else env
    url = env.get(SHARED_STATE_ENV, "").strip()
    if not url:
        return MemoryIdentityStore()
    key = env.get(STORE_KEY_ENV, "")
    if len(key) < MIN_STORE_KEY_CHARS:
        raise ValueError(
            f"{SHARED_STATE_ENV} is set, so {STORE_KEY_ENV} must be too (at least "
            f"{MIN_STORE_KEY_CHARS} random characters): proofs are encrypted with it"
        )
    return RedisIdentityStore(url, key)


_store: IdentityStore | None = None


def identity_store() -> IdentityStore:
    """The process-wide store, made from the environment on first use."""
    global _store
    if _store is None:
        _store = identity_store_from_env()
    return _store


def set_identity_store(store: IdentityStore | None) -> None:
    """Replace the store (tests inject a clock, or a Redis one)."""
    global _store
    _store = store


def conversation_key(tracker: Tracker) -> str:
    """The conversation a proof belongs to: its sender id, which each channel namespaces."""
    return str(tracker.sender_id)


def client_ref(tracker: Tracker, secret: str) -> str:
    """An opaque reference of this conversation for the identity API's per-conversation limits
    (a keyed hash: the API never learns which chat or session it is)."""
    digest = hmac.new(secret.encode(), conversation_key(tracker).encode(), hashlib.sha256)
    return "c-" + digest.hexdigest()[:40]
