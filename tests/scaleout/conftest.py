"""Real ``politico serve`` processes on 127.0.0.1, started the way an operator starts them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT, write_config
from tests.support.ports import TRIES, free_port, port_clash

__all__ = ["API_KEY", "Program", "ServeProcess", "free_port", "start_servers"]

API_KEY = "clave-de-prueba"


class PortTaken(Exception):
    """The server lost its port to another process between the check and its bind."""


class Program:
    """``python -m bot.cli ARGS`` in a subprocess, with its output kept for failure messages."""

    def __init__(self, args: list[str], log_path: Path, env: dict[str, str] | None = None) -> None:
        self.log_path = log_path
        with log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "bot.cli", *args],
                cwd=ROOT, env={**os.environ, **(env or {})}, stdout=log, stderr=subprocess.STDOUT,
            )

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            raise AssertionError(f"{self.log_path.name} exited with {self.process.returncode}:\n{self.log()}")

    def terminate(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(timeout)


class ServeProcess(Program):
    """``politico serve`` on a free port of 127.0.0.1."""

    def __init__(self, config: Path, *, api_key: str = "", env: dict[str, str] | None = None,
                 log_dir: Path | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        super().__init__(
            ["serve", "--config", str(config), "--port", str(self.port)],
            (log_dir or config.parent) / f"serve-{self.port}.log",
            {"POLITICO_SERVE_API_KEY": api_key, **(env or {})},
        )

    def answers_health(self, timeout: float = 1.0) -> bool:
        try:
            return httpx.get(f"{self.url}/health", timeout=timeout).status_code == 200
        except httpx.TransportError:
            return False

    def wait_healthy(self, timeout: float = 90.0) -> None:
        """Return once ``/health`` answers 200; :class:`PortTaken` if the port was taken."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None and port_clash(self.log()):
                raise PortTaken(self.log())
            self.check_alive()
            if self.answers_health():
                return
            time.sleep(0.2)
        raise AssertionError(f"serve did not become healthy in {timeout} s:\n{self.log()}")


def start_servers(
    folder: Path, model_dir: Path | None, count: int, *, api_key: str = "", env: dict[str, str] | None = None,
    config: Path | None = None, timeout: float = 90.0,
) -> list[ServeProcess]:
    """Start ``count`` servers in parallel (model loading overlaps) and wait for all of them.

    They serve ``model_dir`` on a test config written in ``folder``, or run ``config`` as it is
    (the shipped one, say), logging in ``folder``. ``env`` overrides config keys the usual way
    (``POLITICO_GENERATION__ENGINE__...``).
    """
    folder.mkdir(parents=True, exist_ok=True)
    if config is None:
        assert model_dir is not None
        config = write_config(folder, model_dir)

    def started() -> ServeProcess:
        return ServeProcess(config, api_key=api_key, env=env, log_dir=folder)

    servers = [started() for _ in range(count)]
    try:
        for index in range(count):
            for attempt in range(1, TRIES + 1):
                try:
                    servers[index].wait_healthy(timeout)
                    break
                except PortTaken:
                    if attempt == TRIES:
                        raise
                    servers[index] = started()
    except BaseException:
        for server in servers:
            server.terminate(signal.SIGKILL)
        raise
    return servers


@pytest.fixture(scope="session")
def serve(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Iterator[ServeProcess]:
    """One server with a bearer token, shared by the scale-out tests (starting one takes
    seconds). It is the fixture's: no test may stop it (a test that kills a server starts its
    own), so every test that uses it finds it running, in whatever order they run."""
    folder = tmp_path_factory.mktemp("serve")
    # A wider batch window than the suite's default so concurrent requests visibly share batches.
    env = {"POLITICO_GENERATION__ENGINE__BATCH_WINDOW_MS": "50"}
    (server,) = start_servers(folder, tiny_model_dir, 1, api_key=API_KEY, env=env)
    yield server
    answering = server.answers_health()  # not poll(): a process just killed may not be reaped yet
    server.terminate()
    assert answering, f"a test stopped the shared server:\n{server.log()}"
