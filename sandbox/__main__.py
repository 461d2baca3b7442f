"""`python -m sandbox`: run the identity and portal apps in one process until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import logging
import os
import secrets
import signal
import sys
from collections.abc import Generator, Sequence
from typing import List

import uvicorn

from sandbox.identity import create_identity_app
from sandbox.portal import create_portal_app
from sandbox.settings import Settings, SettingsError

logger = logging.getLogger("sandbox")


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signal handling to `serve_both`, which stops both."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def _port(value: str) -> int:
    port = int(value)
    if not 0 < port < 65536:
        raise argparse.ArgumentTypeError(f"invalid port {value}")
    return port


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 or localhost: only this machine can connect."""
    host = host.strip().strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # another host name: it may resolve to anything
        return False


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__)
    parser.add_argument(
        "--identity-port", type=_port, default=_port(os.environ.get("IDENTITY_PORT", "8000"))
    )
    parser.add_argument(
        "--portal-port", type=_port, default=_port(os.environ.get("PORTAL_PORT", "8001"))
    )
    parser.add_argument("--host", default=os.environ.get("SANDBOX_HOST", "127.0.0.1"))
    parser.add_argument("--log-level", default=os.environ.get("SANDBOX_LOG_LEVEL", "info"))
    return parser.parse_args(argv)


async def serve_both(servers: List[uvicorn.Server]) -> None:
    """Serve until a signal arrives (a second SIGINT forces exit) or one server stops."""
    loop = asyncio.get_running_loop()

    def stop(sig: signal.Signals) -> None:
        logger.info("received %s, shutting down", sig.name)
        for server in servers:
            if server.should_exit and sig == signal.SIGINT:
                server.force_exit = True
            server.should_exit = True

    async def run(server: uvicorn.Server) -> None:
        try:
            await server.serve()
        except SystemExit:  # uvicorn exits this way when it cannot start, e.g. port in use
            logger.error("server on port %d could not start", server.config.port)

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop, sig)
    try:
        tasks = [asyncio.create_task(run(server)) for server in servers]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for server in servers:  # if one stopped on its own, stop the other too
            server.should_exit = True
        await asyncio.gather(*tasks)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        logger.error("%s", exc)
        return 2
    if settings.sandbox_mode and not is_loopback(args.host):
        logger.error(
            "refusing to start: SANDBOX_MODE is on, which publishes every one-time code at "
            "GET /sandbox/sms, and --host %s is not a loopback address; use --host 127.0.0.1 "
            "(or ::1, localhost), or set SANDBOX_MODE=0",
            args.host,
        )
        return 2
    if not settings.token_secret:
        settings = settings.with_secret(secrets.token_urlsafe(32))
        logger.warning(
            "SANDBOX_TOKEN_SECRET is not set: generated a random one for this run "
            "(tokens will not survive a restart)"
        )
    identity = create_identity_app(settings)
    portal = create_portal_app(settings)
    servers: List[uvicorn.Server] = [
        _Server(
            uvicorn.Config(
                app,
                host=args.host,
                port=port,
                log_level=args.log_level.lower(),
                ws="none",  # no websockets (and Rasa pins an old websockets package)
                access_log=False,  # our middleware logs requests without query strings
                log_config=None,  # keep the logging set up above
            )
        )
        for app, port in ((identity, args.identity_port), (portal, args.portal_port))
    ]
    logger.info(
        "identity API on http://%s:%d, portal API on http://%s:%d",
        args.host,
        args.identity_port,
        args.host,
        args.portal_port,
    )
    if settings.sandbox_mode:
        logger.warning("sandbox mode on: every one-time code is readable at GET /sandbox/sms")
    asyncio.run(serve_both(servers))
    return 0 if all(server.started for server in servers) else 1


if __name__ == "__main__":
    sys.exit(main())
