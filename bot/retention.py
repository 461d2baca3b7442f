"""`python -m bot.retention` (`make retention`): delete conversations idle for RETENTION_DAYS now.

Rasa's tracker store does the same by itself once an hour (bot/tracker_store.py); this runs it
at once, against the store the endpoints file names (SQLite by default, PostgreSQL when scaled).
"""

from __future__ import annotations

import os
import time

from bot.settings import Settings
from bot.tracker_store import DAY, RedactingTrackerStore


def main() -> None:
    from rasa.core.tracker_store import TrackerStore
    from rasa.core.utils import AvailableEndpoints

    settings = Settings()
    os.environ.update({k: v for k, v in settings.service_env().items() if k not in os.environ})
    endpoints = AvailableEndpoints.read_endpoints(settings.endpoints_template)
    store = TrackerStore.create(endpoints.tracker_store)
    inner = getattr(store, "_tracker_store", store)  # Rasa may wrap it
    if not isinstance(inner, RedactingTrackerStore):
        raise SystemExit(f"the tracker store is {type(inner).__name__}, not RedactingTrackerStore")
    deleted = inner.purge(time.time() - settings.retention_days * DAY)
    print(f"retention: deleted {deleted} conversations idle for {settings.retention_days} days")


if __name__ == "__main__":
    main()
