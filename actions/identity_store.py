"""What identity proof leaves behind, kept in the action server and never in the tracker.

A conversation that is verifying holds its full ID number and the verification id here; one that
has verified holds the identity API's token and the citizen's name here. Both are keyed by the
conversation (the channel-namespaced sender id) and by a random handle whose only copy outside
this store is a slot of that conversation's current session. So:

- the tracker store never sees a token, a full ID number or a verification id;
- a handle copied into another conversation unlocks nothing (the key is the pair);
- a new session starts without the slot (``carry_over_slots_to_new_session: false``), so
  verification never outlives the session; goodbye and "stop" drop the entry; entries expire.

One store per action-server process (in memory): a restart of the action server ends every
verification, and the citizen is told to verify again. Several action servers need a shared
store (issue: scaled mode).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from rasa_sdk import Tracker

PENDING_LIFETIME_SECONDS = 900.0  # a verification not completed within this is forgotten
MAX_ENTRIES = 100_000


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


class IdentityStore:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._entries: OrderedDict[str, _Entry] = OrderedDict()

    def _entry(self, conversation: str, handle: str | None) -> _Entry | None:
        entry = self._entries.get(conversation)
        if entry is None or not handle or not hmac.compare_digest(entry.handle, handle):
            return None
        return entry

    def start(self, conversation: str, id_number: str, verification_id: str) -> str:
        """Record a sent code; returns the handle to keep in the conversation's slot."""
        handle = secrets.token_urlsafe(16)
        pending = Pending(id_number, verification_id, self.clock() + PENDING_LIFETIME_SECONDS)
        self._entries[conversation] = _Entry(handle=handle, pending=pending)
        self._entries.move_to_end(conversation)
        while len(self._entries) > MAX_ENTRIES:
            self._entries.popitem(last=False)
        return handle

    def pending(self, conversation: str, handle: str | None) -> Pending | None:
        entry = self._entry(conversation, handle)
        if entry is None or entry.pending is None:
            return None
        if entry.pending.expires_at <= self.clock():
            entry.pending = None
            return None
        return entry.pending

    def prove(self, conversation: str, handle: str | None, proof: Proof) -> bool:
        """Replace the pending verification by its proof (same handle); False if it is gone."""
        entry = self._entry(conversation, handle)
        if entry is None:
            return False
        entry.pending = None
        entry.proof = proof
        return True

    def proof(self, conversation: str, handle: str | None) -> Proof | None:
        entry = self._entry(conversation, handle)
        if entry is None or entry.proof is None:
            return None
        if entry.proof.expires_at <= self.clock():
            self._entries.pop(conversation, None)
            return None
        return entry.proof

    def forget(self, conversation: str) -> None:
        self._entries.pop(conversation, None)


_store: IdentityStore | None = None


def identity_store() -> IdentityStore:
    """The process-wide store, made on first use."""
    global _store
    if _store is None:
        _store = IdentityStore()
    return _store


def set_identity_store(store: IdentityStore | None) -> None:
    """Replace the store (tests inject a clock)."""
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
