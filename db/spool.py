"""Keeping log writes while the database is unreachable, and replaying them when it is back.

Every log write is a record (``db/log.py``). When one fails because the database can't be
reached, it is appended to a local JSONL file (flushed and fsync'd before the call returns) and
the bot keeps answering; a background task retries every few seconds and replays the file in
order, then empties it. Replay is idempotent, so a crash halfway through replays safely:
``begin`` finds a request it already stored by its timestamp, platform, user and command (or by
the message it came from); ``finish`` skips a request that is no longer pending; the other
writes are upserts or conditional updates.

Ids: ``begin`` and ``finish`` return database ids that later writes refer to (the request a
``finish`` completes, the tweet a 👍 rates). While spooling they return *provisional* ids:
negative numbers, which the database never uses. Replay maps each provisional id to the real
one and rewrites later records before applying them; the mapping is kept in a sidecar file
(``<spool>.ids``) so buttons sent during an outage keep working after a restart.
A record the database refuses for another reason (not a lost connection) is set aside in
``<spool>.rejected`` with the error, so one bad record can't block the rest.

Writes never wait for a replay: while one runs they keep appending, and the replay removes
only the entries it applied (then goes on with what arrived meanwhile). Several bot processes
may share one spool path (one config, many processes): appends and id allocation
(``<spool>.next``) take a short exclusive ``flock`` on ``<spool>.lock``, one process at a time
replays (``<spool>.replay`` lock; the others leave it to that one), and a process that meets
an id it can't resolve rereads the shared id map.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import Generation, Request, User

log = logging.getLogger(__name__)

Apply = Callable[[str, dict[str, Any], AsyncSession], Awaitable[Any]]

#: Record fields that hold ids handed out by earlier writes.
ID_FIELDS = ("request_id", "generation_id", "parent_id")


def is_connection_error(exc: BaseException) -> bool:
    """True when the database could not be reached (as opposed to refusing the write)."""
    if isinstance(exc, OperationalError | InterfaceError):
        return True
    if isinstance(exc, DBAPIError):
        return bool(exc.connection_invalidated)
    return isinstance(exc, OSError | TimeoutError)


class SpoolFile:
    """An append-only JSONL file; every append is on disk (fsync) before it returns."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def append(self, entry: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps(entry, ensure_ascii=False, default=str) + "\n"
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())

    def entries(self) -> list[dict[str, Any]]:
        """Every complete entry (a line cut short by a crash mid-append is skipped)."""
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []
        found = []
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                found.append(json.loads(line))
            except json.JSONDecodeError:
                log.error("%s:%d: línea incompleta ignorada", self.path, number)
        return found

    def rewrite(self, entries: list[dict[str, Any]]) -> None:
        """Replace the contents atomically (empty: remove the file)."""
        if not entries:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
            return
        temporary = self.path.with_name(self.path.name + ".tmp")
        with temporary.open("w", encoding="utf-8") as handle:
            for entry in entries:
                handle.write(json.dumps(entry, ensure_ascii=False, default=str) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, self.path)

    def __bool__(self) -> bool:
        try:
            return self.path.stat().st_size > 0
        except FileNotFoundError:
            return False


@contextlib.asynccontextmanager
async def _file_lock(path: Path, wait: bool = True) -> AsyncIterator[bool]:
    """An exclusive lock shared with other processes (waited for in a thread, not the loop).

    With ``wait=False`` it yields False at once when another process holds it.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        if wait:
            await asyncio.to_thread(fcntl.flock, handle.fileno(), fcntl.LOCK_EX)
        else:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
        try:
            yield True
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


class Spool:
    """Applies log records now, or spools them while the database is unreachable."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        sessions: async_sessionmaker[AsyncSession],
        apply: Apply,
        retry_s: float = 5.0,
    ) -> None:
        self.file = SpoolFile(path)
        self._ids_file = SpoolFile(f"{path}.ids")
        self._rejected = SpoolFile(f"{path}.rejected")
        self._counter = Path(f"{path}.next")
        self._file_lock = Path(f"{path}.lock")
        self._replay_lock = Path(f"{path}.replay")
        self._sessions = sessions
        self._apply = apply
        self.retry_s = retry_s
        self._lock = asyncio.Lock()
        self._replaying = asyncio.Lock()
        self._ids: dict[int, int] = {}
        self._load_ids()
        self.spooling = bool(self.file)
        self._retry_task: asyncio.Task[None] | None = None
        with contextlib.suppress(RuntimeError):  # no running loop: the first write starts it
            self.start()

    # -- the write path ----------------------------------------------------------------------

    async def write(self, kind: str, record: dict[str, Any]) -> Any:
        """Apply ``record`` (committed), or spool it and return provisional ids."""
        if not self.spooling:
            try:
                return await self._apply_now(kind, self.resolve_record(record))
            except Exception as exc:
                if not is_connection_error(exc):
                    raise
                log.warning(
                    "base de datos inalcanzable (%s): el registro se guarda en %s hasta que vuelva",
                    _describe(exc), self.file.path,
                )
        # While spooling, writes go straight to the file so answers never wait on connection
        # timeouts; the background task retries the database every ``retry_s``.
        async with self._lock:
            return await self._spool_locked(kind, record)

    def resolve(self, some_id: int) -> int:
        """The real id for a provisional one (ids that are already real pass through)."""
        if some_id < 0 and some_id not in self._ids:
            self._load_ids()  # another process sharing the spool may have replayed it
        return self._ids.get(some_id, some_id)

    def resolve_record(self, record: dict[str, Any]) -> dict[str, Any]:
        return {
            key: self.resolve(value) if key in ID_FIELDS and isinstance(value, int) else value
            for key, value in record.items()
        }

    async def replay(self) -> bool:
        """Try to apply everything spooled; True when nothing is left waiting."""
        async with self._replaying:
            await self._replay_all()
            return not self.spooling

    async def aclose(self) -> None:
        if self._retry_task is not None:
            self._retry_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._retry_task
            self._retry_task = None

    def start(self) -> None:
        """Start retrying in the background if records are waiting (needs a running loop)."""
        if self.spooling and (self._retry_task is None or self._retry_task.done()):
            self._retry_task = asyncio.get_running_loop().create_task(self._retry_loop())

    # -- internals ---------------------------------------------------------------------------

    async def _apply_now(self, kind: str, record: dict[str, Any]) -> Any:
        async with self._sessions() as session, session.begin():
            return await self._apply(kind, record, session)

    async def _spool_locked(self, kind: str, record: dict[str, Any]) -> Any:
        wanted = 1 if kind == "begin" else len(record.get("generations", ())) if kind == "finish" else 0
        async with _file_lock(self._file_lock):
            ids = self._take_ids(wanted)
            provisional = ids[0] if kind == "begin" else ids if kind == "finish" else None
            self.file.append({"kind": kind, "record": record, "provisional": provisional})
        self.spooling = True
        self.start()
        return _result(kind, record, provisional)

    def _take_ids(self, count: int) -> list[int]:
        """``count`` fresh provisional ids (call with the file lock held)."""
        if not count:
            return []
        try:
            next_id = int(self._counter.read_text())
        except (FileNotFoundError, ValueError):
            known = [*self._ids, *_provisional_ids(self.file.entries())]
            next_id = min([0, *known]) - 1
        self._counter.write_text(str(next_id - count))
        return list(range(next_id, next_id - count, -1))

    def _load_ids(self) -> None:
        self._ids.update({e["provisional"]: e["real"] for e in self._ids_file.entries()})

    async def _replay_all(self) -> None:
        """Apply spooled entries in order until none are left or the database goes away."""
        async with _file_lock(self._replay_lock, wait=False) as mine:
            if not mine:
                return  # another process is replaying the shared file
            applied = 0
            while True:
                async with _file_lock(self._file_lock):
                    entries = self.file.entries()
                if not entries:
                    break
                done = await self._apply_entries(entries)
                applied += done
                async with self._lock, _file_lock(self._file_lock):
                    left = self.file.entries()[done:]
                    self.file.rewrite(left)
                    if done < len(entries):
                        return  # the database went away again; the rest waits
                    if not left:
                        self.spooling = False
                        break
            if applied:
                log.warning("base de datos disponible: %d registro(s) guardados aplicados", applied)
        self._load_ids()
        if not self.file:
            self.spooling = False

    async def _apply_entries(self, entries: list[dict[str, Any]]) -> int:
        """Apply ``entries`` in order; returns how many are done (applied or set aside)."""
        for done, entry in enumerate(entries):
            record = self.resolve_record(entry["record"])
            try:
                result = await self._apply_once(entry["kind"], record)
            except Exception as exc:
                if is_connection_error(exc):
                    return done
                log.error("registro %s rechazado por la base de datos: %s", entry["kind"], exc)
                self._rejected.append({**entry, "error": _describe(exc)})
            else:
                self._remember(entry.get("provisional"), result)
        return len(entries)

    async def _apply_once(self, kind: str, record: dict[str, Any]) -> Any:
        """Apply a spooled record unless an earlier (interrupted) replay already did."""
        async with self._sessions() as session, session.begin():
            done = await _already_applied(session, kind, record)
            if done is not None:
                return done
            return await self._apply(kind, record, session)

    def _remember(self, provisional: int | list[int] | None, result: Any) -> None:
        result = getattr(result, "id", result)  # ``begin`` answers with the request's id in a Begun
        pairs: list[tuple[int, int]] = []
        if isinstance(provisional, int) and isinstance(result, int):
            pairs = [(provisional, result)]
        elif isinstance(provisional, list) and isinstance(result, list):
            pairs = list(zip(provisional, result, strict=False))
        for fake, real in pairs:
            self._ids[fake] = real
            self._ids_file.append({"provisional": fake, "real": real})

    async def _retry_loop(self) -> None:
        while self.spooling:
            await asyncio.sleep(self.retry_s)
            try:
                await self.replay()
            except Exception:  # a bug must not stop the retries; it is logged
                log.exception("no se pudo reaplicar el registro guardado")


async def _already_applied(session: AsyncSession, kind: str, record: dict[str, Any]) -> Any:
    """What applying ``record`` returned the first time, or None if it wasn't applied."""
    if kind == "begin" and record.get("at"):
        return await session.scalar(
            select(Request.id)
            .join(User, User.id == Request.user_id)
            .where(
                Request.created_at == datetime.fromisoformat(record["at"]),
                Request.platform == record["platform"],
                Request.raw_command == record["raw_command"],
                User.external_id == record["user_external_id"],
            )
            .limit(1)
        )
    if kind == "finish":
        status = await session.scalar(select(Request.status).where(Request.id == record["request_id"]))
        if status is not None and status != "pending":
            return list(
                await session.scalars(
                    select(Generation.id)
                    .where(Generation.request_id == record["request_id"])
                    .order_by(Generation.candidate)
                )
            )
    return None


def _provisional_ids(entries: list[dict[str, Any]]) -> list[int]:
    found: list[int] = []
    for entry in entries:
        value = entry.get("provisional")
        found.extend(value if isinstance(value, list) else [value] if isinstance(value, int) else [])
    return found


def _result(kind: str, record: dict[str, Any], provisional: int | list[int] | None) -> Any:
    """What the write would have returned, as far as can be known without the database."""
    if kind in ("begin", "finish"):
        return provisional
    if kind == "expire":
        return 1 if record.get("request_id") is not None else 0
    return True


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:300]
