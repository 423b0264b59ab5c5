"""Fail a test on any log record at ERROR or above that it did not say it expects.

The core turns every exception into a polite reply, and front-ends, the spool and the
heartbeat log a failure and carry on: a bug there reaches a test as an ordinary-looking reply,
and reaches the log as an ERROR line. So every test in this process is watched (setup, call and
teardown), and one that logs at ERROR fails, unless it is marked::

    @pytest.mark.expect_errors(r"unexpected error handling")

Each argument is a regular expression searched in ``"<logger>: <message>"`` and in the
exception's one-line description; a record that matches none still fails the test. With no
argument any error is allowed (for tests that log many on purpose). A pytest plugin, loaded by
``tests/conftest.py``.
"""

from __future__ import annotations

import logging
import re
import traceback
from collections.abc import Generator

import pytest

MARKER = "expect_errors"


class ErrorRecords(logging.Handler):
    """Keeps every record at ERROR or above that reaches the root logger."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


RECORDS = pytest.StashKey[ErrorRecords]()


def describe(record: logging.LogRecord) -> str:
    """What the patterns are searched in: the logger, the message and the exception, if any."""
    text = f"{record.name}: {record.getMessage()}"
    if record.exc_info and record.exc_info[1] is not None:
        text += "\n" + "".join(traceback.format_exception_only(record.exc_info[1])).strip()
    return text


def unexpected(item: pytest.Item, records: list[logging.LogRecord]) -> list[str]:
    """The records ``item`` did not declare with ``expect_errors``, described."""
    marker = item.get_closest_marker(MARKER)
    if marker is not None and not marker.args:
        return []
    patterns = [re.compile(p) for p in (marker.args if marker is not None else ())]
    found = [describe(r) for r in records]
    return [text for text in found if not any(p.search(text) for p in patterns)]


def _watching(item: pytest.Item) -> Generator[None, object, object]:
    """Run one phase of ``item`` with the collector on the root logger (a test that resets the
    logging set-up, as ``politico`` commands do, only cuts short the phase it runs in)."""
    collector = item.stash.setdefault(RECORDS, ErrorRecords())
    root = logging.getLogger()
    root.addHandler(collector)
    try:
        return (yield)
    finally:
        root.removeHandler(collector)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, object, object]:
    return (yield from _watching(item))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, object, object]:
    return (yield from _watching(item))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Generator[None, object, object]:
    return (yield from _watching(item))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """A test that passed but logged an undeclared error fails, with the records as its reason."""
    report = yield
    collector = item.stash.get(RECORDS, None)
    if collector is None or call.when == "setup":
        return report  # setup's records are judged with the call's (or teardown's, if skipped)
    records, collector.records = collector.records, []
    lines = unexpected(item, records)
    if lines and report.passed:
        report.outcome = "failed"
        report.longrepr = (
            f"{len(lines)} log record(s) at ERROR or above that the test does not expect "
            f"(mark it @pytest.mark.{MARKER}(pattern) if it should log them):\n\n" + "\n\n".join(lines)
        )
    return report
