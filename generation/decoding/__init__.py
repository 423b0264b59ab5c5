"""Decoding: how a model turns a prompt into tweets.

The batched sampling loop and its per-step logits rules (penalties, bans, topic and contrast
guidance), the lean GPT-2 forward and its int8 layers, and the scoring and ranking of finished
candidates. Nothing here knows about queues, requests arriving or HTTP: that is ``serving``.
"""
