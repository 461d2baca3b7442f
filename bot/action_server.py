"""Runs the rasa-sdk action server with personal data masked in its logs and one back-end
deadline per citizen message (actions/clients/budget.py)."""

from __future__ import annotations

import argparse
import logging
import os

from bot.logmask import install_pii_filter


def main() -> None:
    parser = argparse.ArgumentParser(description="Start the action server")
    parser.add_argument("--port", type=int, default=int(os.environ.get("ACTIONS_PORT", "5055")))
    args = parser.parse_args()
    logging.basicConfig(
        level=os.environ.get("LOG_LEVEL", "INFO"),
        format="%(asctime)s %(levelname)-7s %(name)s - %(message)s",
    )
    install_pii_filter()
    # httpx logs every request's URL at INFO; a confirm URL carries the verification id, which
    # the mask cannot tell from a harmless path. Back-end failures are logged by the clients.
    logging.getLogger("httpx").setLevel(max(logging.WARNING, logging.getLogger().level))
    from rasa_sdk.endpoint import run  # imported here: nothing heavy at import time

    from actions.clients import ClientSettings
    from actions.clients.budget import install as install_message_budgets

    # One message's back-end calls share one deadline (actions/clients/budget.py).
    install_message_budgets(ClientSettings.from_env().deadline)
    run("actions", port=args.port)


if __name__ == "__main__":
    main()
