"""The Telegram front-end (python-telegram-bot): commands, buttons and inline mode on the core."""
