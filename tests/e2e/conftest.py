"""Starts the real stack (sandbox APIs, action server, Rasa, web chat) on free ports, once."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.launcher import Supervisor
from bot.settings import ROOT, Settings
from tests.ports import free_port

MODEL = ROOT / "models" / "current.tar.gz"


@dataclass
class Stack:
    rasa_url: str
    identity_url: str
    portal_url: str
    webchat_url: str
    var_dir: Path
    token_file: Path
    settings: Settings | None = None

    def say(self, sender: str, text: str) -> list[dict[str, Any]]:
        """A message through the development REST channel (conversation ``rest:<sender>``)."""
        response = httpx.post(
            f"{self.rasa_url}/webhooks/rest/webhook",
            json={"sender": sender, "message": text},
            timeout=60,
        )
        response.raise_for_status()
        return list(response.json())

    @property
    def rasa_token(self) -> str:
        """Rasa's API token, as local tools read it (made by the launcher at every start)."""
        if os.environ.get("RASA_AUTH_TOKEN"):  # an operator's token is never written to disk
            return os.environ["RASA_AUTH_TOKEN"]
        return self.token_file.read_text(encoding="utf-8").strip()

    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Rasa's HTTP API with its token (Rasa reads it from the ``token`` query parameter)."""
        params = {"token": self.rasa_token, **kwargs.pop("params", {})}
        return httpx.request(method, f"{self.rasa_url}{path}", params=params, timeout=60, **kwargs)

    def web_session(self) -> str:
        """A new web chat session, as the widget obtains it."""
        response = httpx.post(f"{self.rasa_url}/webhooks/webchat/session", json={}, timeout=30)
        response.raise_for_status()
        return str(response.json()["session"])

    def web_say(self, session: str, text: str) -> httpx.Response:
        return httpx.post(
            f"{self.rasa_url}/webhooks/webchat/webhook",
            json={"message": text},
            headers={"Authorization": f"Bearer {session}"} if session else {},
            timeout=60,
        )

    def latest_code(self, phone: str) -> str:
        response = httpx.get(f"{self.identity_url}/sandbox/sms", params={"phone": phone})
        response.raise_for_status()
        return str(response.json()["messages"][0]["code"])

    def logs(self) -> str:
        return "\n".join(
            p.read_text(encoding="utf-8", errors="replace")
            for p in (self.var_dir / "logs").glob("*.log")
        )


def start_stack(var_dir: Path, *, attempt: int = 1, **overrides: Any) -> tuple[Supervisor, Stack]:
    """The real launcher on free ports, in sandbox mode, with its data in ``var_dir``."""
    if not MODEL.exists():
        pytest.fail("no trained model: run `make train` (make e2e does it)")
    settings = Settings(
        host="127.0.0.1",
        rasa_port=free_port(),
        actions_port=free_port(),
        identity_port=free_port(),
        portal_port=free_port(),
        webchat_port=free_port(),
        staff_port=free_port(),
        start_sandbox=True,
        sandbox_mode=True,
        model=str(MODEL),
        var_dir=var_dir,
        **overrides,
    )
    # The suite verifies the same test citizens many times within minutes; the sandbox's rate
    # limit on codes per ID number (tested in tests/sandbox) would otherwise lock them out.
    os.environ.setdefault("MAX_CODES_PER_WINDOW", "100")
    # The desk's office hours would make the handoff tests depend on the hour of the run; the
    # closed-desk answer is tested in tests/console and tests/actions.
    os.environ.setdefault("OFFICE_HOURS", "always")
    supervisor = Supervisor(settings, str(MODEL), log_to_files=True)
    try:
        supervisor.start(timeout=300)
    except Exception as exc:
        supervisor.stop()
        for log in (var_dir / "logs").glob("*.log"):
            print(f"----- {log.name}\n{log.read_text(errors='replace')[-4000:]}")
        if attempt == 1:
            # One more try on other ports: CI once saw Rasa exit at start-up (code 2) on a
            # loaded machine and not again; a stack that fails twice fails the tests.
            print(f"----- the stack did not start ({exc}); once more on other ports")
            return start_stack(var_dir, attempt=2, **overrides)
        raise
    return supervisor, Stack(
        rasa_url=settings.rasa_url,
        identity_url=f"http://127.0.0.1:{settings.identity_port}",
        portal_url=f"http://127.0.0.1:{settings.portal_port}",
        webchat_url=settings.webchat_url,
        var_dir=var_dir,
        token_file=settings.rasa_token_file,
        settings=settings,
    )


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    supervisor, running = start_stack(tmp_path_factory.mktemp("stack"))
    yield running
    supervisor.stop()


@pytest.fixture()
def sender() -> str:
    return f"e2e-{uuid.uuid4().hex[:10]}"
