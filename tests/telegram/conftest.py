"""The Telegram tests run the real python-telegram-bot on the real app against a fake Bot API;
their fixtures (``api``, ``start_telegram``) live in ``tests/support/bots.py`` with the other
platforms'. The helpers are named here too for the tests that import them from this module."""

from __future__ import annotations

from tests.support.bots import running_app, running_bot, telegram_config

__all__ = ["running_app", "running_bot", "telegram_config"]
