"""Text generation: prompts, model registry, the batching engine, backends and the HTTP server.

Knows nothing of chats or databases; the bot hands it prompts and gets completions back.
"""
