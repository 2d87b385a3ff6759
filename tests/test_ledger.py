"""Tests of the watcher's SQLite ledger, on real database files under tmp_path."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from textdrop.engine.errors import ExitCode, FileAccessError
from textdrop.watcher import ledger as ledger_module
from textdrop.watcher.ledger import MIGRATIONS, Ledger, Status

REPO = Path(__file__).resolve().parents[1]
SHA_A = "a" * 64
SHA_B = "b" * 64
needs_sigkill = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX SIGKILL")


class FakeClock:
    """A Unix-time clock that moves one second forward on every call, so every write has its own time."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "nested" / "ledger.sqlite3"


@pytest.fixture
def ledger(db_path: Path) -> Iterator[Ledger]:
    with Ledger(db_path, clock=FakeClock()) as opened:
        yield opened


def raw(path: Path) -> sqlite3.Connection:
    """A plain connection to the ledger file, bypassing the Ledger class."""
    return sqlite3.connect(path, isolation_level=None)


def sha(number: int) -> str:
    return f"{number:064x}"


# -- creation and migrations ------------------------------------------------------------------------------


def test_creates_database_in_wal_mode_and_records_migrations(ledger: Ledger, db_path: Path) -> None:
    assert db_path.is_file()
    expected = [(number, name) for number, name, _ in MIGRATIONS]
    assert ledger.migrations() == expected
    conn = raw(db_path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert {"files", "results", "migrations"} <= tables
    finally:
        conn.close()


def test_reopening_runs_no_migration_again(db_path: Path) -> None:
    with Ledger(db_path, clock=FakeClock(1000.0)) as first:
        first.record_pending("/scans/a.png", SHA_A, 10, 1)
        applied_before = first.migrations()
    conn = raw(db_path)
    stamps_before = conn.execute("SELECT number, applied FROM migrations ORDER BY number").fetchall()
    conn.close()

    with Ledger(db_path, clock=FakeClock(5000.0)) as second:
        assert second.migrations() == applied_before
        assert second.get("/scans/a.png", SHA_A) is not None
    conn = raw(db_path)
    stamps_after = conn.execute("SELECT number, applied FROM migrations ORDER BY number").fetchall()
    conn.close()
    assert stamps_after == stamps_before  # a rerun would have recorded the second clock's time


def test_migration_numbers_are_consecutive_from_one() -> None:
    assert [number for number, _, _ in MIGRATIONS] == list(range(1, len(MIGRATIONS) + 1))


def test_appended_migration_runs_once_and_keeps_data(db_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with Ledger(db_path) as first:
        first.record_pending("/scans/a.png", SHA_A, 10, 1)
    number = MIGRATIONS[-1][0] + 1
    # No IF NOT EXISTS: running this twice would fail.
    step = (number, "add notes", "CREATE TABLE notes (body TEXT);\nINSERT INTO notes VALUES ('a;b');")
    monkeypatch.setattr(ledger_module, "MIGRATIONS", [*MIGRATIONS, step])

    with Ledger(db_path) as second:
        assert second.migrations()[-1] == (number, "add notes")
        assert second.get("/scans/a.png", SHA_A) is not None
    with Ledger(db_path) as third:
        assert [n for n, _ in third.migrations()].count(number) == 1
    conn = raw(db_path)
    assert conn.execute("SELECT body FROM notes").fetchall() == [("a;b",)]
    conn.close()


def test_failing_migration_is_rolled_back_whole(db_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    Ledger(db_path).close()
    number = MIGRATIONS[-1][0] + 1
    broken = (number, "broken", "CREATE TABLE half (x);\nINSERT INTO missing VALUES (1);")
    monkeypatch.setattr(ledger_module, "MIGRATIONS", [*MIGRATIONS, broken])

    with pytest.raises(FileAccessError, match=rf"migration {number}"):
        Ledger(db_path)
    conn = raw(db_path)
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    numbers = [row[0] for row in conn.execute("SELECT number FROM migrations")]
    conn.close()
    assert "half" not in tables
    assert number not in numbers

    monkeypatch.setattr(ledger_module, "MIGRATIONS", MIGRATIONS)
    with Ledger(db_path) as reopened:
        assert reopened.migrations()[-1][0] == MIGRATIONS[-1][0]


# -- damaged, foreign and future databases --------------------------------------------------------------


def test_garbage_file_is_refused_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    garbage = b"this is not a database, just some bytes\x00\xff" * 200
    path.write_bytes(garbage)

    with pytest.raises(FileAccessError) as caught:
        Ledger(path)
    message = str(caught.value)
    assert str(path) in message
    assert "damaged" in message and "Move it away" in message
    assert caught.value.exit_code == ExitCode.FILE_ACCESS
    assert path.read_bytes() == garbage


def test_newer_schema_is_refused(db_path: Path) -> None:
    Ledger(db_path).close()
    conn = raw(db_path)
    conn.execute("INSERT INTO migrations (number, name, applied) VALUES (999, 'from the future', 0)")
    conn.close()

    with pytest.raises(FileAccessError, match="newer textdrop") as caught:
        Ledger(db_path)
    assert str(db_path) in str(caught.value)


def test_directory_in_place_of_the_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    path.mkdir()
    with pytest.raises(FileAccessError, match="cannot be opened") as caught:
        Ledger(path)
    assert str(path) in str(caught.value)


def test_unwritable_parent_is_refused(tmp_path: Path) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where a folder should be")
    with pytest.raises(FileAccessError, match="folder of the ledger"):
        Ledger(blocker / "ledger.sqlite3")


# -- versions of files ------------------------------------------------------------------------------------


def test_record_pending_creates_a_pending_row(ledger: Ledger) -> None:
    entry = ledger.record_pending("/scans/a.png", SHA_A, 1234, 5_000_000_000)
    assert entry.path == "/scans/a.png"
    assert entry.sha256 == SHA_A
    assert (entry.size, entry.mtime_ns) == (1234, 5_000_000_000)
    assert entry.status is Status.PENDING
    assert (entry.attempts, entry.last_error, entry.permanent, entry.retry_at) == (0, None, False, None)
    assert (entry.sidecar, entry.engine, entry.model, entry.seconds, entry.started) == (None,) * 5
    assert ledger.get("/scans/a.png", SHA_A) == entry
    assert ledger.latest("/scans/a.png") == entry
    assert ledger.get("/scans/a.png", SHA_B) is None
    assert ledger.latest("/scans/other.png") is None


def test_record_pending_is_idempotent_and_keeps_done(ledger: Ledger) -> None:
    first = ledger.record_pending("/scans/a.png", SHA_A, 10, 1)
    assert ledger.record_pending("/scans/a.png", SHA_A, 10, 1) == first  # unchanged, not even its update time
    touched = ledger.record_pending("/scans/a.png", SHA_A, 10, 2)  # same bytes, new mtime
    assert (touched.mtime_ns, touched.status, touched.attempts) == (2, first.status, first.attempts)
    assert ledger.counts()[Status.PENDING] == 1
    ledger.start("/scans/a.png", SHA_A)
    ledger.mark_done(
        "/scans/a.png", SHA_A, sidecar="/scans/a.png.md", engine="rapid", model=None, seconds=1.5
    )

    after_done = ledger.record_pending("/scans/a.png", SHA_A, 10, 1)
    assert after_done.status is Status.DONE
    assert after_done.attempts == 1
    assert ledger.counts() == {Status.PENDING: 0, Status.DONE: 1, Status.FAILED: 0}


def test_record_pending_keeps_failed(ledger: Ledger) -> None:
    ledger.record_pending("/scans/a.png", SHA_A, 10, 1)
    ledger.mark_failed("/scans/a.png", SHA_A, "not an image", permanent=True)
    assert ledger.record_pending("/scans/a.png", SHA_A, 10, 1).status is Status.FAILED


def test_new_content_replaces_the_old_version(ledger: Ledger) -> None:
    ledger.record_pending("/scans/a.png", SHA_A, 10, 1)
    ledger.mark_done(
        "/scans/a.png", SHA_A, sidecar="/scans/a.png.md", engine="rapid", model=None, seconds=1.0
    )
    ledger.record_pending("/scans/other.png", SHA_A, 10, 1)  # same content, another path: untouched

    new = ledger.record_pending("/scans/a.png", SHA_B, 20, 2)
    assert new.status is Status.PENDING
    assert ledger.get("/scans/a.png", SHA_A) is None
    assert ledger.latest("/scans/a.png") == new
    assert ledger.get("/scans/other.png", SHA_A) is not None
    assert ledger.counts() == {Status.PENDING: 2, Status.DONE: 0, Status.FAILED: 0}


def test_start_counts_attempts_and_stamps_time(ledger: Ledger) -> None:
    ledger.record_pending("/scans/a.png", SHA_A, 10, 1)
    assert ledger.start("/scans/a.png", SHA_A) == 1
    first = ledger.get("/scans/a.png", SHA_A)
    assert ledger.start("/scans/a.png", SHA_A) == 2
    second = ledger.get("/scans/a.png", SHA_A)
    assert first is not None and second is not None
    assert second.attempts == 2
    assert first.started is not None and second.started is not None
    assert second.started > first.started
    assert second.updated == second.started


def test_start_of_an_unknown_version_raises_key_error(ledger: Ledger) -> None:
    ledger.record_pending("/scans/a.png", SHA_A, 10, 1)
    with pytest.raises(KeyError):
        ledger.start("/scans/a.png", SHA_B)
    with pytest.raises(KeyError):
        ledger.start("/scans/missing.png", SHA_A)
    assert ledger.get("/scans/a.png", SHA_A).attempts == 0  # type: ignore[union-attr]


def test_mark_done_records_the_result_and_clears_a_failure(ledger: Ledger) -> None:
    ledger.record_pending("/scans/a.png", SHA_A, 10, 1)
    ledger.start("/scans/a.png", SHA_A)
    ledger.mark_failed("/scans/a.png", SHA_A, "file is busy", permanent=False, retry_at=1_800_000_000.0)
    ledger.start("/scans/a.png", SHA_A)
    ledger.mark_done(
        "/scans/a.png", SHA_A, sidecar="/scans/a.png.md", engine="llama_cpp", model="granite", seconds=2.5
    )

    entry = ledger.get("/scans/a.png", SHA_A)
    assert entry is not None
    assert entry.status is Status.DONE
    assert (entry.last_error, entry.permanent, entry.retry_at) == (None, False, None)
    assert (entry.sidecar, entry.engine, entry.model, entry.seconds) == (
        "/scans/a.png.md",
        "llama_cpp",
        "granite",
        2.5,
    )
    assert entry.attempts == 2
    assert ledger.failures() == []
    assert ledger.pending() == []


def test_permanent_failure_is_failed_and_not_pending(ledger: Ledger) -> None:
    ledger.record_pending("/scans/a.png", SHA_A, 10, 1)
    ledger.start("/scans/a.png", SHA_A)
    ledger.mark_failed("/scans/a.png", SHA_A, "not an image or PDF", permanent=True)

    entry = ledger.get("/scans/a.png", SHA_A)
    assert entry is not None
    assert entry.status is Status.FAILED
    assert (entry.permanent, entry.last_error, entry.retry_at) == (True, "not an image or PDF", None)
    assert ledger.pending() == []
    assert ledger.counts() == {Status.PENDING: 0, Status.DONE: 0, Status.FAILED: 1}


def test_transient_failure_stays_pending_with_retry_time(ledger: Ledger) -> None:
    ledger.record_pending("/scans/a.png", SHA_A, 10, 1)
    ledger.mark_failed("/scans/a.png", SHA_A, "EBUSY", permanent=False, retry_at=1_800_000_000.0)

    entry = ledger.get("/scans/a.png", SHA_A)
    assert entry is not None
    assert entry.status is Status.PENDING
    assert (entry.permanent, entry.last_error, entry.retry_at) == (False, "EBUSY", 1_800_000_000.0)
    assert ledger.pending() == [entry]
    assert ledger.counts() == {Status.PENDING: 1, Status.DONE: 0, Status.FAILED: 0}


def test_permanent_failure_with_retry_time_is_refused(ledger: Ledger) -> None:
    ledger.record_pending("/scans/a.png", SHA_A, 10, 1)
    with pytest.raises(ValueError, match="retry_at"):
        ledger.mark_failed("/scans/a.png", SHA_A, "boom", permanent=True, retry_at=1.0)
    assert ledger.get("/scans/a.png", SHA_A).status is Status.PENDING  # type: ignore[union-attr]


def test_marking_a_vanished_version_does_not_bring_it_back(ledger: Ledger) -> None:
    ledger.record_pending("/scans/a.png", SHA_A, 10, 1)
    ledger.start("/scans/a.png", SHA_A)
    ledger.record_pending("/scans/a.png", SHA_B, 20, 2)  # the file changed while its job ran
    ledger.mark_done(
        "/scans/a.png", SHA_A, sidecar="/scans/a.png.md", engine="rapid", model=None, seconds=1.0
    )
    ledger.mark_failed("/scans/a.png", SHA_A, "late", permanent=True)

    assert ledger.get("/scans/a.png", SHA_A) is None
    assert ledger.latest("/scans/a.png").sha256 == SHA_B  # type: ignore[union-attr]
    assert ledger.counts() == {Status.PENDING: 1, Status.DONE: 0, Status.FAILED: 0}


def test_failures_lists_failed_and_retrying_rows_most_recent_first(ledger: Ledger) -> None:
    for name in ("done", "failed", "retrying", "waiting", "failed-later"):
        ledger.record_pending(f"/scans/{name}.png", SHA_A, 10, 1)
    ledger.mark_failed("/scans/failed.png", SHA_A, "corrupt", permanent=True)
    ledger.mark_done(
        "/scans/done.png", SHA_A, sidecar="/scans/done.png.md", engine="rapid", model=None, seconds=1
    )
    ledger.mark_failed("/scans/retrying.png", SHA_A, "EBUSY", permanent=False, retry_at=1_800_000_000.0)
    ledger.mark_failed("/scans/failed-later.png", SHA_A, "too large", permanent=True)

    failures = ledger.failures()
    assert [entry.path for entry in failures] == [
        "/scans/failed-later.png",
        "/scans/retrying.png",
        "/scans/failed.png",
    ]
    assert [entry.last_error for entry in failures] == ["too large", "EBUSY", "corrupt"]
    assert [entry.path for entry in ledger.failures(limit=2)] == [
        "/scans/failed-later.png",
        "/scans/retrying.png",
    ]
    assert ledger.failures(limit=0) == []
    with pytest.raises(ValueError):
        ledger.failures(limit=-1)


def test_pending_lists_oldest_first(ledger: Ledger) -> None:
    for name in ("first", "second", "third", "fourth"):
        ledger.record_pending(f"/scans/{name}.png", SHA_A, 10, 1)
    ledger.mark_done("/scans/second.png", SHA_A, sidecar="x.md", engine="rapid", model=None, seconds=1)
    ledger.mark_failed("/scans/fourth.png", SHA_A, "corrupt", permanent=True)
    ledger.mark_failed("/scans/first.png", SHA_A, "EBUSY", permanent=False, retry_at=2.0)  # updated last

    assert [entry.path for entry in ledger.pending()] == ["/scans/first.png", "/scans/third.png"]


def test_forget_deletes_every_row_of_the_path(ledger: Ledger) -> None:
    ledger.record_pending("/scans/a.png", SHA_A, 10, 1)
    ledger.record_pending("/scans/copy-of-a.png", SHA_A, 10, 1)
    ledger.record_pending("/scans/b.png", SHA_B, 10, 1)
    ledger.store_result(SHA_A, "rapid", None, b"{}")

    ledger.forget("/scans/a.png")
    assert ledger.latest("/scans/a.png") is None
    assert ledger.get("/scans/a.png", SHA_A) is None
    assert ledger.get("/scans/b.png", SHA_B) is not None
    assert ledger.load_result(SHA_A, "rapid", None) == b"{}"  # a copy still has this content
    ledger.forget("/scans/copy-of-a.png")
    assert ledger.load_result(SHA_A, "rapid", None) is None  # no file refers to it: pruned
    ledger.forget("/scans/never-seen.png")  # no error


def test_a_changed_file_prunes_the_result_of_its_old_content(ledger: Ledger) -> None:
    ledger.record_pending("/scans/a.png", SHA_A, 10, 1)
    ledger.store_result(SHA_A, "rapid", None, b"{}")
    ledger.record_pending("/scans/a.png", SHA_B, 12, 2)
    assert ledger.load_result(SHA_A, "rapid", None) is None


# -- stored results ---------------------------------------------------------------------------------------


def test_result_round_trip_is_compressed(ledger: Ledger, db_path: Path) -> None:
    data = b'{"pages": [{"text": "' + b"the same line of text again " * 5000 + b'"}]}'
    ledger.store_result(SHA_A, "llama_cpp", "granite", data)

    assert ledger.load_result(SHA_A, "llama_cpp", "granite") == data
    conn = raw(db_path)
    (stored,) = conn.execute("SELECT length(data) FROM results").fetchone()
    conn.close()
    assert stored < len(data) / 10


def test_results_are_keyed_by_hash_engine_and_model(ledger: Ledger) -> None:
    ledger.store_result(SHA_A, "rapid", None, b"rapid")
    ledger.store_result(SHA_A, "llama_cpp", "granite", b"granite")
    ledger.store_result(SHA_A, "llama_cpp", "granite", b"granite, again")  # replaces

    assert ledger.load_result(SHA_A, "rapid", None) == b"rapid"
    assert ledger.load_result(SHA_A, "rapid", "") == b"rapid"  # None is stored as ''
    assert ledger.load_result(SHA_A, "llama_cpp", "granite") == b"granite, again"
    assert ledger.load_result(SHA_A, "llama_cpp", "other") is None
    assert ledger.load_result(SHA_B, "rapid", None) is None
    assert ledger.load_result(SHA_A, "mlx_vlm", "granite") is None


def test_damaged_stored_result_reads_as_missing(ledger: Ledger, db_path: Path) -> None:
    ledger.store_result(SHA_A, "rapid", None, b"fine")
    conn = raw(db_path)
    conn.execute("UPDATE results SET data = ?", (b"not zlib",))
    conn.close()
    assert ledger.load_result(SHA_A, "rapid", None) is None


# -- durability and sharing -------------------------------------------------------------------------------


def test_rows_survive_close_and_reopen(db_path: Path) -> None:
    with Ledger(db_path, clock=FakeClock()) as first:
        first.record_pending("/scans/a.png", SHA_A, 10, 1)
        first.start("/scans/a.png", SHA_A)
        first.mark_done(
            "/scans/a.png", SHA_A, sidecar="/scans/a.png.md", engine="rapid", model=None, seconds=3
        )
        first.record_pending("/scans/b.png", SHA_B, 20, 2)
        first.mark_failed("/scans/b.png", SHA_B, "EBUSY", permanent=False, retry_at=9.0)
        first.store_result(SHA_A, "rapid", None, b"result")
        before = (first.get("/scans/a.png", SHA_A), first.get("/scans/b.png", SHA_B), first.counts())

    with Ledger(db_path) as second:
        after = (second.get("/scans/a.png", SHA_A), second.get("/scans/b.png", SHA_B), second.counts())
        assert after == before
        assert second.load_result(SHA_A, "rapid", None) == b"result"


def test_second_connection_sees_committed_rows_while_first_is_open(db_path: Path) -> None:
    with Ledger(db_path) as writer, Ledger(db_path) as reader:
        writer.record_pending("/scans/a.png", SHA_A, 10, 1)
        assert reader.get("/scans/a.png", SHA_A) is not None
        writer.mark_done("/scans/a.png", SHA_A, sidecar="a.md", engine="rapid", model=None, seconds=1)
        assert reader.counts()[Status.DONE] == 1
        reader.record_pending("/scans/b.png", SHA_B, 10, 1)  # both can write, too
        assert writer.get("/scans/b.png", SHA_B) is not None


def test_closed_ledger_cannot_be_used(db_path: Path) -> None:
    with Ledger(db_path) as opened:
        opened.record_pending("/scans/a.png", SHA_A, 10, 1)
    opened.close()  # closing again is fine
    with pytest.raises(sqlite3.ProgrammingError):
        opened.counts()


_SELF_KILL = """
import os, signal, sys
from pathlib import Path
from textdrop.watcher.ledger import Ledger

ledger = Ledger(Path(sys.argv[1]))
for i in range(50):
    path, digest = f"/scans/{i}.png", f"{i:064x}"
    ledger.record_pending(path, digest, i, i)
    ledger.start(path, digest)
    if i % 2:
        ledger.mark_failed(path, digest, "corrupt", permanent=True)
    else:
        ledger.mark_done(path, digest, sidecar=path + ".md", engine="rapid", model=None, seconds=0.5)
ledger.store_result("f" * 64, "rapid", None, b"kept")
os.kill(os.getpid(), signal.SIGKILL)
"""


@needs_sigkill
def test_kill_9_after_writes_loses_nothing(db_path: Path) -> None:
    child = subprocess.run(
        [sys.executable, "-c", _SELF_KILL, str(db_path)], cwd=REPO, capture_output=True, timeout=60
    )
    assert child.returncode == -signal.SIGKILL, child.stderr.decode()
    assert Path(f"{db_path}-wal").stat().st_size > 0  # the rows were only in the WAL when it died

    with Ledger(db_path) as reopened:
        assert reopened.counts() == {Status.PENDING: 0, Status.DONE: 25, Status.FAILED: 25}
        entry = reopened.get("/scans/48.png", sha(48))
        assert entry is not None
        assert (entry.status, entry.attempts, entry.sidecar) == (Status.DONE, 1, "/scans/48.png.md")
        assert reopened.load_result("f" * 64, "rapid", None) == b"kept"


_WRITE_FOREVER = """
import sys
from pathlib import Path
from textdrop.watcher.ledger import Ledger

ledger = Ledger(Path(sys.argv[1]))
i = 0
while True:
    path, digest = f"/scans/{i}.png", f"{i:064x}"
    ledger.record_pending(path, digest, i, i)
    ledger.start(path, digest)
    ledger.mark_done(path, digest, sidecar=path + ".md", engine="rapid", model=None, seconds=0.5)
    print(i, flush=True)
    i += 1
"""


@needs_sigkill
def test_kill_9_in_the_middle_of_writing_keeps_every_finished_row(db_path: Path) -> None:
    child = subprocess.Popen(
        [sys.executable, "-u", "-c", _WRITE_FOREVER, str(db_path)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    announced = -1
    try:
        assert child.stdout is not None
        for line in child.stdout:
            announced = int(line)
            if announced >= 300:
                break
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
        child.stdout.close()  # type: ignore[union-attr]
        child.stderr.close()  # type: ignore[union-attr]
    assert announced >= 300, "the writer died before writing 300 rows"

    with Ledger(db_path) as reopened:
        for i in range(announced + 1):
            entry = reopened.get(f"/scans/{i}.png", sha(i))
            assert entry is not None and entry.status is Status.DONE, i
        counts = reopened.counts()
        assert counts[Status.DONE] >= announced + 1
        assert counts[Status.PENDING] <= 1  # at most the row whose job was under way


def test_four_threads_share_one_ledger(ledger: Ledger) -> None:
    per_thread = 100
    barrier = threading.Barrier(5)
    errors: list[BaseException] = []
    writers_done = threading.Event()

    def write(worker: int) -> None:
        try:
            barrier.wait()
            for i in range(per_thread):
                path, digest = f"/scans/{worker}/{i}.png", sha(worker * 1000 + i)
                ledger.record_pending(path, digest, i, i)
                assert ledger.start(path, digest) == 1
                ledger.mark_done(path, digest, sidecar=f"{path}.md", engine="rapid", model=None, seconds=0.1)
        except BaseException as exc:
            errors.append(exc)

    def read() -> None:
        try:
            barrier.wait()
            while not writers_done.is_set():
                assert sum(ledger.counts().values()) <= 4 * per_thread
                ledger.failures()
        except BaseException as exc:
            errors.append(exc)

    writers = [threading.Thread(target=write, args=(worker,)) for worker in range(4)]
    reader = threading.Thread(target=read)
    for thread in [*writers, reader]:
        thread.start()
    for thread in writers:
        thread.join(timeout=60)
    writers_done.set()
    reader.join(timeout=60)

    assert errors == []
    assert ledger.counts() == {Status.PENDING: 0, Status.DONE: 4 * per_thread, Status.FAILED: 0}
    for worker in range(4):
        for i in range(per_thread):
            entry = ledger.get(f"/scans/{worker}/{i}.png", sha(worker * 1000 + i))
            assert entry is not None and entry.status is Status.DONE and entry.attempts == 1
