"""Measuring: benchmarks of the engine and the servers, the int8 quality check, the GPU check.

Nothing in serving or decoding imports from here.
"""
