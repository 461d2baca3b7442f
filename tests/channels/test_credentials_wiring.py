"""The blocks of bot/credentials.yml load in Rasa and coexist."""

from __future__ import annotations

import uuid

from rasa.core.channels.channel import register
from rasa.core.run import create_http_input_channels
from sanic import Sanic

from bot.channels.messenger import MessengerInput
from bot.channels.rest import DevRestInput
from bot.channels.telegram import TelegramInput
from bot.channels.webchat import WebChatInput
from bot.channels.zalo import ZaloInput
from bot.settings import ROOT

CREDENTIALS = (ROOT / "bot" / "credentials.yml").read_text(encoding="utf-8")


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
        "WEBCHAT_SECRET": "web-secret",
    }.items():
        monkeypatch.setenv(name, value)
    credentials = tmp_path / "credentials.yml"
    credentials.write_text(CREDENTIALS, encoding="utf-8")

    channels = create_http_input_channels(None, str(credentials))

    names = [channel.name() for channel in channels]
    assert names == ["rest", "webchat", "telegram_ptb", "zalo", "facebook"]
    # Rasa's own "rest" (client-chosen senders in every namespace) is not among them
    assert isinstance(channels[0], DevRestInput) and isinstance(channels[1], WebChatInput)
    telegram = next(c for c in channels if isinstance(c, TelegramInput))
    zalo = next(c for c in channels if isinstance(c, ZaloInput))
    assert telegram.settings.token == "42:token"
    assert zalo.settings.oa_secret_key == "key"
    assert isinstance(channels[4], MessengerInput)  # Rasa's FacebookInput with the agent route
    assert channels[4].fb_secret == "app-secret"
    assert channels[4].fb_access_token == "page-token"

    Sanic.test_mode = True
    app = Sanic(f"wiring-{uuid.uuid4().hex[:8]}", configure_logging=False)
    register(channels, app, route="/webhooks/")
    paths = {route.path for route in app.router.routes}
    for name in ("telegram_ptb", "zalo", "facebook", "rest", "webchat"):
        assert f"webhooks/{name}/webhook" in paths
        assert f"webhooks/{name}/agent" in paths
