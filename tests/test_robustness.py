"""Adversarial tests for ``textdrop ocr`` and ``textdrop watch`` (issue 12): whole classes of failure.

Each section is one failure class: file names of any bytes Linux allows, supervised watcher threads,
output names unique per source, a busy ledger, transient write failures, non-regular files, signals,
unusable data locations, a source replaced while being read, and batch order. The fake engine stands in
wherever the OCR output is not the subject; signal and exit-code tests run ``textdrop`` in a real process
(``python -m tests.helpers.run_textdrop``, the real CLI with the test engines registered).

The tests run as root on CI, where permission bits do not stop a write: permission, read-only and
disk-full failures are simulated by making the write call raise ``OSError`` with that errno (each test
says which call), not by ``chmod``.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from PIL import Image

from tests.helpers.fake_engines import FakeEngine
from tests.helpers.watching import Harness
from textdrop.cli import run
from textdrop.engine.documents.sidecar import read_metadata
from textdrop.engine.documents.sources import file_label
from textdrop.engine.errors import ExitCode
from textdrop.watcher.ledger import Ledger, Status
from textdrop.watcher.service import FolderOptions, WatchService

ROOT = Path(__file__).resolve().parents[1]
REAL_REPLACE = os.replace

ODD_NAMES: list[bytes] = [
    b"latin1-\xe9t\xe9.png",  # not UTF-8: a name copied from an old Windows share
    b"lone-\xff.png",
    b"newline-\n.png",
    b"cr-\r.png",
    b"tab-\t.png",
    b"escape-\x1b[31mred.png",  # a terminal escape sequence
    "nel-\u0085.png".encode(),  # NEXT LINE, a YAML line break
    "ls-\u2028.png".encode(),  # LINE SEPARATOR
    "ps-\u2029.png".encode(),  # PARAGRAPH SEPARATOR
    b"quote-'\"-colon: #.png",  # YAML syntax in a name
    b"back\\slash-\\xff.png",  # a literal backslash escape: must not collide with lone-\xff
]
"""File names a Linux file system allows and that once broke the ledger, log lines or front matter."""


def png(path: str | bytes | os.PathLike, seed: int = 0, size: tuple[int, int] = (40, 30)) -> Path:
    """Write a small PNG whose bytes depend on ``seed``; returns its path as a ``Path``."""
    image = Image.new("RGB", size, (seed % 256, seed // 256 % 256, 7))
    image.putpixel((0, 0), (seed * 7 % 256, 1, 2))
    with open(path, "wb") as handle:
        image.save(handle, "PNG")
    return Path(os.fsdecode(path))


def wait_until(condition, timeout: float = 15.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


def sidecars(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.name.endswith(".md"))


def temp_files(folder: Path) -> list[Path]:
    return sorted(folder.rglob(".textdrop-*.tmp"))


_processes: list[subprocess.Popen[bytes]] = []


@pytest.fixture(autouse=True)
def no_leaked_processes() -> Iterator[None]:
    yield
    while _processes:
        process = _processes.pop()
        if process.poll() is None:
            process.kill()
            process.wait()


def textdrop_process(*args: str | os.PathLike, delay: float = 0.02, **kwargs) -> subprocess.Popen[bytes]:
    """``textdrop ARGS`` in a process of its own with the test engines (``slow``: ``delay`` s/page)."""
    env = {**os.environ, "TEXTDROP_TEST_DELAY": str(delay), "PYTHONPATH": str(ROOT), "COLUMNS": "10000"}
    command = [sys.executable, "-m", "tests.helpers.run_textdrop", *map(os.fsencode, args)]
    process = subprocess.Popen(command, cwd=ROOT, env=env, **kwargs)
    _processes.append(process)
    return process


@pytest.fixture
def wide(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Keep rich from wrapping lines, and let capsys's stderr take non-UTF-8 names like the real one."""
    monkeypatch.setenv("COLUMNS", "100000")
    capsys.readouterr()
    sys.stderr.reconfigure(errors="backslashreplace")


@pytest.fixture
def inbox(tmp_path: Path) -> Path:
    folder = tmp_path / "inbox"
    folder.mkdir()
    return folder


def folder(path: Path, **options) -> FolderOptions:
    return FolderOptions(path=path, **{"settle_seconds": 0.05, **options})


# ----- 1. any file name the OS allows ------------------------------------------------------------------


def test_the_ledger_keeps_any_path_exactly_and_apart_from_look_alikes(tmp_path: Path) -> None:
    with Ledger(tmp_path / "ledger.sqlite3") as ledger:
        paths = [os.fsdecode(b"/scans/" + name) for name in ODD_NAMES]
        for number, path in enumerate(paths):
            ledger.record_pending(path, f"{number:064x}", 1, 2)
            ledger.mark_done(
                path, f"{number:064x}", sidecar=path + ".md", engine="fake", model=None, seconds=0
            )
        for number, path in enumerate(paths):
            entry = ledger.latest(path)
            assert entry is not None and entry.path == path and entry.sha256 == f"{number:064x}"
            assert entry.sidecar == path + ".md"
        assert ledger.counts()[Status.DONE] == len(ODD_NAMES)
        ledger.move(paths[0], paths[0] + ".moved.png")
        assert ledger.latest(paths[0]) is None and ledger.latest(paths[0] + ".moved.png") is not None
        ledger.forget(paths[1])
        assert ledger.latest(paths[1]) is None


def test_file_labels_are_one_printable_line_for_any_name() -> None:
    labels = [file_label(os.fsdecode(name)) for name in ODD_NAMES]
    for label in labels:
        assert label.isprintable(), repr(label)
        assert label.encode("utf-8")  # never a lone surrogate
        assert yaml.safe_load(yaml.safe_dump({"source": label}, allow_unicode=True))["source"] == label
    assert len(set(labels)) == len(labels)


def test_watch_once_reads_every_odd_name_once_and_a_second_run_writes_nothing(
    fake_engine: type[FakeEngine], inbox: Path, textdrop_home: Path, wide, capsys
) -> None:
    for seed, name in enumerate(ODD_NAMES):
        png(os.fsencode(inbox) + b"/" + name, seed=seed)
    assert run(["watch", str(inbox), "--once", "--settle", "0", "-e", "fake"]) == 0
    err = capsys.readouterr().err
    written = sidecars(inbox)
    assert len(written) == len(ODD_NAMES)
    for name in ODD_NAMES:
        source = Path(os.fsdecode(os.fsencode(inbox) + b"/" + name))
        sidecar = source.with_name(source.name + ".md")
        assert read_metadata(sidecar)["source"] == file_label(source.name), name
    ticks = [line for line in err.splitlines() if line.startswith("✓")]
    assert len(ticks) == len(ODD_NAMES), err  # one line per file: no name breaks a line
    for char in "\x1b\x85\u2028\u2029\r":
        assert char not in err
    log = (textdrop_home / "logs" / "textdrop.log").read_bytes().decode("utf-8")  # valid UTF-8
    assert "Logging error" not in err and log.count("→") == len(ODD_NAMES)

    assert run(["watch", str(inbox), "--once", "--settle", "0", "-e", "fake"]) == 0
    assert sidecars(inbox) == written, "a second run made new sidecars: a name did not round-trip"
    assert len(fake_engine.pages) == len(ODD_NAMES)

    assert run(["status", "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["files"]["done"] == len(ODD_NAMES)
    assert run(["ocr", "-e", "fake", str(inbox)]) == 0  # the front matter names each source exactly
    assert f"0 written, {len(ODD_NAMES)} up to date" in capsys.readouterr().err


def test_a_live_arrival_with_a_non_utf8_name_is_read_and_the_service_lives_on(
    harness: Harness, inbox: Path
) -> None:
    service = harness.start(folder(inbox), rescan_minutes=0.002)  # rescans every 0.12 s
    bad = png(os.fsencode(inbox) + b"/arrived-\xff\n.png", seed=1)
    wait_until(lambda: harness.statuses(bad.name) == ["done"], what="the odd name's sidecar")
    time.sleep(0.5)  # several rescans, each of which once killed the thread
    good = png(inbox / "later.png", seed=2)
    wait_until(lambda: harness.statuses(good.name) == ["done"], what="a later file")
    service.check()  # raises if a thread died
    assert harness.ledger.latest(str(bad)).status == Status.DONE


def test_folders_add_refuses_a_folder_name_the_config_file_cannot_hold(
    tmp_path: Path, textdrop_home: Path, wide, capsys
) -> None:
    odd = Path(os.fsdecode(os.fsencode(tmp_path) + b"/scans-\xff"))
    odd.mkdir()
    assert run(["folders", "add", str(odd)]) == ExitCode.USAGE
    err = capsys.readouterr().err
    assert "textdrop watch FOLDER" in err and "Traceback" not in err
    assert not (textdrop_home / "config" / "config.toml").exists()


def test_an_error_line_for_an_odd_name_is_one_line(
    fake_engine: type[FakeEngine], tmp_path: Path, wide, capsys
) -> None:
    bad = Path(os.fsdecode(os.fsencode(tmp_path) + b"/bad-\n" + "\u2028".encode() + b"-\xff.png"))
    bad.write_bytes(b"not an image")
    assert run(["ocr", "-e", "fake", str(bad)]) == ExitCode.INPUT_FILE
    lines = capsys.readouterr().err.splitlines()
    assert len([line for line in lines if line.startswith("✗")]) == 1 and len(lines) == 2, lines
    assert file_label(bad.name) in lines[0]


# ----- 6. non-regular files ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["fifo", "symlink to /dev/zero", "symlink to /dev/null"])
def test_non_regular_files_are_refused_at_once(tmp_path: Path, textdrop_home: Path, kind: str) -> None:
    path = tmp_path / "scan.png"
    if kind == "fifo":
        os.mkfifo(path)
    else:
        path.symlink_to(kind.split()[-1])
    process = textdrop_process("ocr", "-e", "fake", path, stderr=subprocess.PIPE)
    try:
        _, err = process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        pytest.fail(f"textdrop ocr hung on a {kind}")
    assert process.returncode == ExitCode.FILE_ACCESS, err.decode()
    assert "not a regular file" in err.decode()


def test_a_fifo_arriving_in_a_watched_folder_does_not_block_the_others(harness: Harness, inbox: Path) -> None:
    harness.start(folder(inbox))
    os.mkfifo(inbox / "pipe.png")
    time.sleep(0.3)
    png(inbox / "after.png", seed=3)
    wait_until(lambda: harness.statuses("after.png") == ["done"], what="the file after the FIFO")
    assert not (inbox / "pipe.png.md").exists()


# ----- 8. unusable data locations -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("where", "make"),
    [
        ("data", lambda home: (home / "data").write_text("a file, not a folder")),
        ("logs", lambda home: (home / "logs").write_text("a file, not a folder")),
        ("data/watch.lock", lambda home: (home / "data" / "watch.lock").mkdir(parents=True)),
        ("data/ledger.sqlite3", lambda home: (home / "data" / "ledger.sqlite3").mkdir(parents=True)),
    ],
)
def test_an_unusable_data_location_is_named_without_a_traceback(
    textdrop_home: Path, inbox: Path, fake_engine, wide, capsys, where: str, make
) -> None:
    make(textdrop_home)
    png(inbox / "a.png")
    code = run(["watch", str(inbox), "--once", "--settle", "0", "-e", "fake"])
    err = capsys.readouterr().err
    assert code == ExitCode.FILE_ACCESS, err
    assert "Traceback" not in err and str(textdrop_home / where) in err
    assert "TEXTDROP_HOME" in err or "remove" in err.lower() or "move" in err.lower()


def test_a_read_only_home_is_named(textdrop_home: Path, inbox: Path, fake_engine, wide, capsys, monkeypatch):
    """Root ignores permission bits, so ``mkdir`` is made to fail with EROFS, as on a read-only mount."""
    real = Path.mkdir

    def read_only(self: Path, *args, **kwargs) -> None:
        if str(self).startswith(str(textdrop_home)):
            raise OSError(errno.EROFS, "Read-only file system", str(self))
        real(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", read_only)
    code = run(["watch", str(inbox), "--once", "--settle", "0", "-e", "fake"])
    err = capsys.readouterr().err
    assert code == ExitCode.FILE_ACCESS and "Traceback" not in err
    assert str(textdrop_home / "data") in err and "Read-only" in err


# ----- 10. batch order and exit code --------------------------------------------------------------------


def test_batch_lines_and_exit_code_follow_the_argument_order(
    fake_engine: type[FakeEngine], tmp_path: Path, wide, capsys
) -> None:
    first = png(tmp_path / "first.png", seed=1)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image")
    missing = tmp_path / "missing.png"
    last = png(tmp_path / "last.png", seed=2)
    code = run(["ocr", "-e", "fake", str(first), str(broken), str(missing), str(last)])
    assert code == ExitCode.INPUT_FILE, "the first failure in argument order is the broken file"
    lines = [line for line in capsys.readouterr().err.splitlines() if line[:1] in "✓✗="]
    named = [next(n for n in ("first", "broken", "missing", "last") if n + ".png" in line) for line in lines]
    assert named == ["first", "broken", "missing", "last"], lines

    code = run(["ocr", "-e", "fake", str(missing), str(broken), str(first)])
    assert code == ExitCode.FILE_ACCESS
    lines = [line for line in capsys.readouterr().err.splitlines() if line[:1] in "✓✗="]
    assert ["missing" in lines[0], "broken" in lines[1], "first" in lines[2]] == [True] * 3, lines


# ----- 2. supervised threads -----------------------------------------------------------------------------


def test_an_error_in_a_rescan_does_not_kill_the_service(
    harness: Harness, inbox: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = harness.start(folder(inbox), rescan_minutes=0.002)
    real, failures = WatchService._scan, []

    def failing_scan(self: WatchService) -> None:
        if len(failures) < 3:
            failures.append(1)
            raise RuntimeError("a rescan failed")
        real(self)

    monkeypatch.setattr(WatchService, "_scan", failing_scan)
    wait_until(lambda: len(failures) == 3, what="three failed rescans")
    png(inbox / "after.png", seed=4)
    wait_until(lambda: harness.statuses("after.png") == ["done"], what="a file after the failed rescans")
    service.check()


def test_a_dead_observer_is_replaced_and_what_arrived_meanwhile_is_read(
    harness: Harness, inbox: Path
) -> None:
    service = harness.start(folder(inbox))
    for observer in service._observers:
        for emitter in observer.emitters:
            emitter.stop()
            emitter.join(5)
    png(inbox / "missed.png", seed=5)  # no observer sees this one
    service.check()
    wait_until(lambda: harness.statuses("missed.png") == ["done"], what="the file missed while unobserved")
    png(inbox / "seen.png", seed=6)
    wait_until(lambda: harness.statuses("seen.png") == ["done"], what="a file seen by the new observer")


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")  # the point of the test
def test_a_dead_job_worker_stops_the_service_with_the_cause(
    harness: Harness, inbox: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A BaseException escaping the engine (here SystemExit) ends the job worker; the service must say
    so instead of queueing files nobody reads."""

    def fatal(self, image, options):
        raise SystemExit("the engine pulled the plug")

    monkeypatch.setattr(FakeEngine, "recognize_page", fatal)
    service = harness.start(folder(inbox))
    png(inbox / "a.png")
    wait_until(lambda: not harness.jobs.alive, what="the worker to end")
    with pytest.raises(Exception, match="OCR worker thread ended"):
        service.check()


def test_a_watched_folder_that_vanishes_stops_the_service_with_its_name(
    harness: Harness, inbox: Path
) -> None:

    from textdrop.engine.errors import ConfigError

    service = harness.start(folder(inbox))
    shutil.rmtree(inbox)
    wait_until(lambda: not all(e.is_alive() for o in service._observers for e in o.emitters), what="emitter")
    with pytest.raises(ConfigError, match="does not exist"):
        service.check()
    with pytest.raises(ConfigError):
        service.check()  # and stays stopped


def test_watch_exits_non_zero_when_its_dispatch_thread_dies(
    fake_engine, inbox: Path, textdrop_home: Path, wide, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The dispatch loop is made to raise a BaseException (as an unforeseen bug would); ``watch --once``
    must not wait forever for a dead thread. A timer sends SIGTERM after 20 s in case it does."""

    class Bug(BaseException):
        pass

    def broken(self: WatchService) -> None:
        raise Bug("a bug in the dispatch loop")

    monkeypatch.setattr(WatchService, "_dispatch_ready", broken)
    png(inbox / "a.png")
    timer = threading.Timer(20, os.kill, (os.getpid(), signal.SIGTERM))
    timer.start()
    try:
        code = run(["watch", str(inbox), "--once", "--settle", "0", "-e", "fake"])
    finally:
        timer.cancel()
    err = capsys.readouterr().err
    assert code not in (ExitCode.OK, ExitCode.TERMINATED), err
    assert "dispatch" in err or "Bug" in err
    log = (textdrop_home / "logs" / "textdrop.log").read_text()
    assert "a bug in the dispatch loop" in log


# ----- 4. a busy ledger ----------------------------------------------------------------------------------


def test_a_ledger_locked_by_another_process_fails_clearly_and_loses_nothing(
    fake_engine, inbox: Path, textdrop_home: Path, wide, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    from textdrop.watcher import ledger as ledger_module

    png(inbox / "first.png", seed=1)
    assert run(["watch", str(inbox), "--once", "--settle", "0", "-e", "fake"]) == 0
    png(inbox / "second.png", seed=2)
    monkeypatch.setattr(ledger_module, "BUSY_TIMEOUT_S", 0.5)
    holder = sqlite3.connect(textdrop_home / "data" / "ledger.sqlite3", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    try:
        code = run(["watch", str(inbox), "--once", "--settle", "0", "-e", "fake"])
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    err = capsys.readouterr().err
    assert code == ExitCode.FILE_ACCESS, err
    assert "locked" in err and "ledger" in err
    assert not (inbox / "second.png.md").exists()
    assert run(["watch", str(inbox), "--once", "--settle", "0", "-e", "fake"]) == 0
    assert (inbox / "second.png.md").exists()


# ----- 5. transient write failures -----------------------------------------------------------------------


def failing_renames(monkeypatch: pytest.MonkeyPatch, into: Path, code: int, times: int) -> list[str]:
    """Make renames into ``into`` fail ``times`` times with ``code``, as the kernel reports a full disk
    (ENOSPC), a read-only mount (EROFS) or a forbidden folder (EACCES); root ignores permission bits, so
    this stands in for chmod. Returns the list of failed targets."""
    real = REAL_REPLACE
    failed: list[str] = []

    def replace(src, dst, *args, **kwargs):
        if str(dst).startswith(str(into)) and len(failed) < times:
            failed.append(str(dst))
            raise OSError(code, os.strerror(code), str(dst))
        return real(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", replace)
    return failed


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS, errno.EACCES])
def test_a_failing_sidecar_write_is_retried_until_it_succeeds_without_a_second_ocr(
    harness: Harness, inbox: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    out = tmp_path / "out"
    failed = failing_renames(monkeypatch, out, code, times=8)
    harness.start(folder(inbox, output=out), max_attempts=3, retry_seconds=0.02, max_retry_seconds=0.1)
    png(inbox / "scan.png", seed=7)
    wait_until(
        lambda: harness.statuses("scan.png")[-1:] == ["done"],
        what=f"the write to succeed: {harness.events}, {failed}",
    )
    assert len(failed) == 8 and harness.statuses("scan.png") == ["retry"] * 8 + ["done"]
    assert (out / "scan.png.md").exists() and temp_files(out) == []
    assert len(FakeEngine.pages) == 1, "the result was stored: retries only write"
    assert harness.ledger.latest(str(inbox / "scan.png")).status == Status.DONE


def test_watch_once_leaves_an_unwritable_file_pending_for_the_next_run(
    fake_engine, inbox: Path, tmp_path: Path, textdrop_home: Path, wide, capsys, monkeypatch
) -> None:
    from tests.conftest import write_config

    write_config(textdrop_home, "[watch]\nretry_seconds = 0.02\nmax_attempts = 2\n")
    out = tmp_path / "out"
    png(inbox / "scan.png", seed=8)
    (inbox / "broken.png").write_bytes(b"not an image")
    failing_renames(monkeypatch, out, errno.ENOSPC, times=100)
    assert run(["watch", str(inbox), "-o", str(out), "--once", "--settle", "0", "-e", "fake"]) == 1
    capsys.readouterr()
    assert run(["watch", "--status", "--json"]) == 0
    failures = {Path(f["path"]).name: f for f in json.loads(capsys.readouterr().out)["failures"]}
    assert failures["scan.png"]["permanent"] is False and "No space" in failures["scan.png"]["error"]
    assert failures["broken.png"]["permanent"] is True
    monkeypatch.setattr(os, "replace", REAL_REPLACE)  # the disk has room again
    assert run(["watch", str(inbox), "-o", str(out), "--once", "--settle", "0", "-e", "fake"]) == 0
    assert (out / "scan.png.md").exists()


# ----- 7. signals ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
@pytest.mark.parametrize("command", ["ocr", "watch --once"])
def test_a_signal_stops_a_batch_with_its_code_and_leaves_no_half_written_sidecar(
    tmp_path: Path, textdrop_home: Path, signum: int, code: int, command: str
) -> None:
    files = [png(tmp_path / f"p{n}.png", seed=n) for n in range(8)]
    if command == "ocr":
        args = ["ocr", "-e", "slow", *files]
    else:
        args = ["watch", tmp_path, "--once", "--settle", "0", "-e", "slow"]
    process = textdrop_process(*args, delay=0.4, stderr=subprocess.PIPE)
    wait_until(lambda: len(sidecars(tmp_path)) >= 1, timeout=30, what="a first sidecar")
    process.send_signal(signum)
    _, err = process.communicate(timeout=30)
    assert process.returncode == code, err.decode()
    assert temp_files(tmp_path) == []
    done = sidecars(tmp_path)
    assert 1 <= len(done) < len(files)
    for sidecar in done:
        source = sidecar.with_name(sidecar.name.removesuffix(".md"))
        assert read_metadata(sidecar)["sha256"] == hashlib.sha256(source.read_bytes()).hexdigest()


# ----- 9. a source deleted or replaced while it is read --------------------------------------------------


class MutatingEngine(FakeEngine):
    """:class:`FakeEngine` that, while it reads a page, does :attr:`action` to the file being read:
    ``delete`` it, ``replace`` it by another image (a rename over it), or ``append`` bytes to it."""

    name = "mutating"
    action = "delete"
    target: Path | None = None

    def recognize_page(self, image, options):
        target, action = type(self).target, type(self).action
        if target is not None and target.exists():
            type(self).target = None  # once
            if action == "delete":
                target.unlink()
            elif action == "replace":
                png(target.with_name("new.tmp"), seed=99)
                os.replace(target.with_name("new.tmp"), target)
            else:
                with open(target, "ab") as handle:
                    handle.write(b"more")
        return super().recognize_page(image, options)


@pytest.fixture
def mutating(monkeypatch: pytest.MonkeyPatch, fake_engine) -> type[MutatingEngine]:
    from textdrop.engine import registry

    monkeypatch.setitem(registry.BUILTIN_ENGINES, "mutating", "tests.test_robustness:MutatingEngine")
    yield MutatingEngine
    MutatingEngine.target = None


@pytest.mark.parametrize("action", ["delete", "replace", "append"])
def test_ocr_writes_no_sidecar_for_a_source_changed_while_it_was_read(
    mutating, tmp_path: Path, wide, capsys, action: str
) -> None:
    source = png(tmp_path / "scan.png", seed=1)
    mutating.action, mutating.target = action, source
    assert run(["ocr", "-e", "mutating", str(source)]) == ExitCode.FILE_ACCESS
    assert "while it was read" in capsys.readouterr().err
    assert sidecars(tmp_path) == [] and temp_files(tmp_path) == []


@pytest.mark.parametrize("action", ["delete", "replace", "append"])
def test_the_watcher_writes_a_sidecar_only_for_content_that_still_exists(
    harness: Harness, inbox: Path, mutating, action: str
) -> None:
    source = png(inbox / "scan.png", seed=1)
    mutating.action, mutating.target = action, source
    harness.start(folder(inbox), engine="mutating")
    if action == "delete":
        wait_until(lambda: harness.service.backlog == 0 and FakeEngine.pages, what="the read")
        time.sleep(0.3)
        assert sidecars(inbox) == [] and harness.ledger.latest(str(source)) is None
        return
    wait_until(lambda: harness.statuses("scan.png") == ["done"], what="the new version's sidecar")
    assert read_metadata(inbox / "scan.png.md")["sha256"] == hashlib.sha256(source.read_bytes()).hexdigest()


# ----- 3. output names unique per source -----------------------------------------------------------------


def test_sources_of_one_name_from_several_folders_get_one_sidecar_each_in_one_output_folder(
    fake_engine, tmp_path: Path, wide, capsys
) -> None:
    tree, out = tmp_path / "tree", tmp_path / "out"
    sources = []
    for number, sub in enumerate(["2024", "2025", "2025/extra"]):
        (tree / sub).mkdir(parents=True)
        sources.append(png(tree / sub / "scan.png", seed=number, size=(40 + number, 30)))
    for fmt, suffix in (("md", ".md"), ("json", ".json")):
        assert run(["ocr", "-e", "fake", "-r", "-o", str(out), "-f", fmt, str(tree)]) == 0
        written = sorted(p.name for p in out.iterdir() if p.name.endswith(suffix))
        assert written == sorted([f"scan.png{suffix}", f"scan.png.1{suffix}", f"scan.png.2{suffix}"])
        by_hash = {read_metadata(out / name)["sha256"]: read_metadata(out / name) for name in written}
        for source in sources:
            meta = by_hash[hashlib.sha256(source.read_bytes()).hexdigest()]
            assert meta["source_folder"] == str(source.parent)
    capsys.readouterr()
    assert run(["ocr", "-e", "fake", "-r", "-o", str(out), str(tree)]) == 0
    assert "0 written, 3 up to date, 0 failed" in capsys.readouterr().err
    png(sources[0], seed=50)  # the first changes: its own sidecar is replaced, the others stay
    assert run(["ocr", "-e", "fake", "-r", "-o", str(out), str(tree)]) == 0
    assert len([p for p in out.iterdir() if p.name.endswith(".md")]) == 3
    assert read_metadata(out / "scan.png.md")["sha256"] == hashlib.sha256(sources[0].read_bytes()).hexdigest()


def test_watched_folders_sharing_an_output_folder_keep_each_sidecar(harness: Harness, tmp_path: Path) -> None:
    out, one, two = tmp_path / "out", tmp_path / "one", tmp_path / "two"
    one.mkdir()
    two.mkdir()
    png(one / "scan.png", seed=1)
    png(two / "scan.png", seed=2)
    harness.start(folder(one, output=out), folder(two, output=out), observe=False)
    wait_until(lambda: len(harness.events) == 2, what="both sidecars")
    assert sorted(p.name for p in out.iterdir()) == ["scan.png.1.md", "scan.png.md"]
    harness.stop()
    harness.events.clear()
    harness.start(folder(one, output=out), folder(two, output=out), observe=False)
    harness.service.wait_idle(timeout=10)
    assert harness.events == [] and len(list(out.iterdir())) == 2  # both recognised as up to date


# ----- command-line conventions --------------------------------------------------------------------------


def test_v_and_q_work_after_the_sub_command(fake_engine, tmp_path: Path, wide, capsys) -> None:
    source = png(tmp_path / "scan.png")
    assert run(["ocr", "-e", "fake", str(source), "-q"]) == 0
    assert capsys.readouterr().err == "" and (tmp_path / "scan.png.md").exists()
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image")
    assert run(["ocr", "--force", "-e", "fake", str(source), str(broken), "-q"]) == ExitCode.INPUT_FILE
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("✗"), "-q keeps errors only"
    assert run(["ocr", str(broken), "-e", "fake", "-v"]) == ExitCode.INPUT_FILE
    assert "Traceback" in capsys.readouterr().err, "-v after the sub-command shows the traceback"
    assert run(["-q", "folders", "list", "--json"]) == 0
    with pytest.raises(SystemExit):
        run(["ocr", "-v", "-q", str(source)])


def test_ocr_dash_reads_an_image_from_standard_input(tmp_path: Path, textdrop_home: Path) -> None:
    source = png(tmp_path / "scan.png", size=(41, 31))
    process = textdrop_process(
        "ocr", "-e", "fake", "-", stdin=source.open("rb"), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err.decode()
    assert out.decode().strip() == "fake page 41x31"
    assert sidecars(tmp_path) == []


def test_folders_json_lists_what_the_config_says(
    inbox: Path, tmp_path: Path, textdrop_home: Path, capsys
) -> None:
    assert run(["folders", "add", str(inbox), "--settle", "5", "-o", str(tmp_path / "out")]) == 0
    capsys.readouterr()
    assert run(["folders", "--json"]) == 0
    folders = json.loads(capsys.readouterr().out)
    assert folders == [
        {
            "path": str(inbox),
            "recursive": False,
            "patterns": list(FolderOptions(path=inbox).patterns),
            "settle_seconds": 5.0,
            "polling": False,
            "output": str(tmp_path / "out"),
            "engine": None,
            "template": None,
            "outputs": ["md"],
            "languages": None,
            "clipboard": False,
            "notify": False,
        }
    ]
    assert run(["folders", "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == folders
