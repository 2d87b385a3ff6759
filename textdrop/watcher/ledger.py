"""The watcher's ledger: which versions of which files have been OCR'd, in one SQLite file.

The ledger is what makes "every file gets exactly one sidecar" hold across restarts, crashes and a
``kill -9`` at any moment. It keeps one row per *version* of a source file, keyed by ``(path, sha256)``:
a version is recorded as pending when it has settled, counts its job attempts, and ends done (with the
sidecar written) or failed (permanently, or transiently with a time to retry). A file whose content
changes gets a new row that replaces the old version's; a file deleted from the folder is forgotten.
A second table keeps each OCR result by content hash, engine and model, so the same content arriving
under another name reuses it instead of running OCR again.

The service passes ``data_dir()/ledger.sqlite3`` (this module does not import the settings: the watcher
never imports the composition root). The database runs in WAL mode, so ``textdrop status`` can read it
from another process while the watcher writes; next to it SQLite keeps ``-wal`` and ``-shm`` files.
Every write method is one short transaction that has committed when it returns, so a process killed
right after loses nothing. One :class:`Ledger` may be used from several threads: a lock serialises
every use of its connection.

The schema is built by :data:`MIGRATIONS`, numbered steps that each run once, in one transaction, and
are recorded in the ``migrations`` table (pattern from simonw/llm's ``migrations.py``).
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from types import TracebackType
from typing import Any

from textdrop.engine.documents.sources import file_label
from textdrop.engine.errors import LedgerError

log = logging.getLogger(__name__)

BUSY_TIMEOUT_S = 10.0
"""Seconds a statement waits for another connection (another process) to release the write lock."""

_COMPRESSION_LEVEL = 6
_DAMAGED = frozenset({"SQLITE_NOTADB", "SQLITE_CORRUPT"})
_RESTART_HINT = "textdrop will start a new one and re-check every watched file"


class Status(StrEnum):
    """Where a version of a file stands."""

    PENDING = "pending"
    """Settled and waiting for OCR, running, or waiting to retry after a transient failure."""
    DONE = "done"
    """Its sidecar has been written."""
    FAILED = "failed"
    """Failed permanently; retried only when the file changes."""


MIGRATIONS: list[tuple[int, str, str]] = [
    (
        1,
        "create files and results",
        # Frozen history: a later change to Status or a column is a new migration, never an edit here.
        """
        CREATE TABLE files (
            id INTEGER PRIMARY KEY,
            path TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            size INTEGER NOT NULL,
            mtime_ns INTEGER NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('pending', 'done', 'failed')),
            attempts INTEGER NOT NULL DEFAULT 0,
            last_error TEXT,
            permanent INTEGER NOT NULL DEFAULT 0,
            retry_at REAL,
            sidecar TEXT,
            engine TEXT,
            model TEXT,
            seconds REAL,
            started REAL,
            created REAL NOT NULL,
            updated REAL NOT NULL,
            UNIQUE (path, sha256)
        );
        CREATE INDEX files_sha256 ON files (sha256);
        CREATE INDEX files_status ON files (status);
        CREATE TABLE results (
            sha256 TEXT NOT NULL,
            engine TEXT NOT NULL,
            model TEXT NOT NULL DEFAULT '',
            data BLOB NOT NULL,
            created REAL NOT NULL,
            PRIMARY KEY (sha256, engine, model)
        );
        """,
    ),
]
"""The schema's history: ``(number, name, sql)`` in ascending, consecutive order, starting at 1.

Each runs once, in one transaction with its record in the ``migrations`` table; ``sql`` may hold several
statements separated by ``;``. Append new steps; never edit or remove one that has been released.
"""

_MIGRATIONS_TABLE = """
CREATE TABLE IF NOT EXISTS migrations (
    number INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    applied REAL NOT NULL
)
"""

_COLUMNS = (
    "path, sha256, size, mtime_ns, status, attempts, last_error, permanent, retry_at, "
    "sidecar, engine, model, seconds, started, updated"
)


@dataclass(frozen=True)
class Entry:
    """One version of a source file, as the ledger records it."""

    path: str
    """Absolute path of the source file, as the service gave it."""
    sha256: str
    """SHA-256 of the file's content, hex."""
    size: int
    """Size in bytes."""
    mtime_ns: int
    """Modification time in nanoseconds since the epoch."""
    status: Status
    attempts: int
    """How many times a job was started for this version."""
    last_error: str | None
    """Message of the last failure; ``None`` once done."""
    permanent: bool
    """Failed and not to be retried until the file changes."""
    retry_at: float | None
    """Unix time (seconds) of the next retry of a transient failure, or ``None``."""
    sidecar: str | None
    """Path of the sidecar written."""
    engine: str | None
    model: str | None
    seconds: float | None
    """OCR time of this version in seconds (0.0 when a stored result was reused)."""
    started: float | None
    """Unix time (seconds) the last job started."""
    updated: float
    """Unix time (seconds) of the last change to this row."""


class Ledger:
    """The SQLite ledger of one watcher; safe to share between threads.

    Args:
        path: The database file; missing parent folders are created.
        clock: Returns the Unix time in seconds for the time columns (tests pass a fake one).

    Raises:
        LedgerError: The file or its folder cannot be created or opened, the file is not a SQLite
            database or is damaged, a migration fails, or its schema was made by a newer textdrop.
    """

    def __init__(self, path: Path, *, clock: Callable[[], float] = time.time) -> None:
        self.path = Path(path)
        self._clock = clock
        self._lock = threading.Lock()
        self._closed = False
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise LedgerError(
                f"Cannot create the folder of the ledger {self.path}: {exc}. "
                "Check that the data folder is writable (TEXTDROP_HOME moves it)."
            ) from exc
        try:
            self._conn = sqlite3.connect(
                self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise self._error(exc) from exc
        try:
            with self._lock:
                self._configure()
                self._migrate()
        except BaseException:
            self._conn.close()
            raise

    # -- life cycle ---------------------------------------------------------------------------------------

    def close(self) -> None:
        """Close the connection; calling it again does nothing. Later calls raise sqlite3.ProgrammingError."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._conn.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Ledger({str(self.path)!r})"

    # -- versions of files ----------------------------------------------------------------------------------

    def get(self, path: str, sha256: str) -> Entry | None:
        """The row of this version, or ``None`` when there is none."""
        with self._reading() as conn:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM files WHERE path = ? AND sha256 = ?", (_key(path), sha256)
            ).fetchall()
        return _entry(rows[0]) if rows else None

    def latest(self, path: str) -> Entry | None:
        """The most recently updated row of ``path`` whatever its hash, or ``None`` when there is none."""
        with self._reading() as conn:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM files WHERE path = ? ORDER BY updated DESC, id DESC LIMIT 1",
                (_key(path),),
            ).fetchall()
        return _entry(rows[0]) if rows else None

    def record_pending(self, path: str, sha256: str, size: int, mtime_ns: int) -> Entry:
        """Record a settled version of a file as pending, unless it is recorded already.

        An existing row of this version keeps its status (a done or failed version stays so); only its size
        and mtime are brought up to date (a file touched without a change). The rows of every other version
        of ``path`` are deleted, a changed file replacing its history, and so are stored results that no
        file refers to any more.

        Args:
            path: Absolute path of the source file.
            sha256: Hex SHA-256 of its content.
            size: Size in bytes.
            mtime_ns: Modification time in nanoseconds.

        Returns:
            The row of this version.
        """
        now = self._clock()
        path = _key(path)
        with self._writing() as conn:
            old = [
                row[0]
                for row in conn.execute(
                    "SELECT sha256 FROM files WHERE path = ? AND sha256 <> ?", (path, sha256)
                )
            ]
            replaced = conn.execute(
                "DELETE FROM files WHERE path = ? AND sha256 <> ?", (path, sha256)
            ).rowcount
            _prune_results(conn, old)
            conn.execute(
                "UPDATE files SET size = ?, mtime_ns = ? WHERE path = ? AND sha256 = ? "
                "AND (size <> ? OR mtime_ns <> ?)",
                (size, mtime_ns, path, sha256, size, mtime_ns),
            )
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM files WHERE path = ? AND sha256 = ?", (path, sha256)
            ).fetchall()
            if not rows:
                conn.execute(
                    "INSERT INTO files (path, sha256, size, mtime_ns, status, created, updated) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (path, sha256, size, mtime_ns, Status.PENDING.value, now, now),
                )
                rows = conn.execute(
                    f"SELECT {_COLUMNS} FROM files WHERE path = ? AND sha256 = ?", (path, sha256)
                ).fetchall()
        if replaced:
            log.debug("%s changed: replaced %d older version(s)", file_label(path), replaced)
        return _entry(rows[0])

    def start(self, path: str, sha256: str) -> int:
        """Count a job started for this version and stamp its start time.

        Returns:
            The number of attempts including this one.

        Raises:
            KeyError: There is no row of this version.
        """
        now = self._clock()
        path = _key(path)
        with self._writing() as conn:
            changed = conn.execute(
                "UPDATE files SET attempts = attempts + 1, started = ?, updated = ? "
                "WHERE path = ? AND sha256 = ?",
                (now, now, path, sha256),
            ).rowcount
            if not changed:
                raise KeyError(f"{_text(path)} ({sha256})")
            (attempts,) = conn.execute(
                "SELECT attempts FROM files WHERE path = ? AND sha256 = ?", (path, sha256)
            ).fetchall()[0]
        return int(attempts)

    def mark_done(
        self, path: str, sha256: str, *, sidecar: str, engine: str, model: str | None, seconds: float
    ) -> None:
        """Record that this version's sidecar was written; clears any earlier failure.

        A version that is gone (the file changed or was deleted while its job ran) is left gone.

        Args:
            path: Absolute path of the source file.
            sha256: Hex SHA-256 of the version.
            sidecar: Path of the sidecar written.
            engine: Name of the engine that produced the result.
            model: Its model id, or ``None`` for an engine without models.
            seconds: OCR time in seconds (0.0 when a stored result was reused).
        """
        now = self._clock()
        with self._writing() as conn:
            changed = conn.execute(
                "UPDATE files SET status = ?, last_error = NULL, permanent = 0, retry_at = NULL, "
                "sidecar = ?, engine = ?, model = ?, seconds = ?, updated = ? WHERE path = ? AND sha256 = ?",
                (Status.DONE.value, _key(sidecar), engine, model, seconds, now, _key(path), sha256),
            ).rowcount
        if not changed:
            log.debug("%s (%s) is no longer in the ledger; not marked done", file_label(path), sha256[:12])

    def mark_failed(
        self, path: str, sha256: str, error: str, *, permanent: bool, retry_at: float | None = None
    ) -> None:
        """Record a failed job of this version.

        A permanent failure makes the version FAILED: it is not retried until the file changes. A transient
        one keeps it PENDING with ``last_error`` and ``retry_at`` set, to be retried. A version that is gone
        is left gone.

        Args:
            path: Absolute path of the source file.
            sha256: Hex SHA-256 of the version.
            error: The message to show the user.
            permanent: Whether retrying cannot help (a corrupt file, an unsupported format).
            retry_at: Unix time (seconds) of the next retry of a transient failure; ``None`` leaves the
                time to the caller.

        Raises:
            ValueError: ``retry_at`` given with ``permanent=True``.
        """
        if permanent and retry_at is not None:
            raise ValueError("a permanent failure is not retried: retry_at must be None")
        status = Status.FAILED if permanent else Status.PENDING
        now = self._clock()
        with self._writing() as conn:
            changed = conn.execute(
                "UPDATE files SET status = ?, last_error = ?, permanent = ?, retry_at = ?, updated = ? "
                "WHERE path = ? AND sha256 = ?",
                (status.value, error, int(permanent), retry_at, now, _key(path), sha256),
            ).rowcount
        if not changed:
            log.debug(
                "%s (%s) is no longer in the ledger; failure not recorded", file_label(path), sha256[:12]
            )

    def forget(self, path: str) -> None:
        """Delete every row of ``path`` (the file was deleted from the folder), and its stored results
        unless another file has the same content."""
        path = _key(path)
        with self._writing() as conn:
            old = [row[0] for row in conn.execute("SELECT sha256 FROM files WHERE path = ?", (path,))]
            conn.execute("DELETE FROM files WHERE path = ?", (path,))
            _prune_results(conn, old)

    def move(self, source: str, target: str) -> None:
        """Give the rows of ``source`` to ``target`` (the file was renamed within a watched folder), so its
        stored result serves the new name; rows ``target`` had before are replaced."""
        source, target = _key(source), _key(target)
        with self._writing() as conn:
            old = [row[0] for row in conn.execute("SELECT sha256 FROM files WHERE path = ?", (target,))]
            conn.execute("DELETE FROM files WHERE path = ?", (target,))
            conn.execute("UPDATE files SET path = ? WHERE path = ?", (target, source))
            _prune_results(conn, old)

    # -- stored results -------------------------------------------------------------------------------------

    def store_result(self, sha256: str, engine: str, model: str | None, data: bytes) -> None:
        """Store a result document of this content for reuse, zlib-compressed, replacing an earlier one.

        Args:
            sha256: Hex SHA-256 of the source content.
            engine: Name of the engine that produced it.
            model: Its model id; ``None`` is stored as ``''``.
            data: The result, opaque to the ledger (a JSON document).
        """
        packed = zlib.compress(data, _COMPRESSION_LEVEL)
        now = self._clock()
        with self._writing() as conn:
            conn.execute(
                "INSERT INTO results (sha256, engine, model, data, created) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (sha256, engine, model) DO UPDATE SET data = excluded.data, "
                "created = excluded.created",
                (sha256, engine, model or "", packed, now),
            )

    def load_result(self, sha256: str, engine: str, model: str | None) -> bytes | None:
        """The stored result of this content, engine and model, decompressed.

        Returns:
            The bytes given to :meth:`store_result`, or ``None`` when none is stored or the stored one
            cannot be decompressed (logged as a warning).
        """
        with self._reading() as conn:
            rows = conn.execute(
                "SELECT data FROM results WHERE sha256 = ? AND engine = ? AND model = ?",
                (sha256, engine, model or ""),
            ).fetchall()
        if not rows:
            return None
        try:
            return zlib.decompress(rows[0][0])
        except zlib.error as exc:
            log.warning("Ignoring the damaged stored result of %s (%s): %s", sha256[:12], engine, exc)
            return None

    def counts(self) -> dict[Status, int]:
        """How many rows have each status; every :class:`Status` is a key (0 when none)."""
        with self._reading() as conn:
            rows = conn.execute("SELECT status, COUNT(*) FROM files GROUP BY status").fetchall()
        counts = dict.fromkeys(Status, 0)
        for status, count in rows:
            counts[Status(status)] = int(count)
        return counts

    def failures(self, limit: int = 10) -> list[Entry]:
        """FAILED rows and PENDING rows with an error (waiting to retry), most recently updated first.

        Raises:
            ValueError: ``limit`` is negative.
        """
        if limit < 0:
            raise ValueError(f"limit must be 0 or more, not {limit}")
        with self._reading() as conn:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM files "
                "WHERE status = ? OR (status = ? AND last_error IS NOT NULL) "
                "ORDER BY updated DESC, id DESC LIMIT ?",
                (Status.FAILED.value, Status.PENDING.value, limit),
            ).fetchall()
        return [_entry(row) for row in rows]

    def pending(self) -> list[Entry]:
        """PENDING rows (including those waiting to retry), oldest recorded first."""
        with self._reading() as conn:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM files WHERE status = ? ORDER BY created, id", (Status.PENDING.value,)
            ).fetchall()
        return [_entry(row) for row in rows]

    def migrations(self) -> list[tuple[int, str]]:
        """The applied migrations as ``(number, name)``, in order."""
        with self._reading() as conn:
            rows = conn.execute("SELECT number, name FROM migrations ORDER BY number").fetchall()
        return [(int(number), str(name)) for number, name in rows]

    # -- internals ------------------------------------------------------------------------------------------

    def _configure(self) -> None:
        with self._guard("opened"):
            self._conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            (mode,) = self._conn.execute("PRAGMA journal_mode = WAL").fetchall()[0]
            self._conn.execute("PRAGMA synchronous = NORMAL")
        if str(mode).lower() != "wal":
            log.warning(
                "The ledger %s runs in %s mode, not WAL (a network drive?): `textdrop status` may have "
                "to wait while the watcher writes",
                self.path,
                mode,
            )

    def _migrate(self) -> None:
        with self._guard("opened"):
            self._conn.execute(_MIGRATIONS_TABLE)
            applied = {int(n) for (n,) in self._conn.execute("SELECT number FROM migrations").fetchall()}
        known = MIGRATIONS[-1][0]
        newest = max(applied, default=0)
        if newest > known:
            raise LedgerError(
                f"The ledger {self.path} was made by a newer textdrop (schema {newest}; this version knows "
                f"up to {known}). Upgrade textdrop, or move the ledger away: {_RESTART_HINT}."
            )
        for number, name, sql in MIGRATIONS:
            if number not in applied:
                self._apply(number, name, sql)

    def _apply(self, number: int, name: str, sql: str) -> None:
        conn = self._conn
        with self._guard(f"upgraded (migration {number}, {name!r})"):
            conn.execute("BEGIN IMMEDIATE")
            try:
                # Another process may have applied it while this one waited for the write lock.
                if conn.execute("SELECT 1 FROM migrations WHERE number = ?", (number,)).fetchall():
                    conn.execute("ROLLBACK")
                    return
                for statement in _statements(sql):
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO migrations (number, name, applied) VALUES (?, ?, ?)",
                    (number, name, self._clock()),
                )
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        log.info("Ledger %s: applied migration %d (%s)", self.path, number, name)

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        """The connection, locked, for one statement whose rows are fetched before leaving."""
        with self._lock, self._guard("read"):
            yield self._conn

    @contextmanager
    def _writing(self) -> Iterator[sqlite3.Connection]:
        """The connection, locked, in a write transaction committed on leaving (rolled back on an error)."""
        with self._lock, self._guard("written"):
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    @contextmanager
    def _guard(self, doing: str) -> Iterator[None]:
        """Turn the SQLite errors a user can cause (damage, disk full, no access) into LedgerError."""
        try:
            yield
        except sqlite3.DatabaseError as exc:
            if type(exc) not in (sqlite3.OperationalError, sqlite3.DatabaseError):
                raise  # IntegrityError, ProgrammingError and the like are bugs, not the user's doing
            raise self._error(exc, doing) from exc

    def _error(self, exc: sqlite3.Error, doing: str = "opened") -> LedgerError:
        name = getattr(exc, "sqlite_errorname", "")
        text = str(exc)
        if name.startswith(tuple(_DAMAGED)) or "not a database" in text or "malformed" in text:
            return LedgerError(f"The ledger {self.path} is damaged: {text}. Move it away; {_RESTART_HINT}.")
        if name.startswith("SQLITE_BUSY") or "locked" in text:
            return LedgerError(
                f"The ledger {self.path} cannot be {doing}: another process has kept it locked for over "
                f"{BUSY_TIMEOUT_S:g} s. Stop the other textdrop that watches the same folders, then try "
                "again."
            )
        return LedgerError(
            f"The ledger {self.path} cannot be {doing}: {text}. Check that its folder is writable and the "
            f"disk is not full; if that does not help, move the ledger away: {_RESTART_HINT}."
        )


def _key(path: str) -> str | bytes:
    """How a path is stored: as TEXT when it is valid UTF-8, else as a BLOB of its file-system bytes.

    A Linux file name may be any bytes; Python holds the invalid ones as lone surrogates, which SQLite's
    UTF-8 TEXT cannot take. A BLOB keeps them exactly and never equals a TEXT value, so a name with the
    byte 0xFF and one spelling ``\\xff`` out stay two files; rows of UTF-8 names are as before.
    """
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return os.fsencode(path)
    return path


def _text(value: str | bytes) -> str:
    """The path :func:`_key` stored, back as Python holds it."""
    return os.fsdecode(value) if isinstance(value, bytes) else value


def _prune_results(conn: sqlite3.Connection, hashes: list[str]) -> None:
    """Delete the stored results of these contents when no file row refers to them any more."""
    for sha256 in hashes:
        conn.execute(
            "DELETE FROM results WHERE sha256 = ? AND NOT EXISTS (SELECT 1 FROM files WHERE sha256 = ?)",
            (sha256, sha256),
        )


def _entry(row: tuple[Any, ...]) -> Entry:
    (path, sha256, size, mtime_ns, status, attempts, last_error, permanent, retry_at) = row[:9]
    (sidecar, engine, model, seconds, started, updated) = row[9:]
    return Entry(
        path=_text(path),
        sha256=sha256,
        size=int(size),
        mtime_ns=int(mtime_ns),
        status=Status(status),
        attempts=int(attempts),
        last_error=last_error,
        permanent=bool(permanent),
        retry_at=retry_at,
        sidecar=None if sidecar is None else _text(sidecar),
        engine=engine,
        model=model,
        seconds=seconds,
        started=started,
        updated=float(updated),
    )


def _statements(sql: str) -> Iterator[str]:
    """Split a migration's SQL into single statements (a ``;`` inside a string literal stays put)."""
    buffer = ""
    for piece in sql.split(";"):
        buffer += piece + ";"
        if sqlite3.complete_statement(buffer):
            statement = buffer.strip()
            buffer = ""
            if statement.rstrip(";").strip():
                yield statement
    if buffer.rstrip(";").strip():
        raise ValueError(f"unterminated SQL in a migration: {buffer.strip()[:80]!r}")
