"""Run the desk in a uvicorn thread on 127.0.0.1 (for HTTP clients and a real browser), and a
fake REST server."""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import uvicorn
from argon2 import PasswordHasher
from starlette.testclient import TestClient
from starlette.types import ASGIApp

from bot.admin.cli import server_config
from db.engine import create_engine
from db.review import ReviewStore
from tests.support.ports import listening_socket


def cheap_hash(password: str) -> str:
    """An argon2 hash with minimal cost: the desk verifies it the same way, only faster."""
    return PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash(password)


@contextmanager
def serve(app: ASGIApp) -> Iterator[str]:
    """Serve ``app`` as ``politico admin`` does until the block ends; yields its base URL."""
    sock = listening_socket()  # bound before the server starts: no other process can take it
    port = sock.getsockname()[1]
    server = uvicorn.Server(server_config(app, "127.0.0.1", port, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the desk did not start in 10 s")
            time.sleep(0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@contextmanager
def fake_rest(status: int = 200) -> Iterator[tuple[str, list[tuple[str, dict, dict]]]]:
    """A tiny HTTP server that records every POST as (path, headers, JSON body)."""
    calls: list[tuple[str, dict, dict]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            calls.append((self.path, dict(self.headers), json.loads(body or b"{}")))
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"ok": true, "id": "1"}')

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", calls
    finally:
        server.shutdown()
        server.server_close()


def run_apart(coroutine: Any) -> Any:
    """Run a coroutine to completion on its own thread (Playwright's sync API and Starlette's
    TestClient own the calling thread's loop)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def store_call(url: str, method: str, *args: Any) -> Any:
    """One ``ReviewStore`` call on the database at ``url``, from a test outside any loop; a
    streaming method's rows come back as a list."""
    async def run() -> Any:
        engine = create_engine(url)
        try:
            result = getattr(ReviewStore(engine), method)(*args)
            if hasattr(result, "__aiter__"):
                return [row async for row in result]
            return await result
        finally:
            await engine.dispose()

    return run_apart(run())


def signed_in(client: TestClient, password: str, name: str = "admin") -> TestClient:
    """``client`` logged in to the desk through its login form (CSRF token included)."""
    token = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text)
    assert token is not None
    client.post("/login", data={"name": name, "password": password, "csrf": token.group(1), "next": "/"})
    return client
