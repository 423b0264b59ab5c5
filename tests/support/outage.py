"""A database that can be taken away and brought back, for spool tests.

PostgreSQL is reached through a TCP proxy that can be cut (new connections refused, live ones
dropped) and restored; SQLite's file lives in a folder that doesn't exist until it comes "up".
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from sqlalchemy.engine import make_url

from db.migrate import upgrade


class Outage:
    """``url`` is what the bot uses; ``down()`` / ``up()`` switch the database off and on."""

    def __init__(self, real_url: str, tmp_path: Path) -> None:
        self._real = make_url(real_url)
        self._sqlite = self._real.get_backend_name() == "sqlite"
        self._folder = tmp_path / "db-folder"
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0
        if self._sqlite:
            self.url = f"sqlite+aiosqlite:///{self._folder / 'log.db'}"
        else:
            self.url = ""

    async def up(self) -> None:
        if self._sqlite:
            self._folder.mkdir(exist_ok=True)
            await upgrade(self.url)
            return
        self._server = await asyncio.start_server(self._pipe, "127.0.0.1", self.port, reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]
        self.url = self._real.set(host="127.0.0.1", port=self.port).render_as_string(hide_password=False)
        await upgrade(self.url)

    async def down(self) -> None:
        if self._sqlite:
            raise NotImplementedError("SQLite is only ever down before it is first up")
        if self._server is not None:
            self._server.close()
            for writer in list(self._writers):
                writer.close()
            await self._server.wait_closed()
            self._server = None

    async def start_down(self) -> None:
        """Leave the database unreachable but give ``url`` a value that will work once up."""
        if self._sqlite:
            return
        await self.up()
        await self.down()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(self._real.host, self._real.port)
        except OSError:
            writer.close()
            return
        self._writers |= {writer, up_writer}

        async def copy(source: asyncio.StreamReader, target: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncio.CancelledError):
                while data := await source.read(65536):
                    target.write(data)
                    await target.drain()
            target.close()

        await asyncio.gather(copy(reader, up_writer), copy(up_reader, writer))
        self._writers -= {writer, up_writer}
