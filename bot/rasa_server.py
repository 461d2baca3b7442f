"""`python -m bot.rasa_server run ...`: Rasa's own command line, with two guarantees.

- Personal data is masked in every log record of the process (bot/logmask.py), installed
  before Rasa configures its logging.
- Rasa's HTTP API is never open: `run --enable-api` takes its token from RASA_AUTH_TOKEN (the
  environment, which other users cannot read, instead of the command line, which `ps` shows)
  and refuses to start without one.
"""

from __future__ import annotations

import os
import sys

from bot.logmask import install_pii_masking


def with_auth_token(argv: list[str], environ: dict[str, str]) -> list[str]:
    """``argv`` with ``--auth-token`` from the environment; SystemExit if the API would be open."""
    if len(argv) < 2 or argv[1] != "run" or "--enable-api" not in argv:
        return argv
    if "--auth-token" in argv or "-t" in argv:
        return argv
    token = environ.get("RASA_AUTH_TOKEN", "")
    if not token:
        raise SystemExit(
            "bot.rasa_server: refusing to start Rasa's HTTP API without a token: set "
            "RASA_AUTH_TOKEN (the launcher makes one and keeps it in var/secrets/rasa_token)"
        )
    return [*argv, "--auth-token", token]


def main() -> None:
    install_pii_masking()
    sys.argv = with_auth_token(sys.argv, dict(os.environ))
    from rasa.__main__ import main as rasa_main  # heavy: imported once masking is in place

    rasa_main()


if __name__ == "__main__":
    main()
