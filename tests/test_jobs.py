"""The job queue: Futures, priorities, cancellation, clean stop, and one worker thread owning the engines.

Engines come from the real registry (``fake``, plus ``slow`` and ``brokenload`` registered here). The
``slow`` engine's :attr:`SlowEngine.gate` holds the worker on a page for exactly as long as a test needs,
so ordering and cancellation are tested without depending on timing.
"""

from __future__ import annotations

import concurrent.futures
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from tests.helpers.fake_engines import CRASH_WIDTH, BrokenLoadEngine, FakeEngine, SlowEngine, fake_text
from textdrop.engine import registry
from textdrop.engine.documents.sources import file_label
from textdrop.engine.errors import EngineUnavailableError, InputFileError
from textdrop.engine.jobs import Job, JobQueue, Priority

WAIT = 5.0
"""Seconds any single wait in these tests may take before the test fails instead of hanging."""


@pytest.fixture(autouse=True)
def no_leaked_worker() -> Iterator[None]:
    """Fail a test that leaves a job worker thread running (after a short join)."""
    yield
    workers = [t for t in threading.enumerate() if t.name.startswith("textdrop-jobs")]
    for thread in workers:
        thread.join(1.0)
    leaked = [t.name for t in workers if t.is_alive()]
    assert not leaked, f"job worker thread(s) still running after the test: {leaked}"


@pytest.fixture
def job_engines(fake_engine: type[FakeEngine], monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Register ``slow`` and ``brokenload`` next to ``fake`` in the real registry, with fresh records."""
    monkeypatch.setitem(registry.BUILTIN_ENGINES, "slow", "tests.helpers.fake_engines:SlowEngine")
    monkeypatch.setitem(registry.BUILTIN_ENGINES, "brokenload", "tests.helpers.fake_engines:BrokenLoadEngine")
    SlowEngine.reset()
    BrokenLoadEngine.reset()
    yield
    if SlowEngine.gate is not None:
        SlowEngine.gate.set()  # never leave the worker waiting on a gate
    SlowEngine.reset()
    BrokenLoadEngine.reset()


@pytest.fixture
def gate(job_engines: None) -> Iterator[threading.Event]:
    """Hold every ``slow`` page until the test sets the event (opened at teardown in any case)."""
    event = threading.Event()
    SlowEngine.gate = event
    SlowEngine.delay = 0.0
    yield event
    event.set()


def png(folder: Path, width: int, height: int = 10, name: str | None = None) -> Path:
    """Write a white PNG of ``width``×``height`` pixels; FakeEngine reads it as ``fake page WxH``."""
    path = folder / (name or f"page-{width}x{height}.png")
    Image.new("RGB", (width, height), "white").save(path)
    return path


def tiff(folder: Path, pages: int, width: int = 50) -> Path:
    """Write a multi-page TIFF whose pages are ``width`` wide and 11, 12, … pixels high."""
    path = folder / f"doc-{pages}p.tif"
    frames = [Image.new("RGB", (width, 11 + i), "white") for i in range(pages)]
    frames[0].save(path, save_all=True, append_images=frames[1:])
    return path


def widths(engine: type[FakeEngine]) -> list[int]:
    return [width for width, _ in engine.pages]


def worker(name: str) -> threading.Thread | None:
    return next((t for t in threading.enumerate() if t.name == name), None)


def test_results_come_back_through_futures_per_source(job_engines: None, tmp_path: Path) -> None:
    path = png(tmp_path, 20, 10)
    image = Image.new("RGB", (50, 7), "white")
    data = png(tmp_path, 60, 9).read_bytes()
    with JobQueue("fake") as queue:
        jobs = [
            queue.submit(path),
            queue.submit(png(tmp_path, 30, 10)),
            queue.submit(image),
            queue.submit(data),
        ]
        results = [job.result(timeout=WAIT) for job in jobs]
    assert [r.pages[0].markdown for r in results] == [
        fake_text(20, 10),
        fake_text(30, 10),
        fake_text(50, 7),
        fake_text(60, 9),
    ]
    assert all(isinstance(job, concurrent.futures.Future) for job in jobs)
    assert all(r.engine == "fake" for r in results)
    assert results[0].source == path.name
    assert [job.label for job in jobs[::2]] == [file_label(path), "<image>"]
    assert jobs[3].label == "<image>"
    assert all(job.engine == "fake" and job.priority is Priority.BACKGROUND for job in jobs)


def test_a_bad_file_or_a_crashing_engine_fails_only_its_own_job(job_engines: None, tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.png"
    garbage.write_bytes(b"this is not an image at all")
    with JobQueue("fake") as queue:
        bad = queue.submit(garbage)
        after_bad = queue.submit(png(tmp_path, 21))
        crash = queue.submit(png(tmp_path, CRASH_WIDTH))
        after_crash = queue.submit(png(tmp_path, 22))
        with pytest.raises(InputFileError, match=r"garbage\.png"):
            bad.result(timeout=WAIT)
        with pytest.raises(RuntimeError, match="fake engine crashed"):
            crash.result(timeout=WAIT)
        assert after_bad.result(timeout=WAIT).pages[0].markdown == fake_text(21, 10)
        assert after_crash.result(timeout=WAIT).pages[0].markdown == fake_text(22, 10)
        assert worker(queue.name) is not None  # the worker survived both failures
    assert widths(FakeEngine) == [21, 22]


def test_interactive_jobs_run_before_queued_background_jobs(gate: threading.Event, tmp_path: Path) -> None:
    with JobQueue("slow") as queue:
        blocker = queue.submit(png(tmp_path, 100))
        assert blocker.started.wait(WAIT)
        background = [queue.submit(png(tmp_path, w)) for w in (101, 102, 103, 104, 105)]
        first = queue.submit(png(tmp_path, 200), priority=Priority.INTERACTIVE)
        second = queue.submit(png(tmp_path, 201), priority=Priority.INTERACTIVE)
        assert len(queue) == 7  # the running job is not counted
        assert queue.busy
        gate.set()
        concurrent.futures.wait([*background, first, second], timeout=WAIT)
    # INTERACTIVE jumps the backlog; within one priority, submission order.
    assert widths(SlowEngine) == [100, 200, 201, 101, 102, 103, 104, 105]
    assert not queue.busy
    assert len(queue) == 0


def test_cancelling_a_queued_job_means_it_never_runs(gate: threading.Event, tmp_path: Path) -> None:
    with JobQueue("slow") as queue:
        blocker = queue.submit(png(tmp_path, 30))
        assert blocker.started.wait(WAIT)
        doomed = queue.submit(png(tmp_path, 31))
        kept = queue.submit(png(tmp_path, 32))
        assert doomed.cancel() is True
        assert doomed.cancelled()
        assert len(queue) == 1
        # Waiters of wait()/as_completed() learn of it at once, not when the worker gets to it.
        assert concurrent.futures.wait([doomed], timeout=0).done == {doomed}
        gate.set()
        assert kept.result(timeout=WAIT).pages[0].markdown == fake_text(32, 10)
    with pytest.raises(concurrent.futures.CancelledError):
        doomed.result(timeout=0)
    assert not doomed.started.is_set()
    assert widths(SlowEngine) == [30, 32]
    assert blocker.cancel() is False  # finished jobs cannot be cancelled


def test_cancelling_a_running_job_stops_it_at_the_next_page(gate: threading.Event, tmp_path: Path) -> None:
    pages: list[tuple[int, int]] = []
    with JobQueue("slow") as queue:
        job = queue.submit(
            tiff(tmp_path, 5, width=50), on_page=lambda done, total: pages.append((done, total))
        )
        following = queue.submit(png(tmp_path, 60))
        assert job.started.wait(WAIT)
        assert job.running() and queue.busy and not job.done()
        assert job.cancel() is True
        assert job.cancelled()
        gate.set()  # let the page being recognised finish
        assert following.result(timeout=WAIT).pages[0].markdown == fake_text(60, 10)
        assert concurrent.futures.wait([job], timeout=WAIT).done == {job}
    with pytest.raises(concurrent.futures.CancelledError):
        job.result(timeout=0)
    assert not job.running()
    assert widths(SlowEngine) == [50, 60]  # one page of five, then the next job
    assert pages == []  # the cancelled job reported no progress after the cancel


def test_on_page_reports_progress_in_the_worker(job_engines: None, tmp_path: Path) -> None:
    calls: list[tuple[int, int, str]] = []
    with JobQueue("fake") as queue:
        job = queue.submit(
            tiff(tmp_path, 3),
            on_page=lambda done, total: calls.append((done, total, threading.current_thread().name)),
        )
        result = job.result(timeout=WAIT)
    assert [p.markdown for p in result.pages] == [fake_text(50, 11), fake_text(50, 12), fake_text(50, 13)]
    assert calls == [(1, 3, queue.name), (2, 3, queue.name), (3, 3, queue.name)]


def test_stop_cancels_pending_jobs_and_ends_the_worker(gate: threading.Event, tmp_path: Path) -> None:
    queue = JobQueue("slow", name="textdrop-jobs-stop").start()
    running = queue.submit(png(tmp_path, 40))
    assert running.started.wait(WAIT)
    pending = [queue.submit(png(tmp_path, w)) for w in (41, 42, 43)]
    opener = threading.Timer(0.1, gate.set)  # the running page ends a little after stop() begins
    opener.start()
    try:
        assert queue.stop(cancel_pending=True) is True
    finally:
        opener.join()
    assert all(job.cancelled() for job in pending)
    assert concurrent.futures.wait(pending, timeout=0).done == set(pending)
    assert running.result(timeout=0).pages[0].markdown == fake_text(40, 10)  # the running job finished
    assert widths(SlowEngine) == [40]
    assert worker("textdrop-jobs-stop") is None
    assert SlowEngine.closes == 1
    assert queue.stop() is True  # idempotent


def test_stop_with_a_short_grace_returns_at_once_and_the_worker_ends_after_the_page(
    gate: threading.Event, tmp_path: Path
) -> None:
    queue = JobQueue("slow", name="textdrop-jobs-grace").start()
    job = queue.submit(tiff(tmp_path, 3))
    queued = queue.submit(png(tmp_path, 70))
    assert job.started.wait(WAIT)
    thread = worker("textdrop-jobs-grace")
    assert thread is not None

    started = time.monotonic()
    assert queue.stop(grace=0.05, cancel_pending=False) is False
    assert time.monotonic() - started < 1.0
    assert job.cancelled()  # the grace ran out: the running job is cancelled at its next page
    assert queued.cancelled()
    assert thread.is_alive()  # still on its page; the caller decides whether to exit

    gate.set()
    thread.join(WAIT)
    assert not thread.is_alive()
    assert widths(SlowEngine) == [50]  # one page of three, and not the queued job
    assert SlowEngine.closes == 1
    assert SlowEngine.threads["close"] == ["textdrop-jobs-grace"]
    assert queue.stop() is True


def test_the_context_manager_drains_every_submitted_job(job_engines: None, tmp_path: Path) -> None:
    SlowEngine.delay = 0.01
    with JobQueue("slow") as queue:
        jobs = [queue.submit(png(tmp_path, w)) for w in (80, 81, 82, 83, 84)]
    assert all(job.done() and not job.cancelled() for job in jobs)
    assert [job.result(timeout=0).pages[0].width for job in jobs] == [80, 81, 82, 83, 84]
    assert SlowEngine.closes == 1


def test_leaving_the_context_on_an_exception_cancels_the_work(gate: threading.Event, tmp_path: Path) -> None:
    opener = threading.Timer(0.1, gate.set)
    with pytest.raises(KeyError), JobQueue("slow") as queue:
        job = queue.submit(tiff(tmp_path, 4))
        queued = queue.submit(png(tmp_path, 90))
        assert job.started.wait(WAIT)
        opener.start()
        raise KeyError("the caller failed")
    opener.join()
    assert job.cancelled() and queued.cancelled()
    assert widths(SlowEngine) == [50]  # the running page finished, nothing more
    assert SlowEngine.closes == 1


def test_submit_is_refused_before_start_and_after_stop(job_engines: None, tmp_path: Path) -> None:
    path = png(tmp_path, 20)
    queue = JobQueue("fake")
    with pytest.raises(RuntimeError, match="before start"):
        queue.submit(path)
    queue.start()
    with pytest.raises(RuntimeError, match="only once"):
        queue.start()
    assert queue.stop() is True
    with pytest.raises(RuntimeError, match="stopping"):
        queue.submit(path)
    with pytest.raises(RuntimeError):
        queue.start()


def test_a_queue_never_started_stops_without_loading(job_engines: None) -> None:
    queue = JobQueue("fake")
    assert queue.stop() is True
    assert queue.loaded.cancelled()
    assert FakeEngine.loads == 0


def test_the_worker_loads_the_engine_once_and_closes_it_once(job_engines: None, tmp_path: Path) -> None:
    SlowEngine.delay = 0.0
    queue = JobQueue("slow", name="textdrop-jobs-owner").start()
    try:
        assert queue.loaded.result(timeout=WAIT) is None  # preloaded before any job was submitted
        assert SlowEngine.loads == 1
        assert SlowEngine.threads["load"] == ["textdrop-jobs-owner"]
        jobs = [queue.submit(png(tmp_path, w)) for w in (10, 11, 12)]
        assert [job.result(timeout=WAIT).pages[0].width for job in jobs] == [10, 11, 12]
        assert SlowEngine.loads == 1
        assert SlowEngine.closes == 0
    finally:
        assert queue.stop() is True
    assert SlowEngine.closes == 1
    assert set(SlowEngine.threads["load"]) == {"textdrop-jobs-owner"}
    assert set(SlowEngine.threads["page"]) == {"textdrop-jobs-owner"}
    assert SlowEngine.threads["close"] == ["textdrop-jobs-owner"]


def test_the_fake_engine_is_loaded_and_closed_once(job_engines: None, tmp_path: Path) -> None:
    with JobQueue("fake") as queue:
        queue.loaded.result(timeout=WAIT)
        assert FakeEngine.loads == 1
        for w in (10, 11):
            queue.submit(png(tmp_path, w)).result(timeout=WAIT)
    assert (FakeEngine.loads, FakeEngine.closes) == (1, 1)


def test_without_preload_the_first_job_loads_the_engine(job_engines: None, tmp_path: Path) -> None:
    with JobQueue("fake", preload=False) as queue:
        time.sleep(0.05)
        assert FakeEngine.loads == 0
        assert not queue.loaded.done()
        queue.submit(png(tmp_path, 10)).result(timeout=WAIT)
        assert queue.loaded.result(timeout=0) is None
    assert (FakeEngine.loads, FakeEngine.closes) == (1, 1)


def test_an_engine_that_fails_to_load_fails_every_job(job_engines: None, tmp_path: Path) -> None:
    with JobQueue("brokenload") as queue:
        with pytest.raises(EngineUnavailableError, match="cannot load its model"):
            queue.loaded.result(timeout=WAIT)
        jobs = [queue.submit(png(tmp_path, w)) for w in (10, 11)]
        for job in jobs:
            with pytest.raises(EngineUnavailableError, match="cannot load its model"):
                job.result(timeout=WAIT)
    assert BrokenLoadEngine.loads == 1  # not retried for every job
    assert BrokenLoadEngine.pages == []


def test_a_job_can_use_another_engine(job_engines: None, tmp_path: Path) -> None:
    SlowEngine.delay = 0.0
    with JobQueue("fake", name="textdrop-jobs-multi") as queue:
        other = queue.submit(png(tmp_path, 10), engine="slow")
        default = queue.submit(png(tmp_path, 11))
        unknown = queue.submit(png(tmp_path, 12), engine="nope")
        assert other.result(timeout=WAIT).engine == "slow"
        assert default.result(timeout=WAIT).engine == "fake"
        with pytest.raises(EngineUnavailableError, match="Unknown engine 'nope'"):
            unknown.result(timeout=WAIT)
    assert (other.engine, default.engine, unknown.engine) == ("slow", "fake", "nope")
    assert widths(SlowEngine) == [10]
    assert widths(FakeEngine) == [11]
    assert (SlowEngine.loads, SlowEngine.closes) == (1, 1)
    assert (FakeEngine.loads, FakeEngine.closes) == (1, 1)
    assert set(SlowEngine.threads["load"]) == {
        "textdrop-jobs-multi"
    }  # recognize() calls load() again: a no-op
    assert SlowEngine.threads["close"] == ["textdrop-jobs-multi"]


def test_an_unknown_engine_is_refused_at_construction(job_engines: None) -> None:
    with pytest.raises(EngineUnavailableError, match="Unknown engine 'nope'"):
        JobQueue("nope")
    assert worker("textdrop-jobs") is None


def test_done_callbacks_run_in_the_worker_thread(gate: threading.Event, tmp_path: Path) -> None:
    called = threading.Event()
    names: list[str] = []

    def callback(job: concurrent.futures.Future[object]) -> None:
        names.append(threading.current_thread().name)
        called.set()

    with JobQueue("slow", name="textdrop-jobs-callbacks") as queue:
        job = queue.submit(png(tmp_path, 10))
        assert isinstance(job, Job)
        job.add_done_callback(callback)  # before it can finish: the gate holds its page
        gate.set()
        assert called.wait(WAIT)
    assert names == ["textdrop-jobs-callbacks"]


def test_an_engine_that_skips_engine_init_still_recognises_and_aborts() -> None:
    """Third-party engines (entry points) may define ``__init__`` without calling ``Engine.__init__``."""
    from PIL import Image

    from textdrop.engine import recognize
    from textdrop.engine.registry import Engine
    from textdrop.engine.result import PageResult

    class Bare(Engine):
        name = "bare"

        def __init__(self) -> None:
            self.calls = 0

        @classmethod
        def is_available(cls) -> bool:
            return True

        def load(self) -> None:
            pass

        def recognize_page(self, image: Image.Image, options: object) -> PageResult:
            self.calls += 1
            return PageResult(number=1, width=image.width, height=image.height, markdown="x", text="x")

    engine = Bare()
    assert recognize(Image.new("RGB", (20, 10)), engine=engine).pages[0].markdown == "x"
    engine.abort()
    assert engine.aborted
    engine.reset_abort()
    assert not engine.aborted and engine.calls == 1
