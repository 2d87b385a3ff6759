"""Tests of textdrop.watcher.settle: when a file counts as complete, and the decode check behind it."""

from __future__ import annotations

import io
import logging
import os
import random
import threading
import time
from collections import Counter
from pathlib import Path

import pillow_heif
import pytest
from PIL import Image

from tests.helpers.badfiles import write_encrypted_pdf, write_no_page_pdf, write_pdf
from textdrop.watcher import settle
from textdrop.watcher.settle import MAX_FAILED_CHECKS, SettleTracker, decodes

SETTLE = 1.0  # seconds, for the fake clock


class FakeClock:
    """A monotonic clock that moves only when told to."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def noise(size: tuple[int, int] = (64, 48), seed: int = 0) -> Image.Image:
    """An RGB image of random pixels: it barely compresses, so a cut always falls inside pixel data."""
    width, height = size
    return Image.frombytes("RGB", size, random.Random(seed).randbytes(width * height * 3))


def image_bytes(fmt: str, **options) -> bytes:
    out = io.BytesIO()
    noise().save(out, fmt, **options)
    return out.getvalue()


def two_page_pdf() -> bytes:
    out = io.BytesIO()
    noise(seed=1).save(out, "PDF", save_all=True, append_images=[noise(seed=2)])
    return out.getvalue()


def three_page_tiff() -> bytes:
    out = io.BytesIO()
    noise(seed=1).save(out, "TIFF", save_all=True, append_images=[noise(seed=2), noise(seed=3)])
    return out.getvalue()


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def append(path: Path, data: bytes) -> None:
    with open(path, "ab") as fp:
        fp.write(data)


# --- the wait --------------------------------------------------------------------------------------


def test_ready_only_after_the_settle_time_and_only_once(tmp_path: Path, clock: FakeClock) -> None:
    path = write(tmp_path / "scan.txt", b"hello")
    tracker = SettleTracker(SETTLE, clock=clock, check=None)
    tracker.touch(path)
    assert path in tracker
    assert len(tracker) == 1

    clock.advance(SETTLE - 0.01)
    assert tracker.pop_ready() == []
    assert path in tracker

    clock.advance(0.01)
    assert tracker.pop_ready() == [path]
    assert path not in tracker
    assert len(tracker) == 0
    clock.advance(10 * SETTLE)
    assert tracker.pop_ready() == []


def test_a_file_written_in_chunks_is_ready_only_after_the_last_chunk(
    tmp_path: Path, clock: FakeClock
) -> None:
    """No event arrives between chunks (as with a slow SMB copy): the size change alone restarts the wait."""
    path = write(tmp_path / "copy.bin", b"a" * 100)
    tracker = SettleTracker(SETTLE, clock=clock, check=None)
    tracker.touch(path)
    for _ in range(3):
        clock.advance(SETTLE)
        append(path, b"b" * 100)
        assert tracker.pop_ready() == []  # due, but the size changed: the wait restarts from now
        assert tracker.next_due() == pytest.approx(SETTLE)
    clock.advance(SETTLE / 2)
    assert tracker.pop_ready() == []  # half-way through the last wait
    clock.advance(SETTLE / 2)
    assert tracker.pop_ready() == [path]
    assert path.stat().st_size == 400


def test_an_mtime_change_alone_restarts_the_wait(tmp_path: Path, clock: FakeClock) -> None:
    path = write(tmp_path / "same-size.bin", b"x" * 10)
    tracker = SettleTracker(SETTLE, clock=clock, check=None)
    tracker.touch(path)
    mtime = path.stat().st_mtime_ns
    os.utime(path, ns=(mtime, mtime + 5_000_000_000))
    clock.advance(SETTLE)
    assert tracker.pop_ready() == []
    assert path in tracker
    clock.advance(SETTLE)
    assert tracker.pop_ready() == [path]


def test_touch_restarts_the_wait(tmp_path: Path, clock: FakeClock) -> None:
    path = write(tmp_path / "a.txt", b"a")
    tracker = SettleTracker(SETTLE, clock=clock, check=None)
    tracker.touch(path)
    clock.advance(0.8 * SETTLE)
    tracker.touch(path)
    clock.advance(0.5 * SETTLE)
    assert tracker.pop_ready() == []  # 1.3 s after the first event, 0.5 s after the second
    assert tracker.next_due() == pytest.approx(0.5 * SETTLE)
    clock.advance(0.5 * SETTLE)
    assert tracker.pop_ready() == [path]


def test_touch_replaces_quiet_since_even_with_an_earlier_one(tmp_path: Path, clock: FakeClock) -> None:
    path = write(tmp_path / "a.txt", b"a")
    tracker = SettleTracker(SETTLE, clock=clock, check=None)
    tracker.touch(path, quiet_since=clock.now + 50)
    tracker.touch(path, quiet_since=clock.now - 50)
    assert tracker.next_due() == 0.0
    assert tracker.pop_ready() == [path]


def test_quiet_since_in_the_past_is_ready_at_once(tmp_path: Path, clock: FakeClock) -> None:
    path = write(tmp_path / "old.png", b"not checked")
    tracker = SettleTracker(SETTLE, clock=clock, check=None)
    tracker.touch(path, quiet_since=clock.now - 3600)
    assert tracker.next_due() == 0.0
    assert tracker.pop_ready() == [path]


def test_quiet_since_in_the_future_delays_readiness(tmp_path: Path, clock: FakeClock) -> None:
    path = write(tmp_path / "retry.txt", b"r")
    tracker = SettleTracker(SETTLE, clock=clock, check=None)
    tracker.touch(path, quiet_since=clock.now + 5)  # a retry in 5 s: ready at now + 5 + settle
    assert tracker.next_due() == pytest.approx(5 + SETTLE)
    clock.advance(5)
    assert tracker.pop_ready() == []
    clock.advance(SETTLE)
    assert tracker.pop_ready() == [path]


def test_next_due(tmp_path: Path, clock: FakeClock) -> None:
    tracker = SettleTracker(SETTLE, clock=clock, check=None)
    assert tracker.next_due() is None
    first = write(tmp_path / "1.txt", b"1")
    second = write(tmp_path / "2.txt", b"2")
    tracker.touch(first)
    clock.advance(0.25)
    tracker.touch(second)
    assert tracker.next_due() == pytest.approx(0.75)  # the earliest of the two
    clock.advance(0.75)
    assert tracker.next_due() == 0.0
    clock.advance(100)
    assert tracker.next_due() == 0.0  # never negative
    assert tracker.pop_ready() == [first, second]
    assert tracker.next_due() is None


def test_zero_settle_time_is_ready_at_once(tmp_path: Path, clock: FakeClock) -> None:
    path = write(tmp_path / "now.txt", b"n")
    tracker = SettleTracker(0, clock=clock, check=None)
    tracker.touch(path)
    assert tracker.next_due() == 0.0
    assert tracker.pop_ready() == [path]


def test_ready_paths_come_oldest_first_then_by_path(tmp_path: Path, clock: FakeClock) -> None:
    paths = {name: write(tmp_path / name, name.encode()) for name in ("c", "a", "b", "d")}
    tracker = SettleTracker(SETTLE, clock=clock, check=None)
    tracker.touch(paths["d"], quiet_since=clock.now - 30)
    tracker.touch(paths["c"], quiet_since=clock.now - 20)
    tracker.touch(paths["b"], quiet_since=clock.now - 20)
    tracker.touch(paths["a"], quiet_since=clock.now - 10)
    assert tracker.pop_ready() == [paths["d"], paths["b"], paths["c"], paths["a"]]


@pytest.mark.parametrize("settle_seconds", [-0.1, -5, float("nan")])
def test_a_negative_settle_time_is_refused(settle_seconds: float) -> None:
    with pytest.raises(ValueError, match="settle_seconds"):
        SettleTracker(settle_seconds)


# --- files that vanish, never existed or arrive by rename ------------------------------------------


def test_a_vanished_file_is_dropped(tmp_path: Path, clock: FakeClock) -> None:
    path = write(tmp_path / "gone.png", b"x")
    calls: list[Path] = []
    tracker = SettleTracker(SETTLE, clock=clock, check=lambda p: calls.append(p) or True)
    tracker.touch(path)
    path.unlink()
    clock.advance(SETTLE)
    assert tracker.pop_ready() == []
    assert path not in tracker
    assert tracker.next_due() is None
    assert calls == []  # never checked


def test_a_path_replaced_by_a_folder_is_dropped(tmp_path: Path, clock: FakeClock) -> None:
    path = write(tmp_path / "x", b"x")
    tracker = SettleTracker(SETTLE, clock=clock, check=None)
    tracker.touch(path)
    path.unlink()
    path.mkdir()
    clock.advance(SETTLE)
    assert tracker.pop_ready() == []
    assert len(tracker) == 0


def test_touching_a_missing_path_or_a_folder_is_ignored(tmp_path: Path, clock: FakeClock) -> None:
    tracker = SettleTracker(SETTLE, clock=clock, check=None)
    tracker.touch(tmp_path / "never-there.png")
    tracker.touch(tmp_path)
    tracker.touch(tmp_path / "no-such-dir" / "file.png")
    assert len(tracker) == 0
    assert tracker.next_due() is None


def test_touching_a_tracked_path_that_vanished_forgets_it(tmp_path: Path, clock: FakeClock) -> None:
    path = write(tmp_path / "a.txt", b"a")
    tracker = SettleTracker(SETTLE, clock=clock, check=None)
    tracker.touch(path)
    path.unlink()
    tracker.touch(path)
    assert path not in tracker


def test_discard(tmp_path: Path, clock: FakeClock) -> None:
    kept = write(tmp_path / "kept.txt", b"k")
    dropped = write(tmp_path / "dropped.txt", b"d")
    tracker = SettleTracker(SETTLE, clock=clock, check=None)
    tracker.touch(kept)
    tracker.touch(dropped)
    tracker.discard(dropped)
    tracker.discard(tmp_path / "unknown.txt")  # no error
    assert dropped not in tracker
    clock.advance(SETTLE)
    assert tracker.pop_ready() == [kept]


def test_contains_takes_anything(tmp_path: Path, clock: FakeClock) -> None:
    path = write(tmp_path / "a.txt", b"a")
    tracker = SettleTracker(SETTLE, clock=clock, check=None)
    tracker.touch(path)
    assert path in tracker
    assert Path(str(path)) in tracker
    assert str(path) not in tracker  # keys are Paths
    assert [] not in tracker  # unhashable: no TypeError


def test_a_file_that_arrives_by_rename(tmp_path: Path, clock: FakeClock) -> None:
    """macOS writes a screenshot as a hidden file and then renames it: the final name settles."""
    hidden = tmp_path / ".Screenshot 2024-05-01 at 10.00.00.png"
    final = tmp_path / "Screenshot 2024-05-01 at 10.00.00.png"
    write(hidden, image_bytes("PNG"))
    tracker = SettleTracker(SETTLE, clock=clock)  # the real decode check
    tracker.touch(hidden)  # a service that does not filter hidden files would report it
    clock.advance(SETTLE / 2)
    os.rename(hidden, final)
    tracker.touch(final)  # the moved-in event names the destination
    clock.advance(SETTLE / 2)
    assert tracker.pop_ready() == []  # the hidden name is dropped; the final name waits on
    assert hidden not in tracker
    assert final in tracker
    clock.advance(SETTLE / 2)
    assert tracker.pop_ready() == [final]


def test_a_stat_error_other_than_missing_retries(
    tmp_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path / "locked.pdf", b"%PDF")
    tracker = SettleTracker(SETTLE, clock=clock, check=None)
    tracker.touch(path)
    real_stat = settle._stat

    def busy(p: Path) -> tuple[int, int]:
        raise OSError(16, "Device or resource busy")

    monkeypatch.setattr(settle, "_stat", busy)
    clock.advance(SETTLE)
    assert tracker.pop_ready() == []
    assert path in tracker
    assert tracker.next_due() == pytest.approx(SETTLE)  # the wait restarted

    monkeypatch.setattr(settle, "_stat", real_stat)
    clock.advance(SETTLE)
    assert tracker.pop_ready() == [path]


def test_a_file_that_cannot_be_stated_at_touch_is_tracked(
    tmp_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path / "share.png", b"x")
    real_stat = settle._stat

    def denied(p: Path) -> tuple[int, int]:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(settle, "_stat", denied)
    tracker = SettleTracker(SETTLE, clock=clock, check=None)
    tracker.touch(path)
    assert path in tracker
    monkeypatch.setattr(settle, "_stat", real_stat)
    clock.advance(SETTLE)
    assert tracker.pop_ready() == []  # no snapshot to compare with: take one and wait again
    clock.advance(SETTLE)
    assert tracker.pop_ready() == [path]


# --- the decode check ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("suffix", "data"),
    [
        (".png", image_bytes("PNG")),
        (".jpg", image_bytes("JPEG", quality=90)),
        (".jpg", image_bytes("JPEG", progressive=True)),
        (".webp", image_bytes("WEBP")),
        (".gif", image_bytes("GIF")),
        (".bmp", image_bytes("BMP")),
        (".tif", three_page_tiff()),
        (".pdf", two_page_pdf()),
    ],
    ids=["png", "jpeg", "progressive-jpeg", "webp", "gif", "bmp", "tiff", "pdf"],
)
@pytest.mark.parametrize("keep", [0.6, 0.95, "all-but-1"])
@pytest.mark.filterwarnings("ignore:Corrupt EXIF data:UserWarning")  # Pillow, on a TIFF cut in its tags
def test_decodes_a_whole_file_and_refuses_a_truncated_one(
    tmp_path: Path, suffix: str, data: bytes, keep: float | str
) -> None:
    whole = write(tmp_path / f"whole{suffix}", data)
    assert decodes(whole)
    cut = len(data) - 1 if keep == "all-but-1" else int(len(data) * keep)
    if suffix == ".gif" and keep == "all-but-1":
        cut -= 2  # a GIF missing only its trailer byte (or block terminator) has every pixel: it decodes
    if suffix == ".tif" and keep == "all-but-1":
        cut -= 4  # likewise the 4 zero bytes Pillow's appending TIFF writer leaves after the last page
    truncated = write(tmp_path / f"truncated{suffix}", data[:cut])
    assert not decodes(truncated)


def test_decodes_goes_by_content_when_the_suffix_is_unknown(tmp_path: Path) -> None:
    data = image_bytes("PNG")
    assert decodes(write(tmp_path / "scan.unknown", data))
    assert not decodes(write(tmp_path / "partial.unknown", data[: len(data) // 2]))
    pdf = two_page_pdf()
    assert not decodes(write(tmp_path / "partial.download", pdf[: len(pdf) // 2]))


def test_decodes_accepts_files_it_does_not_read(tmp_path: Path) -> None:
    assert decodes(write(tmp_path / "notes.txt", b"just text"))
    assert decodes(write(tmp_path / "empty.docx", b""))


def test_decodes_refuses_empty_missing_and_unreadable_inputs(tmp_path: Path) -> None:
    assert not decodes(write(tmp_path / "empty.png", b""))
    assert not decodes(write(tmp_path / "empty.pdf", b""))
    assert not decodes(write(tmp_path / "text.jpg", b"this is not a JPEG"))
    assert not decodes(tmp_path / "missing.png")
    folder = tmp_path / "folder.png"
    folder.mkdir()
    assert not decodes(folder)


def test_decodes_refuses_a_multi_page_tiff_whose_last_page_is_cut(tmp_path: Path) -> None:
    data = three_page_tiff()
    cut = data[:-1000]
    with Image.open(io.BytesIO(cut)) as image:  # the first pages are whole: only the last one is cut
        assert image.n_frames == 3
        image.load()
        image.seek(1)
        image.load()
    assert not decodes(write(tmp_path / "pages.tiff", cut))
    assert decodes(write(tmp_path / "whole.tiff", data))


def test_decodes_a_truncated_jpeg_without_changing_pillows_setting(tmp_path: Path) -> None:
    from PIL import ImageFile

    data = image_bytes("JPEG")
    assert not decodes(write(tmp_path / "cut.jpg", data[: int(len(data) * 0.6)]))
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_decodes_refuses_a_png_without_its_end_chunk(tmp_path: Path) -> None:
    data = image_bytes("PNG")
    assert data.endswith(b"IEND\xaeB`\x82")
    with Image.open(io.BytesIO(data[:-12])) as image:
        image.load()  # Pillow alone accepts it
    assert not decodes(write(tmp_path / "cut.png", data[:-12]))


def test_decodes_heic(tmp_path: Path) -> None:
    heif = pillow_heif.from_pillow(noise())
    out = io.BytesIO()
    heif.save(out, quality=50)
    data = out.getvalue()
    assert decodes(write(tmp_path / "photo.heic", data))
    assert not decodes(write(tmp_path / "cut.heic", data[: int(len(data) * 0.6)]))


def test_decodes_pdf_cases(tmp_path: Path) -> None:
    assert decodes(write_pdf(tmp_path / "one.pdf", 1))
    assert not decodes(write_no_page_pdf(tmp_path / "none.pdf"))
    assert decodes(write_encrypted_pdf(tmp_path / "locked.pdf"))  # complete; the job asks for the password
    assert not decodes(write_no_page_pdf(tmp_path / "none-again.pdf"))  # not fooled by the last error
    padded = write_pdf(tmp_path / "padded.pdf", 1)
    append(padded, b"\r\n\x00\x00\n")
    assert decodes(padded)


def test_decodes_refuses_a_pdf_while_a_page_is_being_appended(tmp_path: Path) -> None:
    """A scanner adding a page by incremental update: the old %%EOF is still near the end."""
    path = write_pdf(tmp_path / "batch.pdf", 1)
    append(path, b"\n4 0 obj\n<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>\nendobj\n")
    assert b"%%EOF" in path.read_bytes()[-1024:]
    assert not decodes(path)


# --- the tracker with the decode check -------------------------------------------------------------


def test_a_truncated_image_waits_until_its_rest_arrives(tmp_path: Path, clock: FakeClock) -> None:
    data = image_bytes("JPEG")
    path = write(tmp_path / "scan.jpg", data[: len(data) // 2])
    tracker = SettleTracker(SETTLE, clock=clock)
    tracker.touch(path)
    for _ in range(MAX_FAILED_CHECKS - 1):
        clock.advance(SETTLE)
        assert tracker.pop_ready() == []  # settled by stat, but it does not decode
        assert path in tracker
        assert tracker.next_due() == pytest.approx(SETTLE)
    append(path, data[len(data) // 2 :])
    clock.advance(SETTLE)
    assert tracker.pop_ready() == []  # the size changed: the wait restarts, the failures are forgotten
    clock.advance(SETTLE)
    assert tracker.pop_ready() == [path]
    assert decodes(path)


def test_a_permanently_corrupt_file_is_released_after_the_failed_checks(
    tmp_path: Path, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    data = image_bytes("PNG")
    path = write(tmp_path / "broken.png", data[: len(data) // 2])
    tracker = SettleTracker(SETTLE, clock=clock)
    tracker.touch(path)
    with caplog.at_level(logging.INFO, logger=settle.__name__):
        for _ in range(MAX_FAILED_CHECKS - 1):
            clock.advance(SETTLE)
            assert tracker.pop_ready() == []
        assert "does not decode" not in caplog.text
        clock.advance(SETTLE)
        assert tracker.pop_ready() == [path]
    assert path not in tracker
    assert "broken.png" in caplog.text
    assert f"after {MAX_FAILED_CHECKS} checks" in caplog.text


def test_touch_resets_the_failed_check_count(tmp_path: Path, clock: FakeClock) -> None:
    path = write(tmp_path / "bad.txt", b"bad")
    tracker = SettleTracker(SETTLE, clock=clock, check=lambda p: False)
    tracker.touch(path)
    for _ in range(MAX_FAILED_CHECKS - 1):
        clock.advance(SETTLE)
        assert tracker.pop_ready() == []
    tracker.touch(path)
    for _ in range(MAX_FAILED_CHECKS - 1):
        clock.advance(SETTLE)
        assert tracker.pop_ready() == []
    clock.advance(SETTLE)
    assert tracker.pop_ready() == [path]


def test_a_check_that_raises_counts_as_failed(
    tmp_path: Path, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    path = write(tmp_path / "a.txt", b"a")

    def explode(p: Path) -> bool:
        raise RuntimeError("boom")

    tracker = SettleTracker(SETTLE, clock=clock, check=explode)
    tracker.touch(path)
    clock.advance(SETTLE)
    assert tracker.pop_ready() == []
    assert path in tracker
    assert "boom" in caplog.text


def test_a_touch_during_the_check_restarts_the_wait(tmp_path: Path, clock: FakeClock) -> None:
    path = write(tmp_path / "a.txt", b"a")
    tracker: SettleTracker

    def touched_meanwhile(p: Path) -> bool:
        tracker.touch(p)  # an observer thread reports an event while the check runs
        return True

    tracker = SettleTracker(SETTLE, clock=clock, check=touched_meanwhile)
    tracker.touch(path)
    clock.advance(SETTLE)
    assert tracker.pop_ready() == []
    assert path in tracker
    assert tracker.next_due() == pytest.approx(SETTLE)


def test_a_discard_during_the_check_wins(tmp_path: Path, clock: FakeClock) -> None:
    path = write(tmp_path / "a.txt", b"a")
    tracker: SettleTracker

    def discarded_meanwhile(p: Path) -> bool:
        tracker.discard(p)
        return True

    tracker = SettleTracker(SETTLE, clock=clock, check=discarded_meanwhile)
    tracker.touch(path)
    clock.advance(SETTLE)
    assert tracker.pop_ready() == []
    assert path not in tracker


def test_a_change_during_the_check_restarts_the_wait(tmp_path: Path, clock: FakeClock) -> None:
    path = write(tmp_path / "a.txt", b"a")

    def grows_meanwhile(p: Path) -> bool:
        append(p, b"more")  # no event reaches the tracker
        return True

    tracker = SettleTracker(SETTLE, clock=clock, check=grows_meanwhile)
    tracker.touch(path)
    clock.advance(SETTLE)
    assert tracker.pop_ready() == []
    assert path in tracker
    tracker = SettleTracker(SETTLE, clock=clock, check=lambda p: True)
    tracker.touch(path)
    clock.advance(SETTLE)
    assert tracker.pop_ready() == [path]


# --- the real clock ----------------------------------------------------------------------------------


def test_real_clock_with_a_short_settle_time(tmp_path: Path) -> None:
    data = image_bytes("PNG")
    path = write(tmp_path / "shot.png", data[:100])
    tracker = SettleTracker(0.1)  # time.monotonic and decodes
    tracker.touch(path)
    time.sleep(0.05)
    append(path, data[100:])  # the rest arrives, with an event
    tracker.touch(path)
    touched = time.monotonic()
    assert tracker.pop_ready() == []
    due = tracker.next_due()
    assert due is not None
    assert 0.05 < due <= 0.1
    time.sleep(0.06)
    popped = tracker.pop_ready()
    if time.monotonic() - touched < 0.1:  # not ready 0.11 s after the first event, 0.06 s after the last
        assert popped == []
    time.sleep(0.06)
    popped += tracker.pop_ready()
    assert popped == [path]


def test_real_clock_chunked_write_without_events(tmp_path: Path) -> None:
    path = write(tmp_path / "copy.bin", b"a")
    tracker = SettleTracker(0.1, check=None)
    tracker.touch(path)
    start = time.monotonic()
    returned: list[Path] = []
    for _ in range(3):
        time.sleep(0.11)
        append(path, b"b")
        returned += tracker.pop_ready()
    last_write = time.monotonic()
    while not returned and time.monotonic() - start < 2:
        time.sleep(0.02)
        returned += tracker.pop_ready()
    assert returned == [path]
    assert time.monotonic() - last_write >= 0.1


# --- threads -----------------------------------------------------------------------------------------


@pytest.mark.timeout(20)
def test_touches_from_threads_while_popping_return_every_path_once(tmp_path: Path) -> None:
    paths = [write(tmp_path / f"f{i:03d}.txt", b"x") for i in range(200)]
    tracker = SettleTracker(0.0, check=lambda p: True)
    returned: list[Path] = []
    errors: list[BaseException] = []
    done = threading.Event()

    def guarded(work):
        def run(*args) -> None:
            try:
                work(*args)
            except BaseException as exc:
                errors.append(exc)

        return run

    def pop_until_done() -> None:
        while not done.is_set():
            returned.extend(tracker.pop_ready())
            tracker.next_due()
        returned.extend(tracker.pop_ready())

    def touch_all(chunk: list[Path]) -> None:
        for path in chunk:
            tracker.touch(path)
            _ = path in tracker, len(tracker)

    popper = threading.Thread(target=guarded(pop_until_done))
    touchers = [threading.Thread(target=guarded(touch_all), args=(paths[i::4],)) for i in range(4)]
    popper.start()
    for thread in touchers:
        thread.start()
    for thread in touchers:
        thread.join()
    done.set()
    popper.join()

    assert errors == []
    counts = Counter(returned)
    assert set(counts) == set(paths)
    assert max(counts.values()) == 1
    assert len(tracker) == 0
