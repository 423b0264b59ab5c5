"""Helpers the tests share: tiny models built on the spot, config files, service probes."""
