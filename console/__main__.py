"""`python -m console`: the content service (Rasa's NLG endpoint) and the console's JSON API on
BIND_HOST:STAFF_PORT. `python -m console users add EMAIL --role ROLE` makes an account (the
password is asked, or read from standard input when it is not a terminal); `users disable EMAIL`
ends its sessions and refuses its sign-in, `users enable EMAIL` undoes that."""

from __future__ import annotations

import argparse
import getpass
import logging
import sys
from collections.abc import Sequence

from bot.logmask import install_pii_masking
from console.settings import ROLES, ConsoleSettings, SettingsError

logger = logging.getLogger("console")


def _quiet_rasa_templates() -> None:
    """Rasa's interpolator reports every button payload with JSON braces as a missing slot,
    through structlog, with a traceback; the bot logs the same. Here it is only noise."""
    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))


def serve(settings: ConsoleSettings) -> int:
    import uvicorn

    from console.app import create_app

    settings.check()
    _quiet_rasa_templates()
    app = create_app(settings)
    logger.info("content service and staff console on http://%s:%d", settings.host, settings.port)
    if settings.sandbox_mode:
        logger.warning("sandbox mode: demo staff accounts exist (README, 'Staff console')")
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        ws="none",
        access_log=False,  # paths only would be harmless, but nothing per request is needed
        log_config=None,
    )
    return 0


def add_user(settings: ConsoleSettings, email: str, role: str) -> int:
    from console.auth import AccountError
    from console.auth import add_user as add
    from console.db import create_schema, make_engine, transaction

    if sys.stdin.isatty():
        password = getpass.getpass(f"password for {email}: ")
        if getpass.getpass("again: ") != password:
            print("the two passwords differ", file=sys.stderr)
            return 1
    else:
        password = sys.stdin.readline().rstrip("\n")
    engine = make_engine(settings.db_url)
    create_schema(engine)
    try:
        with transaction(engine) as session:
            user = add(session, email, password, role, actor="system:cli")
            print(f"{user.email} ({user.role}) can sign in now")
    except AccountError as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


def set_disabled(settings: ConsoleSettings, email: str, disabled: bool) -> int:
    from console.auth import AccountError
    from console.auth import set_disabled as change
    from console.db import create_schema, make_engine, transaction

    engine = make_engine(settings.db_url)
    create_schema(engine)
    try:
        with transaction(engine) as session:
            user = change(session, email, disabled, actor="system:cli")
            print(f"{user.email} is {'disabled' if disabled else 'enabled'}")
    except AccountError as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    install_pii_masking()
    parser = argparse.ArgumentParser(prog="python -m console", description=__doc__)
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("serve", help="serve (the default)")
    users = commands.add_parser("users", help="staff accounts")
    users_commands = users.add_subparsers(dest="users_command", required=True)
    add = users_commands.add_parser("add", help="add an account")
    add.add_argument("email")
    add.add_argument("--role", required=True, choices=ROLES)
    for name, what in (
        ("disable", "disable an account: its sessions end, it cannot sign in"),
        ("enable", "enable a disabled account"),
    ):
        users_commands.add_parser(name, help=what).add_argument("email")
    args = parser.parse_args(argv)
    try:
        settings = ConsoleSettings.from_env()
    except SettingsError as exc:
        print(f"console: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if args.command == "users" and args.users_command in ("disable", "enable"):
        return set_disabled(settings, args.email, args.users_command == "disable")
    if args.command == "users":
        return add_user(settings, args.email, args.role)
    try:
        return serve(settings)
    except SettingsError as exc:
        logger.error("%s", exc)
        return 2


if __name__ == "__main__":
    sys.exit(main())
