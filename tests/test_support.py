"""The suite's own guards: an undeclared ERROR log line fails a test, and a server whose port was
taken meanwhile is started again on another one (``tests/support/``)."""

from __future__ import annotations

import errno
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from tests.support.ports import on_free_port, port_clash

GUARDED = """
import logging
import threading

import pytest

pytest_plugins = ("tests.support.error_logs",)


def test_logs_an_error():
    logging.getLogger("bot.core").error("a bug swallowed by a handler")


def test_logs_an_error_from_another_thread():
    thread = threading.Thread(target=lambda: logging.getLogger("db.spool").error("lost in a thread"))
    thread.start()
    thread.join()


@pytest.mark.expect_errors(r"swallowed by a handler")
def test_expects_it():
    logging.getLogger("bot.core").error("a bug swallowed by a handler")


@pytest.mark.expect_errors(r"something else")
def test_expects_another():
    logging.getLogger("bot.core").error("a bug swallowed by a handler")


def test_warns_only():
    logging.getLogger("bot.core").warning("worth a look, not a failure")
"""


# The inner run logs to this process's root logger too, where this test's own guard sees it.
@pytest.mark.expect_errors(r"swallowed by a handler|lost in a thread")
def test_an_undeclared_error_line_fails_the_test(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(test_guarded=GUARDED)
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, failed=3)
    outcomes = {r.nodeid.split("::")[1]: r.outcome for r in result.reprec.getreports("pytest_runtest_logreport")
                if r.when == "call"}
    assert outcomes == {
        "test_logs_an_error": "failed", "test_logs_an_error_from_another_thread": "failed",
        "test_expects_it": "passed", "test_expects_another": "failed", "test_warns_only": "passed",
    }
    result.stdout.fnmatch_lines(["*bot.core: a bug swallowed by a handler*", "*db.spool: lost in a thread*"])


def test_a_port_clash_is_recognised_in_exceptions_and_logs() -> None:
    taken = OSError(errno.EADDRINUSE, "Address already in use")
    assert port_clash(taken)
    wrapped = RuntimeError("no pude abrir el puerto")
    wrapped.__cause__ = taken
    assert port_clash(wrapped)
    assert port_clash("ERROR: [Errno 98] error while attempting to bind on address: address already in use")
    assert not port_clash(OSError(errno.ECONNREFUSED, "Connection refused"))
    assert not port_clash("bind failed: permission denied")


async def test_a_server_that_lost_its_port_is_started_on_another() -> None:
    tried: list[int] = []

    @asynccontextmanager
    async def server(port: int) -> AsyncIterator[str]:
        tried.append(port)
        if len(tried) == 1:
            raise OSError(errno.EADDRINUSE, "Address already in use")
        yield f"serving on {port}"

    async with on_free_port(server) as (port, served):
        assert served == f"serving on {port}" and tried[-1] == port and len(tried) == 2


async def test_any_other_start_failure_is_not_retried() -> None:
    tried: list[int] = []

    @asynccontextmanager
    async def server(port: int) -> AsyncIterator[None]:
        tried.append(port)
        raise RuntimeError("the config is wrong")
        yield

    with pytest.raises(RuntimeError, match="the config is wrong"):
        async with on_free_port(server):
            pass
    assert len(tried) == 1
