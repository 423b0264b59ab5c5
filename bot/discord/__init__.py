"""The Discord front-end (discord.py): slash commands and buttons on the core."""
