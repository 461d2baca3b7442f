"""Rasa's Redis lock store, made safe for several replicas.

Rasa 3.6's ``RedisLockStore`` keeps a conversation's ticket lock as one JSON value and changes
it by GET, change in Python, SET. Two replicas issuing a ticket at the same moment both read the
same lock and both write it back with "their" next number: they hold the same ticket, handle
the same conversation at once, and one of their tracker writes is lost (measured: 16
concurrent messages to one conversation on two replicas lost events in half the runs,
tests/e2e/test_scaled.py). Here every change of a lock is one optimistic Redis transaction
(WATCH the key, read, MULTI, write, EXEC; retried when another replica changed it meanwhile),
so tickets are unique and a lock is never deleted under a ticket just issued.

Configured in bot/endpoints.scaled.yml as ``type: bot.lock_store.AtomicRedisLockStore`` with
the same keys as Rasa's ``redis`` lock store.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

import redis
from rasa.core.lock import TicketLock
from rasa.core.lock_store import LOCK_LIFETIME, LockError, RedisLockStore
from rasa.utils.endpoints import EndpointConfig

T = TypeVar("T")
# A lock whose every ticket has expired is useless; Redis drops the key a little later still.
KEY_GRACE_SECONDS = 60


class AtomicRedisLockStore(RedisLockStore):
    def __init__(
        self, endpoint_config: EndpointConfig | None = None, host: str = "localhost", **kwargs: Any
    ) -> None:
        # Rasa builds a lock store named by its module path from the endpoint's config alone.
        if endpoint_config is not None:
            host = endpoint_config.url or host
            kwargs = {**endpoint_config.kwargs, **kwargs}
            kwargs.pop("type", None)
        super().__init__(host=host, **kwargs)

    def _change(
        self,
        conversation_id: str,
        change: Callable[[TicketLock | None], tuple[bool, T]],
        *,
        create: bool = False,
        lifetime: float = LOCK_LIFETIME,
    ) -> T:
        """Apply ``change`` to the stored lock atomically (None if there is none, unless
        ``create``: then a new one); it returns (keep, result): the lock it changed is saved if
        ``keep``, else the key is deleted."""
        key = self.key_prefix + conversation_id
        with self.red.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(key)
                    raw = pipe.get(key)
                    lock = TicketLock.from_dict(json.loads(raw)) if raw else None
                    if lock is None and create:
                        lock = TicketLock(conversation_id)
                    keep, result = change(lock)
                    pipe.multi()
                    if keep and lock is not None:
                        pipe.set(key, lock.dumps(), ex=int(lifetime) + KEY_GRACE_SECONDS)
                    else:
                        pipe.delete(key)
                    pipe.execute()
                    return result
                except redis.WatchError:
                    continue  # another replica changed this lock meanwhile: read it again

    def issue_ticket(self, conversation_id: str, lock_lifetime: float = LOCK_LIFETIME) -> int:
        def issue(lock: TicketLock | None) -> tuple[bool, int]:
            assert lock is not None  # create=True
            return True, lock.issue_ticket(lock_lifetime)

        try:
            return self._change(conversation_id, issue, create=True, lifetime=lock_lifetime)
        except redis.RedisError as e:
            raise LockError(f"Error while acquiring lock. Error:\n{e}") from e

    def update_lock(self, conversation_id: str) -> None:
        def drop_expired(lock: TicketLock | None) -> tuple[bool, None]:
            if lock is None:
                return False, None
            lock.remove_expired_tickets()
            return True, None

        self._change(conversation_id, drop_expired)

    def finish_serving(self, conversation_id: str, ticket_number: int) -> None:
        def remove(lock: TicketLock | None) -> tuple[bool, None]:
            if lock is None:
                return False, None
            lock.remove_ticket_for(ticket_number)
            return True, None

        self._change(conversation_id, remove)

    def cleanup(self, conversation_id: str, ticket_number: int) -> None:
        """Remove our ticket and, in the same transaction, the lock if nobody else waits."""

        def remove(lock: TicketLock | None) -> tuple[bool, None]:
            if lock is None:
                return False, None
            lock.remove_ticket_for(ticket_number)
            return lock.is_someone_waiting(), None

        self._change(conversation_id, remove)
