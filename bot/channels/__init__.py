"""Custom Rasa input channels (Telegram via python-telegram-bot, Zalo OA) and their helpers.

Rasa imports a channel by the module path named in credentials.yml, e.g.
``bot.channels.telegram.TelegramInput``; nothing here runs at import time.
"""
