"""Measuring: benchmarks of the engine and the servers, and the int8 quality check.

Nothing in serving or decoding imports from here.
"""
