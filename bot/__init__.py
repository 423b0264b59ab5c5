"""The bot: a platform-neutral command core and its Telegram, Discord and console front-ends."""
