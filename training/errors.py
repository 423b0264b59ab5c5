"""The one error type the training commands raise for bad input.

The CLI turns it into a single line on stderr and exit status 2, so a user who points a command
at the wrong file or column reads what is wrong instead of a traceback.
"""

from __future__ import annotations


class InputError(ValueError):
    """Bad input: a missing file or column, an empty corpus, an unknown label."""
