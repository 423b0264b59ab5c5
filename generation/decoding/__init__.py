"""Decoding: how a model turns a prompt into tweets.

The batched sampling loop, its per-row state and per-step logits rules (penalties, bans, topic
and contrast guidance), the lean GPT-2 forward and its int8 layers, the CUDA graphs a step is
replayed as, and the scoring and ranking of finished candidates. Nothing here knows about queues, requests arriving or HTTP: that is ``serving``.
"""
