"""Where each service listens and how they find each other; every value can be set in the
environment. Defaults run everything on one laptop."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VAR = ROOT / "var"


def _env(name: str, default: str) -> str:
    return os.environ.get(name) or default


@dataclass
class Settings:
    host: str = field(default_factory=lambda: _env("BIND_HOST", "127.0.0.1"))
    rasa_port: int = field(default_factory=lambda: int(_env("RASA_PORT", "5005")))
    actions_port: int = field(default_factory=lambda: int(_env("ACTIONS_PORT", "5055")))
    identity_port: int = field(default_factory=lambda: int(_env("IDENTITY_PORT", "8000")))
    portal_port: int = field(default_factory=lambda: int(_env("PORTAL_PORT", "8001")))
    webchat_port: int = field(default_factory=lambda: int(_env("WEBCHAT_PORT", "8080")))
    # The sandbox runs unless the actions are pointed at other (production) APIs.
    start_sandbox: bool = field(
        default_factory=lambda: (
            _env("START_SANDBOX", "1") == "1"
            and "IDENTITY_API_URL" not in os.environ
            and "PORTAL_API_URL" not in os.environ
        )
    )
    model: str = field(default_factory=lambda: _env("RASA_MODEL", str(ROOT / "models")))
    endpoints_template: str = field(
        default_factory=lambda: _env("ENDPOINTS", str(ROOT / "bot" / "endpoints.yml"))
    )
    var_dir: Path = field(default_factory=lambda: Path(_env("VAR_DIR", str(VAR))))

    @property
    def rasa_url(self) -> str:
        return f"http://{self.host}:{self.rasa_port}"

    @property
    def identity_url(self) -> str:
        return _env("IDENTITY_API_URL", f"http://{self.host}:{self.identity_port}")

    @property
    def portal_url(self) -> str:
        return _env("PORTAL_API_URL", f"http://{self.host}:{self.portal_port}")

    @property
    def webchat_url(self) -> str:
        return f"http://{self.host}:{self.webchat_port}"

    def service_env(self) -> dict[str, str]:
        """Environment every child process gets: how to reach the others, where to store."""
        env = dict(os.environ)
        env.update(
            {
                "ACTION_SERVER_URL": _env(
                    "ACTION_SERVER_URL", f"http://{self.host}:{self.actions_port}/webhook"
                ),
                "TRACKER_SQLITE_PATH": _env(
                    "TRACKER_SQLITE_PATH", str(self.var_dir / "trackers.db")
                ),
                "IDENTITY_API_URL": self.identity_url,
                "PORTAL_API_URL": self.portal_url,
                "IDENTITY_PORT": str(self.identity_port),
                "PORTAL_PORT": str(self.portal_port),
                "SANDBOX_HOST": self.host,
                "SANIC_HOST": self.host,
                "IDENTITY_DB_URL": _env(
                    "IDENTITY_DB_URL", f"sqlite:///{self.var_dir / 'sandbox' / 'identity.db'}"
                ),
                "PORTAL_DB_URL": _env(
                    "PORTAL_DB_URL", f"sqlite:///{self.var_dir / 'sandbox' / 'portal.db'}"
                ),
            }
        )
        if self.start_sandbox and not env.get("SANDBOX_TOKEN_SECRET"):
            env["SANDBOX_TOKEN_SECRET"] = os.urandom(32).hex()
        return env


_VAR_REF = re.compile(r"\$\{(\w+)\}")


def active_credentials(template: str, environ: dict[str, str]) -> str:
    """Keep the channel blocks of a credentials file whose ${VARS} are all set in ``environ``."""
    import yaml

    data = yaml.safe_load(template) or {}
    kept: dict[str, object] = {}
    for channel, config in data.items():
        names = _VAR_REF.findall(yaml.safe_dump(config)) if config else []
        if all(environ.get(n) for n in names):
            kept[channel] = config
    return yaml.safe_dump(kept, sort_keys=False)
