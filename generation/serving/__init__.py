"""Serving: requests in, tweets out.

The continuous-batching engine that feeds the decoder, the generation service the bot calls,
the backends (in-process engine or a remote completions server), the OpenAI-style HTTP server
and its Prometheus metrics.
"""
