"""`python -m bot.rasa_server run ...`: Rasa's own command line, with three additions.

- Personal data is masked in every log record of the process (bot/logmask.py), installed
  before Rasa configures its logging.
- Rasa's HTTP API is never open: `run --enable-api` takes its token from RASA_AUTH_TOKEN (the
  environment, which other users cannot read, instead of the command line, which `ps` shows)
  and refuses to start without one.
- The action server's answers are checked against Rasa's JSON schema with a validator built
  once, instead of `jsonschema.validate`, which checks the schema itself against the
  meta-schema at every call: that was two thirds of Rasa's CPU time (docs/PERFORMANCE.md).
"""

from __future__ import annotations

import functools
import os
import sys
from typing import Any

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


@functools.cache
def _action_response_validator() -> Any:
    from jsonschema.validators import validator_for
    from rasa.core.actions.action import RemoteAction

    schema = RemoteAction.action_response_format_spec()
    cls = validator_for(schema)
    cls.check_schema(schema)  # once, not at every call
    return cls(schema)


def install_fast_action_validation() -> None:
    """Same check, same error, as RemoteAction._validate_action_result; the schema compiled once."""
    from jsonschema import ValidationError
    from rasa.core.actions.action import RemoteAction
    from rasa.shared.constants import DOCS_BASE_URL

    def validate(self: RemoteAction, result: dict[str, Any]) -> bool:
        try:
            _action_response_validator().validate(result)
            return True
        except ValidationError as e:
            e.message += (
                f". Failed to validate Action server response from API, "
                f"make sure your response from the Action endpoint is valid. "
                f"For more information about the format visit "
                f"{DOCS_BASE_URL}/custom-actions"
            )
            raise e

    RemoteAction._validate_action_result = validate  # type: ignore[method-assign]


def main() -> None:
    install_pii_masking()
    sys.argv = with_auth_token(sys.argv, dict(os.environ))
    install_fast_action_validation()
    from rasa.__main__ import main as rasa_main  # heavy: imported once masking is in place

    rasa_main()


if __name__ == "__main__":
    main()
