"""The watch service on a real filesystem with real watchdog observers.

Fake engines stand in where the engine is not the subject (they return ``fake page WxH`` and record every
page they see, so a test can count how often a file was really recognised).
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import ClassVar

import psutil
import pytest
from PIL import Image

from tests.conftest import write_config
from tests.helpers.fake_engines import FakeEngine
from tests.helpers.watching import Harness
from textdrop.cli import run
from textdrop.engine import registry
from textdrop.engine.documents.sidecar import read_metadata
from textdrop.engine.errors import ConfigError
from textdrop.engine.registry import RecognizeOptions
from textdrop.engine.result import PageResult
from textdrop.watcher.ledger import Ledger, Status
from textdrop.watcher.service import (
    MAX_IN_FLIGHT,
    FolderOptions,
    check_folders,
    is_ignored,
)

ROOT = Path(__file__).resolve().parents[1]


def png(path: Path, seed: int = 0, size: tuple[int, int] = (40, 30)) -> Path:
    """Write a small PNG whose bytes depend on ``seed`` (distinct seeds: distinct content)."""
    image = Image.new("RGB", size, (seed % 256, seed // 256 % 256, 7))
    image.putpixel((0, 0), (seed * 7 % 256, 1, 2))
    image.save(path, "PNG")
    return path


def wait_until(condition: Callable[[], bool], timeout: float = 15.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def sidecars(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.md"))


def temp_files(folder: Path) -> list[Path]:
    return sorted(folder.rglob(".textdrop-*.tmp"))


@pytest.fixture
def inbox(tmp_path: Path) -> Path:
    folder = tmp_path / "inbox"
    folder.mkdir()
    return folder


def folder(path: Path, **options: object) -> FolderOptions:
    return FolderOptions(path=path, **{"settle_seconds": 0.2, **options})


# ----- settling: files that arrive slowly, by rename, or leave ---------------------------------------


def test_a_file_written_in_chunks_over_3_s_gets_one_sidecar_after_the_last_chunk(
    harness: Harness, inbox: Path, tmp_path: Path
) -> None:
    png(tmp_path / "whole.png", size=(400, 300))
    data = (tmp_path / "whole.png").read_bytes()
    harness.start(folder(inbox, settle_seconds=0.6))
    target = inbox / "scan.png"
    chunk = len(data) // 10 + 1
    with target.open("wb") as file:
        for start in range(0, len(data), chunk):
            file.write(data[start : start + chunk])
            file.flush()
            os.fsync(file.fileno())
            last_write = time.time()
            time.sleep(0.33)
    wait_until(lambda: harness.done() == 1, what="the sidecar")
    sidecar = inbox / "scan.png.md"
    assert sidecars(inbox) == [sidecar]
    assert sidecar.stat().st_mtime >= last_write
    assert read_metadata(sidecar)["sha256"] == sha256(target)
    assert FakeEngine.pages == [(400, 300)], "recognised exactly once, the whole image"


def test_a_hidden_file_renamed_into_place_is_read_under_its_final_name(harness: Harness, inbox: Path) -> None:
    harness.start(folder(inbox))
    png(inbox / ".screenshot-in-progress.png", seed=1)
    os.rename(inbox / ".screenshot-in-progress.png", inbox / "Screenshot 1.png")
    wait_until(lambda: harness.done() == 1, what="the sidecar")
    assert sidecars(inbox) == [inbox / "Screenshot 1.png.md"]
    assert len(FakeEngine.pages) == 1


def test_a_file_moved_in_from_another_folder_is_read(harness: Harness, inbox: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    harness.start(folder(inbox))
    png(elsewhere / "moved.png", seed=2)
    os.rename(elsewhere / "moved.png", inbox / "moved.png")
    wait_until(lambda: harness.done() == 1, what="the sidecar")
    assert sidecars(inbox) == [inbox / "moved.png.md"]
    assert sidecars(elsewhere) == []


def test_a_file_deleted_before_it_settles_is_dropped(harness: Harness, inbox: Path) -> None:
    service = harness.start(folder(inbox, settle_seconds=0.5))
    png(inbox / "gone.png", seed=3)
    wait_until(lambda: service.backlog == 1, what="the file to be seen")
    (inbox / "gone.png").unlink()
    wait_until(lambda: service.backlog == 0, what="the file to be dropped")
    time.sleep(0.6)  # past its settle time
    assert FakeEngine.pages == []
    assert sidecars(inbox) == []
    assert harness.ledger.latest(str(inbox / "gone.png")) is None


def test_ignored_names_are_never_read(harness: Harness, inbox: Path) -> None:
    (inbox / "@eaDir").mkdir()
    names = [".hidden.png", "._scan.png", "scan.png.part", "scan.png.crdownload", "~$scan.png", "x.tmp"]
    for seed, name in enumerate(names):
        png(inbox / name, seed=seed)
    png(inbox / "@eaDir" / "thumb.png", seed=50)
    (inbox / "Thumbs.db").write_bytes(b"x")
    (inbox / ".DS_Store").write_bytes(b"x")
    png(inbox / "real.png", seed=99)
    harness.start(folder(inbox, recursive=True))
    wait_until(lambda: harness.done() == 1, what="the one real file")
    time.sleep(0.4)
    assert sidecars(inbox) == [inbox / "real.png.md"]
    assert len(FakeEngine.pages) == 1


def test_is_ignored_covers_system_and_partial_files(tmp_path: Path) -> None:
    ignored = [".DS_Store", "._a.jpg", "Thumbs.db", "desktop.ini", "a.jpg.part", "a.crdownload", "~$a.pdf"]
    ignored += [".textdrop-123-abc.tmp", ".a.png", "@eaDir/a.png", ".sync/a.png"]
    for name in ignored:
        assert is_ignored(tmp_path / name, tmp_path), name
    for name in ["scan.jpg", "Screenshot 2026-11-21 at 10.00.00.png", "sub/page.pdf"]:
        assert not is_ignored(tmp_path / name, tmp_path), name
    assert not is_ignored(tmp_path / ".hidden-root" / "a.png", tmp_path / ".hidden-root")


def test_patterns_select_files(harness: Harness, inbox: Path) -> None:
    png(inbox / "scan_1.png", seed=1)
    png(inbox / "photo.png", seed=2)
    harness.start(folder(inbox, patterns=("SCAN_*",)))
    wait_until(lambda: harness.done() == 1, what="the matching file")
    time.sleep(0.4)
    assert sidecars(inbox) == [inbox / "scan_1.png.md"]


def test_a_periodic_rescan_catches_a_file_whose_event_never_came(harness: Harness, inbox: Path) -> None:
    service = harness.start(folder(inbox), rescan_minutes=0.01)
    service._on_event = lambda folder, event: None  # events lost, as on some network shares
    png(inbox / "missed.png", seed=1)
    wait_until(lambda: harness.done() == 1, timeout=10, what="the rescan")
    assert sidecars(inbox) == [inbox / "missed.png.md"]


def test_temp_files_of_killed_writers_are_removed_at_start(harness: Harness, inbox: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = inbox / f".textdrop-{dead.pid}-x1y2.tmp"
    stale.write_text("half a sidecar")
    live = inbox / f".textdrop-{os.getpid()}-a1b2.tmp"
    live.write_text("being written by a running process")
    harness.start(folder(inbox))
    assert not stale.exists()
    assert live.exists()


# ----- exactly once: restarts, copies, edits, bursts -------------------------------------------------


def test_files_present_at_start_are_read_once_across_restarts(harness: Harness, inbox: Path) -> None:
    for seed in range(3):
        png(inbox / f"old{seed}.png", seed=seed)
    harness.start(folder(inbox))
    wait_until(lambda: harness.done() == 3, what="the backlog")
    harness.stop()
    harness.start(folder(inbox))
    time.sleep(0.5)
    assert len(FakeEngine.pages) == 3, "nothing is read again after a restart"
    assert len(sidecars(inbox)) == 3


def test_the_same_content_under_three_names_is_recognised_once(harness: Harness, inbox: Path) -> None:
    harness.start(folder(inbox))
    png(inbox / "a.png", seed=5)
    shutil.copy(inbox / "a.png", inbox / "b.png")
    shutil.copy(inbox / "a.png", inbox / "c.png")
    wait_until(lambda: harness.done() == 3, what="three sidecars")
    assert len(FakeEngine.pages) == 1, "one OCR run for one content"
    for name in "abc":
        metadata = read_metadata(inbox / f"{name}.png.md")
        assert metadata["source"] == f"{name}.png"
        assert metadata["sha256"] == sha256(inbox / "a.png")
    assert sorted(e.status for e in harness.events) == ["done", "reused", "reused"]


def test_a_renamed_file_gets_a_sidecar_under_its_new_name_without_a_second_ocr_run(
    harness: Harness, inbox: Path
) -> None:
    harness.start(folder(inbox))
    png(inbox / "scan.png", seed=4)
    wait_until(lambda: harness.done() == 1, what="the first sidecar")
    os.rename(inbox / "scan.png", inbox / "invoice.png")
    wait_until(lambda: (inbox / "invoice.png.md").exists(), what="the renamed file's sidecar")
    assert len(FakeEngine.pages) == 1
    assert harness.ledger.latest(str(inbox / "scan.png")) is None
    assert harness.ledger.latest(str(inbox / "invoice.png")).status == Status.DONE


def test_an_edited_image_gets_its_sidecar_replaced(harness: Harness, inbox: Path) -> None:
    harness.start(folder(inbox))
    png(inbox / "page.png", seed=1, size=(40, 30))
    wait_until(lambda: harness.done() == 1, what="the first sidecar")
    png(inbox / "page.png", seed=1, size=(60, 30))
    new_sha = sha256(inbox / "page.png")
    wait_until(
        lambda: (read_metadata(inbox / "page.png.md") or {}).get("sha256") == new_sha, what="the new sidecar"
    )
    assert sidecars(inbox) == [inbox / "page.png.md"]
    assert "fake page 60x30" in (inbox / "page.png.md").read_text()
    assert FakeEngine.pages == [(40, 30), (60, 30)]
    assert harness.ledger.latest(str(inbox / "page.png")).sha256 == new_sha
    assert harness.ledger.get(str(inbox / "page.png"), sha256(inbox / "page.png")).status == Status.DONE


def test_a_pdf_the_scanner_appends_a_page_to_is_read_again_whole(harness: Harness, inbox: Path) -> None:
    pages = [Image.new("RGB", (60 + 10 * n, 80), "white") for n in range(2)]
    harness.start(folder(inbox))
    pages[0].save(inbox / "scan.pdf", "PDF", resolution=72)
    wait_until(lambda: harness.done() == 1, what="the one-page sidecar")
    assert read_metadata(inbox / "scan.pdf.md")["pages"] == 1
    pages[0].save(inbox / "scan.pdf", "PDF", resolution=72, save_all=True, append_images=pages[1:])
    wait_until(lambda: (read_metadata(inbox / "scan.pdf.md") or {}).get("pages") == 2, what="two pages")
    assert sidecars(inbox) == [inbox / "scan.pdf.md"]
    assert "<!-- page 2 -->" in (inbox / "scan.pdf.md").read_text()


def test_a_burst_of_1000_images_gets_exactly_1000_sidecars(
    harness: Harness, inbox: Path, tmp_path: Path
) -> None:
    staging = tmp_path / "staging"
    staging.mkdir()
    for seed in range(1000):
        png(staging / f"img{seed:04}.png", seed=seed, size=(12, 10))
    service = harness.start(folder(inbox))
    process = psutil.Process()
    before = process.memory_info().rss
    peak = before
    for path in sorted(staging.iterdir()):
        os.rename(path, inbox / path.name)
    deadline = time.monotonic() + 180
    while harness.done() < 1000 and time.monotonic() < deadline:
        peak = max(peak, process.memory_info().rss)
        time.sleep(0.05)
    assert harness.done() == 1000
    assert service.wait_idle(timeout=10)
    names = sorted(p.name for p in sidecars(inbox))
    assert names == [f"img{seed:04}.png.md" for seed in range(1000)], "no duplicates, none missing"
    assert len(FakeEngine.pages) == 1000
    assert service.max_in_flight_seen <= MAX_IN_FLIGHT
    assert peak - before < 200 * 1024 * 1024, f"memory grew by {(peak - before) / 2**20:.0f} MB"


# ----- failures ----------------------------------------------------------------------------------------


def test_a_corrupt_file_fails_alone_and_is_retried_only_after_it_changes(
    harness: Harness, inbox: Path
) -> None:
    png(inbox / "good1.png", seed=1)
    png(inbox / "good2.png", seed=2)
    (inbox / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 50)
    harness.start(folder(inbox, settle_seconds=0.05))
    wait_until(
        lambda: harness.ledger.counts()[Status.FAILED] == 1 and harness.done() == 2, what="the outcomes"
    )
    entry = harness.ledger.latest(str(inbox / "bad.png"))
    assert entry.status == Status.FAILED and entry.permanent
    assert "bad.png" in entry.last_error and "corrupt" in entry.last_error
    assert sidecars(inbox) == [inbox / "good1.png.md", inbox / "good2.png.md"]
    attempts = entry.attempts

    harness.stop()
    harness.start(folder(inbox, settle_seconds=0.05))
    time.sleep(0.6)
    assert harness.ledger.latest(str(inbox / "bad.png")).attempts == attempts, "not retried unchanged"
    assert len(FakeEngine.pages) == 2

    png(inbox / "bad.png", seed=3)
    wait_until(lambda: harness.done() == 3, what="the repaired file")
    assert (inbox / "bad.png.md").exists()


class FlakyEngine(FakeEngine):
    """Raises EBUSY (a locked file) for the first :attr:`failures` pages, then works."""

    name = "flaky"
    failures: ClassVar[int] = 2
    calls: ClassVar[int] = 0

    def recognize_page(self, image: Image.Image, options: RecognizeOptions) -> PageResult:
        type(self).calls += 1
        if type(self).calls <= type(self).failures:
            raise OSError(errno.EBUSY, "Device or resource busy")
        return super().recognize_page(image, options)


@pytest.fixture
def flaky(monkeypatch: pytest.MonkeyPatch) -> type[FlakyEngine]:
    monkeypatch.setitem(registry.BUILTIN_ENGINES, "flaky", f"{__name__}:FlakyEngine")
    FlakyEngine.calls = 0
    FlakyEngine.failures = 2
    return FlakyEngine


def test_a_transient_error_is_retried_with_backoff(
    harness: Harness, inbox: Path, flaky: type[FlakyEngine]
) -> None:
    png(inbox / "locked.png", seed=1)
    harness.start(folder(inbox, settle_seconds=0.05), engine="flaky")
    wait_until(lambda: harness.done() == 1, what="the retried file")
    entry = harness.ledger.latest(str(inbox / "locked.png"))
    assert entry.attempts == 3 and entry.last_error is None
    assert [e.status for e in harness.events] == ["retry", "retry", "done"]


def test_a_transient_error_gives_up_after_max_attempts(
    harness: Harness, inbox: Path, flaky: type[FlakyEngine]
) -> None:
    flaky.failures = 100
    png(inbox / "locked.png", seed=1)
    harness.start(folder(inbox, settle_seconds=0.05), engine="flaky", max_attempts=3)
    wait_until(lambda: harness.ledger.counts()[Status.FAILED] == 1, what="giving up")
    entry = harness.ledger.latest(str(inbox / "locked.png"))
    assert entry.permanent and entry.attempts == 3
    assert "gave up after 3 attempts" in entry.last_error and "busy" in entry.last_error.lower()
    assert flaky.calls == 3


def test_a_file_that_cannot_be_opened_is_retried_then_given_up(
    harness: Harness, inbox: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from textdrop.watcher import service as service_module

    real = service_module.sha256_file
    opened: list[Path] = []

    def locked(path: Path) -> str:
        if path.name == "locked.png":
            opened.append(path)
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(service_module, "sha256_file", locked)
    png(inbox / "locked.png", seed=1)
    png(inbox / "fine.png", seed=2)
    harness.start(folder(inbox, settle_seconds=0.05), max_attempts=3)
    wait_until(lambda: [e.status for e in harness.events if e.path.name == "locked.png"][-1:] == ["failed"])
    time.sleep(0.5)
    assert len(opened) == 3, "tried max_attempts times, then left alone"
    assert harness.done() == 1 and (inbox / "fine.png.md").exists()
    failed = [event for event in harness.events if event.status == "failed"]
    assert len(failed) == 1 and "Permission denied" in failed[0].message


def test_a_sidecar_written_before_a_crash_is_recognised_not_duplicated(harness: Harness, inbox: Path) -> None:
    png(inbox / "a.png", seed=1)
    assert run(["ocr", str(inbox / "a.png"), "-e", "fake"]) == 0
    pages = len(FakeEngine.pages)
    harness.start(folder(inbox))
    wait_until(lambda: harness.done() == 1, what="the ledger to record it")
    assert len(FakeEngine.pages) == pages, "not recognised again"
    assert sidecars(inbox) == [inbox / "a.png.md"]


# ----- polling -------------------------------------------------------------------------------------------


def test_a_polled_folder_is_read_without_native_events(harness: Harness, inbox: Path) -> None:
    from watchdog.observers.polling import PollingObserver

    service = harness.start(folder(inbox, polling=True), poll_seconds=0.1)
    assert [type(observer) for observer in service._observers] == [PollingObserver]
    png(inbox / "share.png", seed=1)
    wait_until(lambda: harness.done() == 1, what="the polled file")
    assert sidecars(inbox) == [inbox / "share.png.md"]


# ----- configurations that would loop ----------------------------------------------------------------


def test_dangerous_configurations_are_refused(tmp_path: Path) -> None:
    home = tmp_path / "home"
    scans = home / "Scans"
    (scans / "sub").mkdir(parents=True)
    cases = {
        "output folder inside a recursively watched one": [
            FolderOptions(path=scans, recursive=True, output=scans / "sub")
        ],
        "nested": [FolderOptions(path=scans), FolderOptions(path=scans / "sub")],
        "root": [FolderOptions(path=Path("/"))],
        "home": [FolderOptions(path=home)],
        "twice": [FolderOptions(path=scans), FolderOptions(path=scans / "sub" / "..")],
        "missing": [FolderOptions(path=tmp_path / "nope")],
        "output is another watched folder": [
            FolderOptions(path=scans, output=home),
            FolderOptions(path=tmp_path),
        ],
    }
    expected = {
        "output folder inside a recursively watched one": "read its own sidecars",
        "nested": "nested",
        "root": "root of a filesystem",
        "home": "home folder",
        "twice": "listed twice",
        "missing": "does not exist",
        "output is another watched folder": "nested",
    }
    for case, folders in cases.items():
        with pytest.raises(ConfigError, match=expected[case]):
            check_folders(folders, home=home)
    check_folders([FolderOptions(path=scans, output=tmp_path / "out")], home=home)  # a sane one passes
    check_folders([FolderOptions(path=scans, output=scans / "sub")], home=home)  # not recursive: fine


def test_watch_refuses_the_home_folder_with_a_clear_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["watch", str(Path.home()), "--once"]) == 9
    assert "home folder" in capsys.readouterr().err


# ----- the CLI ----------------------------------------------------------------------------------------------


def test_watch_once_processes_the_backlog_and_exits(
    fake_engine: type[FakeEngine], inbox: Path, textdrop_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for seed in range(3):
        png(inbox / f"s{seed}.png", seed=seed)
    (inbox / "broken.png").write_bytes(b"not an image")
    assert run(["watch", str(inbox), "--once", "--settle", "0", "-e", "fake"]) == 1  # one file failed
    assert [p.name for p in sidecars(inbox)] == ["s0.png.md", "s1.png.md", "s2.png.md"]
    err = capsys.readouterr().err
    assert "✓" in err and "✗" in err and "broken.png" in err
    log = (textdrop_home / "logs" / "textdrop.log").read_text()
    assert "s0.png.md" in log and "broken.png" in log

    assert run(["status"]) == 0
    out = capsys.readouterr().out
    assert "3 done, 0 pending, 1 failed" in out
    assert "broken.png" in out and "not running" in out


def test_folders_add_list_remove_keep_the_rest_of_the_config(
    inbox: Path, tmp_path: Path, textdrop_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(textdrop_home, '# my settings\nengine = "auto"\n')
    other = tmp_path / "other"
    other.mkdir()
    assert run(["folders", "add", str(inbox), "--settle", "5", "--poll", "-p", "*.pdf"]) == 0
    assert run(["folders", "add", str(other), "-r"]) == 0
    text = config.read_text()
    assert text.startswith("# my settings\n") and "settle_seconds = 5" in text and "polling = true" in text
    assert run(["folders", "add", str(inbox / "..")]) == 9  # would nest the other two
    assert run(["folders", "list"]) == 0
    listing = capsys.readouterr().out
    assert str(inbox) in listing and str(other) in listing and "polling" in listing
    assert run(["folders", "remove", str(inbox)]) == 0
    assert run(["folders", "remove", str(inbox)]) == 2
    text = config.read_text()
    assert str(inbox) not in text and str(other) in text and text.startswith("# my settings\n")


def test_watch_without_folders_says_how_to_add_one(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["watch"]) == 2
    assert "textdrop folders add" in capsys.readouterr().err


def test_a_second_watcher_is_refused(
    inbox: Path, textdrop_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from filelock import FileLock

    (textdrop_home / "data").mkdir(exist_ok=True)
    with FileLock(textdrop_home / "data" / "watch.lock"):
        assert run(["watch", str(inbox), "--once"]) == 2
        assert "already running" in capsys.readouterr().err


# ----- real processes: SIGTERM and kill -9 --------------------------------------------------------------


_processes: list[subprocess.Popen[bytes]] = []


@pytest.fixture(autouse=True)
def no_leaked_processes() -> Iterator[None]:
    """Kill any textdrop process a test started and left running (a failed assertion midway)."""
    yield
    while _processes:
        process = _processes.pop()
        if process.poll() is None:
            process.kill()
            process.wait()


def textdrop_process(*args: str, delay: float = 0.02, **kwargs: object) -> subprocess.Popen[bytes]:
    """``textdrop ARGS`` in a process of its own, with the test engines (``slow`` takes ``delay`` s/page)."""
    env = {**os.environ, "TEXTDROP_TEST_DELAY": str(delay)}
    command = [sys.executable, "-m", "tests.helpers.run_textdrop", *args]
    process = subprocess.Popen(command, cwd=ROOT, env=env, **kwargs)  # type: ignore[call-overload]
    _processes.append(process)
    return process


def started_rows(ledger: Path) -> int:
    if not ledger.exists():
        return 0
    with Ledger(ledger) as reader:
        return sum(1 for entry in reader.pending() if entry.started) + reader.counts()[Status.DONE]


def test_sigterm_lets_the_page_finish_and_leaves_nothing_half_done(
    inbox: Path, textdrop_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for seed in range(6):
        png(inbox / f"p{seed}.png", seed=seed)
    watcher = textdrop_process("watch", str(inbox), "--settle", "0", "-e", "slow", delay=0.5)
    ledger = textdrop_home / "data" / "ledger.sqlite3"
    wait_until(lambda: started_rows(ledger) >= 2, timeout=30, what="work to start")
    assert run(["status"]) == 0
    assert "Watcher: running" in capsys.readouterr().out
    watcher.send_signal(signal.SIGTERM)
    assert watcher.wait(timeout=15) == 0
    assert temp_files(inbox) == []
    done = sidecars(inbox)
    assert 1 <= len(done) < 6
    for sidecar in done:
        assert read_metadata(sidecar)["sha256"] == sha256(inbox / sidecar.name.removesuffix(".md"))
    finish = textdrop_process("watch", str(inbox), "--once", "--settle", "0", "-e", "slow", delay=0.01)
    assert finish.wait(timeout=60) == 0
    assert len(sidecars(inbox)) == 6


@pytest.mark.slow
def test_kill_9_at_random_moments_still_ends_with_exactly_one_sidecar_per_file(
    inbox: Path, textdrop_home: Path
) -> None:
    files = [png(inbox / f"scan{seed:03}.png", seed=seed) for seed in range(200)]
    rng = random.Random(20261121)
    for _ in range(20):
        watcher = textdrop_process(
            "watch", str(inbox), "--settle", "0.1", "-e", "slow", delay=0.05, stderr=subprocess.DEVNULL
        )
        time.sleep(rng.uniform(0.3, 1.5))
        watcher.kill()
        watcher.wait()
    finish = textdrop_process(
        "watch", str(inbox), "--once", "--settle", "0.1", "-e", "slow", delay=0.0, stderr=subprocess.PIPE
    )
    _, err = finish.communicate(timeout=120)
    assert finish.returncode == 0, err.decode()
    for file in files:
        assert sorted(p.name for p in inbox.glob(f"{file.name}*.md")) == [f"{file.name}.md"]
        assert read_metadata(inbox / f"{file.name}.md")["sha256"] == sha256(file)
    assert temp_files(inbox) == []
    with Ledger(textdrop_home / "data" / "ledger.sqlite3") as ledger:
        assert ledger.counts() == {Status.DONE: 200, Status.PENDING: 0, Status.FAILED: 0}


def test_a_stored_result_is_reused_only_for_the_same_engine_and_model() -> None:
    """The watcher looks a stored result up by what a result of the folder's engine spec records, so a
    result of one VLM model is never given to a file read with another."""
    from textdrop.engine.registry import result_identity

    assert result_identity("rapid") == ("rapid", None)
    assert result_identity("llama:granite-docling-258m") == ("llama", "granite-docling-258m")
    assert result_identity("llama:/models/tiny-qwen2vl-gguf") == ("llama", "tiny-qwen2vl-gguf")
    assert result_identity("openai:qwen2.5vl:3b") == ("openai", "qwen2.5vl:3b")


def test_a_page_the_vlm_failed_on_is_logged_and_reported_with_the_file(
    harness: Harness, inbox: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.helpers.fake_vlm import ScriptedVlm

    monkeypatch.setitem(registry.BUILTIN_ENGINES, "scripted", "tests.helpers.fake_vlm:ScriptedVlm")
    ScriptedVlm.reset()
    ScriptedVlm.scripts = [[RuntimeError("decode failed")]] * 3
    sample = Path(__file__).parent.parent / "assets" / "samples" / "tess_phototest.tif"
    shutil.copy(sample, inbox / "scan.tif")
    # a handler of its own on the watcher's logger: the watch command filters per-file outcomes off the
    # root logger's handlers (the console), which is where caplog listens
    logged: list[str] = []
    collector = logging.Handler(logging.WARNING)
    collector.emit = lambda record: logged.append(record.getMessage())  # type: ignore[method-assign]
    logger = logging.getLogger("textdrop.watcher.service")
    logger.addHandler(collector)
    try:
        harness.start(folder(inbox), engine="scripted")
        # the event, not the ledger: the ledger says done before the warning is logged and the event sent
        wait_until(
            lambda: any(e.status == "done" for e in harness.events), timeout=60, what="the file's event"
        )
    finally:
        logger.removeHandler(collector)
    [event] = [event for event in harness.events if event.status == "done"]
    [line] = event.fallbacks
    assert line.startswith("page 1 was read by rapid: ") and line.endswith("decode failed")
    assert any("scan.tif: page 1 was read by rapid" in message for message in logged)
    meta = read_metadata(inbox / "scan.tif.md")
    assert meta is not None and meta["fallback"][0]["engine"] == "rapid"
    ScriptedVlm.reset()
