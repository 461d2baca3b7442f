"""The credentials.yml blocks documented in bot/channels/README.md load in Rasa and coexist."""

from __future__ import annotations

import uuid

from rasa.core.channels.channel import register
from rasa.core.run import create_http_input_channels
from sanic import Sanic

from bot.channels.telegram import TelegramInput
from bot.channels.zalo import ZaloInput

CREDENTIALS = """
rest:

bot.channels.telegram.TelegramInput:
  token: ${TELEGRAM_BOT_TOKEN}
  webhook_secret: ${TELEGRAM_WEBHOOK_SECRET}

bot.channels.zalo.ZaloInput:
  app_id: ${ZALO_APP_ID}
  oa_secret_key: ${ZALO_OA_SECRET_KEY}
  access_token: ${ZALO_OA_ACCESS_TOKEN}

facebook:
  verify: ${FACEBOOK_VERIFY_TOKEN}
  secret: ${FACEBOOK_APP_SECRET}
  page-access-token: ${FACEBOOK_PAGE_ACCESS_TOKEN}
"""


def test_documented_credentials_create_all_channels(tmp_path, monkeypatch):
    for name, value in {
        "TELEGRAM_BOT_TOKEN": "42:token",
        "TELEGRAM_WEBHOOK_SECRET": "secret",
        "ZALO_APP_ID": "app",
        "ZALO_OA_SECRET_KEY": "key",
        "ZALO_OA_ACCESS_TOKEN": "token",
        "FACEBOOK_VERIFY_TOKEN": "verify",
        "FACEBOOK_APP_SECRET": "app-secret",
        "FACEBOOK_PAGE_ACCESS_TOKEN": "page-token",
    }.items():
        monkeypatch.setenv(name, value)
    credentials = tmp_path / "credentials.yml"
    credentials.write_text(CREDENTIALS, encoding="utf-8")

    channels = create_http_input_channels(None, str(credentials))

    assert [channel.name() for channel in channels] == ["rest", "telegram_ptb", "zalo", "facebook"]
    telegram = next(c for c in channels if isinstance(c, TelegramInput))
    zalo = next(c for c in channels if isinstance(c, ZaloInput))
    assert telegram.settings.token == "42:token"
    assert zalo.settings.oa_secret_key == "key"
    assert channels[3].fb_secret == "app-secret"  # type: ignore[attr-defined]

    Sanic.test_mode = True
    app = Sanic(f"wiring-{uuid.uuid4().hex[:8]}", configure_logging=False)
    register(channels, app, route="/webhooks/")
    paths = {route.path for route in app.router.routes}
    for name in ("telegram_ptb", "zalo", "facebook", "rest"):
        assert f"webhooks/{name}/webhook" in paths
