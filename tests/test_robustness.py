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
import json
import os
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
from textdrop.cli import run
from textdrop.engine.errors import ExitCode
from textdrop.engine.sidecar import read_metadata
from textdrop.engine.sources import file_label
from textdrop.watcher.ledger import Ledger, Status
from textdrop.watcher.service import FileEvent, FolderOptions, WatchOptions, WatchService

ROOT = Path(__file__).resolve().parents[1]

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


class Harness:
    """A ledger, a job queue and a watch service, stopped at the end of the test."""

    def __init__(self, tmp_path: Path) -> None:
        self.ledger = Ledger(tmp_path / "ledger.sqlite3")
        self.events: list[FileEvent] = []
        self.service: WatchService | None = None
        self.jobs = None

    def start(self, *folders: FolderOptions, engine: str = "fake", observe: bool = True, **options):
        from textdrop.engine.jobs import JobQueue

        self.stop()
        self.jobs = JobQueue(engine).start()
        self.service = WatchService(
            folders,
            ledger=self.ledger,
            jobs=self.jobs,
            options=WatchOptions(**{"retry_seconds": 0.05, **options}),
            observe=observe,
            on_event=self.events.append,
        ).start()
        return self.service

    def stop(self) -> None:
        if self.service is not None:
            self.service.stop(timeout=10)
            self.service = None
        if self.jobs is not None:
            self.jobs.stop(grace=10, cancel_pending=True)
            self.jobs = None

    def statuses(self, name: str) -> list[str]:
        return [event.status for event in self.events if event.path.name == name]


@pytest.fixture
def harness(tmp_path: Path, fake_engine: type[FakeEngine]) -> Iterator[Harness]:
    harness = Harness(tmp_path)
    yield harness
    harness.stop()
    harness.ledger.close()
    left = [t.name for t in threading.enumerate() if t.name.startswith(("textdrop-watch", "textdrop-jobs"))]
    assert not left, f"threads left running: {left}"


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
