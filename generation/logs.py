"""Log set-up shared by every long-running process (``politico serve``, ``run``, ``admin``).

It lives at the bottom layer so that the inference server, which must not import the bot, and
the bot processes write the same line format: one JSON object per line for log collectors
(``[logging] json = true``), or plain text.
"""

from __future__ import annotations

import json
import logging
import sys


class JsonLogFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message (and the traceback, if any)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(level: str, json_format: bool) -> None:
    """Send every log line to stderr in the configured format, replacing earlier set-ups."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonLogFormatter() if json_format
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    logging.basicConfig(level=level, handlers=[handler], force=True)
    # Every HTTP call (Bot API, remote endpoints) at INFO would drown the program's own lines.
    logging.getLogger("httpx").setLevel(logging.WARNING)


def quiet_model_loading() -> None:
    """Keep model loading off the terminal: transformers' progress bars ("Loading weights") and
    advisory warnings would land in the middle of a console conversation (``politico chat``)."""
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    transformers_logging.set_verbosity_error()
