"""The single job queue: one worker thread owns the loaded engines and runs recognition jobs by priority.

Everything that recognises more than one thing goes through a :class:`JobQueue`: the ``textdrop ocr``
batch, the folder watcher and the desktop app. One worker thread loads the engine once and closes it; for
an in-process engine (:attr:`Engine.concurrency` 1) it runs one job at a time and is the only thread that
ever touches the engine, so a VLM's memory is held once and never used from two threads. An engine that
works on several pages at once (a server backend: ``concurrency`` pages in flight per endpoint) gets that
many *lanes*: the worker still takes jobs in priority order, one whenever a lane is free, and runs each in
a lane thread, where :func:`~textdrop.engine.recognize` keeps the pages of one document in flight side by
side (``docs/adr/014-vlm-guards-and-server-scale.md``). Jobs are :class:`concurrent.futures.Future`
objects: the caller waits on them, adds done-callbacks (which run in the thread that ran the job: the
worker, or a lane) or cancels them.

Ordering: an :attr:`Priority.INTERACTIVE` job (a user waits for it: a capture, a drop) runs before any
queued :attr:`Priority.BACKGROUND` job (a folder backlog, a batch); jobs of one priority start in
submission order. Cancelling a running job stops a streaming (VLM) engine mid-page (the job's own
:data:`~textdrop.engine.registry.ABORT_SCOPE`, so other jobs in flight on the same engine go on); other
engines finish the page and stop at the page boundary.

Typical use::

    with JobQueue("auto") as queue:  # the worker starts and loads the engine
        jobs = [queue.submit(path) for path in paths]
        for job in jobs:
            print(job.result().markdown)
    # leaving the block drains the queue, then closes the engine in the worker

The queue is a stoppable thread in watchdog's manner: a stop event, a sentinel on the queue, start/stop as
a context manager.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import contextvars
import copy
import heapq
import itertools
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Mapping
from enum import IntEnum
from types import TracebackType
from typing import TYPE_CHECKING, TypeAlias

from textdrop.engine import recognize, registry
from textdrop.engine.registry import (
    ABORT_SCOPE,
    Engine,
    RecognizeOptions,
    create_engine,
    resolve_engine_name,
)

if TYPE_CHECKING:
    from pydantic import BaseModel
from textdrop.engine.documents.sources import SourceLimits, file_label
from textdrop.engine.errors import TextdropError
from textdrop.engine.result import OcrResult

if TYPE_CHECKING:
    from PIL import Image

    Source: TypeAlias = str | os.PathLike[str] | bytes | Image.Image

log = logging.getLogger(__name__)

__all__ = ["Job", "JobCancelled", "JobQueue", "Priority"]

_SENTINEL_PRIORITY = sys.maxsize
"""Heap key of the stop sentinel: after every job, so a draining stop runs the queued jobs first."""


class Priority(IntEnum):
    """How urgently a job runs; a lower value runs first."""

    INTERACTIVE = 0
    """A user waits for it (capture, drop window): runs before any queued BACKGROUND job."""
    BACKGROUND = 10
    """Folder backlog, batch CLI."""


class JobCancelled(Exception):
    """Raised inside the worker, at a page boundary, to stop a running job that was cancelled.

    (A streaming engine stopped mid-page raises :class:`GenerationAborted` instead; same outcome.)

    Callers never see it: the job's Future ends cancelled, and ``result()`` raises
    :class:`concurrent.futures.CancelledError`.
    """


class Job(concurrent.futures.Future[OcrResult]):
    """One recognition job: a Future of its :class:`OcrResult`, made by :meth:`JobQueue.submit`.

    Failures of the job (a :class:`TextdropError` for a bad input or an engine that failed to load, any
    other exception for a bug in a backend) are the Future's exception. Done-callbacks added before the job
    ends run in the thread that ran it (the worker, or a lane of a concurrent engine); one added to a
    finished job runs at once in the caller's thread, and cancelling runs them in the cancelling thread
    (standard Future behaviour).

    Attributes:
        source: the path, bytes or PIL image to recognise.
        priority: the job's :class:`Priority`.
        engine: the resolved name of the engine that runs it.
        label: how logs name it: the path as printable text, or ``"<image>"`` for bytes and images.
        started: set when the worker begins this job (a cancelled queued job never sets it).
        options: recognition options (``None``: the queue's).
        limits: source limits (``None``: the queue's).
        on_page: called as ``on_page(done, total)`` in the worker after each page.
        on_start: called as ``on_start(job)`` in the worker just before it begins the job.
        on_text: called as ``on_text(page_number, text_so_far)`` in the worker while a streaming engine
            generates.
    """

    def __init__(
        self,
        source: Source,
        *,
        queue: JobQueue,
        priority: Priority,
        engine: str,
        label: str,
        options: RecognizeOptions | None = None,
        limits: SourceLimits | None = None,
        on_page: Callable[[int, int], None] | None = None,
        on_start: Callable[[Job], None] | None = None,
        on_text: Callable[[int, str], None] | None = None,
        error: TextdropError | None = None,
    ) -> None:
        super().__init__()
        self.source = source
        self.priority = priority
        self.engine = engine
        self.label = label
        self.options = options
        self.limits = limits
        self.on_page = on_page
        self.on_start = on_start
        self.on_text = on_text
        self.started = threading.Event()
        self._queue = queue
        self._error = error  # the engine name failed to resolve at submit; the worker reports it in order
        self._queued = False  # in the queue's heap; guarded by the queue's lock
        self._active = False  # the worker is running it
        self._abort = threading.Event()  # stops this job's pages only (ABORT_SCOPE)

    def cancel(self) -> bool:
        """Cancel the job.

        A queued job is cancelled at once and never runs. A running job is marked cancelled at once
        (``cancelled()`` is True and ``result()`` raises ``CancelledError``); a streaming engine stops
        generating within a token or two, others finish the page and stop at the page boundary.

        Returns:
            True when the job is (now or already) cancelled; False when it had already finished.
        """
        if not super().cancel():
            return False
        self._queue._discard(self)
        self._queue._interrupt(self)
        return True

    def running(self) -> bool:
        """True while the worker runs this job and it is neither finished nor cancelled."""
        return super().running() or (self._active and not self.done())

    def __repr__(self) -> str:
        if self.running():
            state = "running"
        elif self.cancelled():
            state = "cancelled"
        else:
            state = "finished" if self.done() else "pending"
        return f"<Job {self.label!r} {self.priority.name} engine={self.engine} state={state}>"


class JobQueue:
    """A priority queue of recognition jobs with one worker thread that owns the engines.

    Lifecycle: construct (creates, but does not load, the default engine) → :meth:`start` (the worker
    starts and, with ``preload``, loads the default engine) → :meth:`submit` … → :meth:`stop` (the worker
    closes every engine it loaded). Also a context manager: entering starts, leaving drains the queue
    and stops; leaving on an exception cancels the queued jobs and the running one instead.

    Args:
        engine: the default engine's name (``None`` or ``"auto"``: the best available).
        options: default recognition options for jobs (``None``: :class:`RecognizeOptions` defaults).
        limits: default source limits for jobs (``None``: :class:`SourceLimits` defaults).
        preload: load the default engine as soon as the worker starts, rather than at the first job.
        name: the worker thread's name.
        backends: backend settings by engine name (config.toml's ``[llama]``, ``[openai]`` tables).

    Raises:
        EngineUnavailableError: ``engine`` is unknown or not available here (whatever
            :func:`create_engine` raises), in the caller's thread, before anything starts.
    """

    def __init__(
        self,
        engine: str | None = None,
        *,
        options: RecognizeOptions | None = None,
        limits: SourceLimits | None = None,
        preload: bool = True,
        name: str = "textdrop-jobs",
        backends: Mapping[str, BaseModel] | None = None,
    ) -> None:
        self._backends = backends
        self._engine_name = resolve_engine_name(engine)
        self._chosen_by_auto: set[str] = {self._engine_name} if engine in (None, "auto") else set()
        """Engine specs ``auto`` resolved to: one that cannot load is replaced by the embedded engine."""
        self._replaced: dict[str, str] = {}  # spec -> why the embedded engine reads its jobs (worker only)
        self._engines: dict[str, Engine] = {self._engine_name: create_engine(self._engine_name, backends)}
        self._options = options
        self._limits = limits
        self._preload = preload
        self.name = name
        self._cond = (
            threading.Condition()
        )  # guards the heap, _running, _lane_count, _thread and each job's _queued
        self._heap: list[tuple[int, int, Job | None]] = []
        self._sequence = itertools.count()
        self._stop_event = threading.Event()
        self._thread: threading.Thread | None = None
        self._running: set[Job] = set()  # taken from the heap and not finished (guarded by _cond)
        self._lanes: concurrent.futures.ThreadPoolExecutor | None = None  # for concurrent engines
        self._lane_count = 1  # jobs that may run at once (the lanes' size once there are lanes)
        # Only the worker touches these:
        self._ready: set[str] = set()  # engines loaded
        self._load_errors: dict[str, Exception] = {}
        self._loaded: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._closed_cleanly = False

    # -- properties --------------------------------------------------------------------------------

    @property
    def engine(self) -> str:
        """The default engine's resolved name."""
        return self._engine_name

    @property
    def options(self) -> RecognizeOptions:
        """The recognition options of jobs submitted without their own."""
        return self._options or RecognizeOptions()

    def engine_name(self, name: str | None = None) -> str:
        """The resolved name of the engine a job submitted with ``engine=name`` would run on.

        Raises:
            EngineUnavailableError: ``name`` is unknown or not available here.
        """
        return self._engine_name if name is None or name == self._engine_name else resolve_engine_name(name)

    @property
    def loaded(self) -> concurrent.futures.Future[None]:
        """Resolves (``None``) when the default engine has loaded, or holds its load error.

        Without ``preload`` it resolves when the first job that uses the default engine loads it; it is
        cancelled if the queue stops without ever loading it.
        """
        return self._loaded

    @property
    def busy(self) -> bool:
        """True while a job runs."""
        return bool(self._running)

    @property
    def concurrency(self) -> int:
        """Jobs that may run at once: the default engine's :attr:`Engine.concurrency` (1 in process)."""
        return (
            max(1, self._engines[self._engine_name].concurrency) if self._engine_name in self._engines else 1
        )

    @property
    def alive(self) -> bool:
        """True while the worker thread runs (also before :meth:`start`); False once it has ended, by
        :meth:`stop` or because something escaped it, so a supervisor can tell a dead queue."""
        thread = self._thread
        return thread is None or thread.is_alive()

    def __len__(self) -> int:
        """The number of queued jobs, not counting the running one."""
        with self._cond:
            return sum(1 for *_, job in self._heap if job is not None)

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> JobQueue:
        """Start the worker thread (a daemon named :attr:`name`); returns ``self``.

        Raises:
            RuntimeError: the queue was already started, or stopped.
        """
        with self._cond:
            if self._thread is not None or self._stop_event.is_set():
                raise RuntimeError(f"{self.name}: a JobQueue can be started only once")
            self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
            self._thread.start()
        return self

    def submit(
        self,
        source: Source,
        *,
        priority: Priority = Priority.BACKGROUND,
        engine: str | None = None,
        options: RecognizeOptions | None = None,
        limits: SourceLimits | None = None,
        on_page: Callable[[int, int], None] | None = None,
        on_start: Callable[[Job], None] | None = None,
        on_text: Callable[[int, str], None] | None = None,
    ) -> Job:
        """Queue ``source`` for recognition.

        Args:
            source: a file path, the bytes of an image or PDF, or a PIL image (not copied: do not change
                it until the job is done).
            priority: a lower value runs first; equal priorities run in submission order.
            engine: another engine for this job (``None``: the queue's default). The worker creates it on
                first use, keeps it loaded and closes it at stop. An unknown or unavailable name does not
                raise here: the job's Future gets the :class:`EngineUnavailableError`.
            options: recognition options (``None``: the queue's).
            limits: source limits (``None``: the queue's).
            on_page: called as ``on_page(done, total)`` in the thread running the job after each page.
            on_start: called as ``on_start(job)`` in the thread running the job when it begins (the
                watcher counts attempts there); an exception it raises is logged and ignored.
            on_text: called as ``on_text(page_number, text_so_far)`` while a streaming engine generates
                (the desktop shows the text as it comes): in the thread running the job, or in a page
                thread of a concurrent engine.

        Returns:
            The job, a Future of the :class:`OcrResult`.

        Raises:
            RuntimeError: the queue is not started yet, or :meth:`stop` has begun (intake is closed).
            ValueError: ``priority`` is not a :class:`Priority` value.
        """
        priority = Priority(priority)
        name, error = self._engine_name, None
        if engine is not None and engine != self._engine_name:
            try:
                name = resolve_engine_name(engine)
            except TextdropError as exc:
                name, error = engine, exc
            if engine == "auto" and error is None:
                self._chosen_by_auto.add(name)
        label = file_label(source) if isinstance(source, str | os.PathLike) else "<image>"
        job = Job(
            source,
            queue=self,
            priority=priority,
            engine=name,
            label=label,
            options=options,
            limits=limits,
            on_page=on_page,
            on_start=on_start,
            on_text=on_text,
            error=error,
        )
        with self._cond:
            if self._thread is None:
                raise RuntimeError(f"{self.name}: submit() before start()")
            if self._stop_event.is_set():
                raise RuntimeError(f"{self.name}: the queue is stopping and accepts no more jobs")
            job._queued = True
            heapq.heappush(self._heap, (int(priority), next(self._sequence), job))
            self._cond.notify()
        log.debug("queued %s (%s, engine %s)", label, priority.name, name)
        return job

    def stop(self, *, grace: float | None = None, cancel_pending: bool = True) -> bool:
        """Stop intake, then end the worker, which closes every engine it owns. Idempotent.

        The running job may finish: this waits up to ``grace`` seconds for the worker to end. If the grace
        runs out, the running job is cancelled (it stops at its next page boundary), any jobs still queued
        are cancelled too, and this returns False at once; the daemon worker is left to end by itself
        and the caller decides whether to exit.

        Args:
            grace: seconds to wait for the worker; ``None`` waits as long as it takes.
            cancel_pending: cancel every queued job (their Futures end cancelled); with False the queued
                jobs run first (the queue drains).

        Returns:
            True when the worker has ended and closed every engine without error (also when the queue
            was never started); False when the grace ran out, an engine's ``close()`` raised, or this
            was called in the worker thread itself (from a done-callback), where it cannot wait.
        """
        return self._stop(grace=grace, cancel_pending=cancel_pending, cancel_running=False)

    def __enter__(self) -> JobQueue:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        failed = exc_type is not None  # nobody will collect the results: stop at the next page boundary
        self._stop(grace=None, cancel_pending=failed, cancel_running=failed)

    # -- caller side internals ---------------------------------------------------------------------

    def _stop(self, *, grace: float | None, cancel_pending: bool, cancel_running: bool) -> bool:
        with self._cond:
            if not self._stop_event.is_set():
                self._stop_event.set()
                if self._thread is not None:
                    heapq.heappush(self._heap, (_SENTINEL_PRIORITY, next(self._sequence), None))
                    self._cond.notify()
                log.debug("%s: stopping (%d queued, cancel_pending=%s)", self.name, len(self), cancel_pending)
            pending = self._take_queued() if cancel_pending else []
            running = list(self._running) if cancel_running else []
            thread = self._thread
        _cancel_taken(pending)
        for job in running:
            job.cancel()
        if thread is None:  # never started: no engine was ever loaded
            _cancel_future(self._loaded)
            return True
        if thread is threading.current_thread():
            log.debug("%s: stop() called in the worker thread; not waiting for it", self.name)
            return False
        thread.join(grace)
        if not thread.is_alive():
            _wait_native_exit(thread)
            return self._closed_cleanly
        with self._cond:
            pending = self._take_queued()
            running = list(self._running)
        _cancel_taken(pending)
        for job in running:
            job.cancel()
        log.warning(
            "%s: still busy with %s after %.1f s; cancelled it at its next page",
            self.name,
            ", ".join(job.label for job in running) or "closing its engines",
            grace,
        )
        return False

    def _take_queued(self) -> list[Job]:
        """Remove every queued job from the heap (the sentinel stays); call with the lock held."""
        jobs = [job for *_, job in self._heap if job is not None]
        for job in jobs:
            job._queued = False
        self._heap = [entry for entry in self._heap if entry[2] is None]
        return jobs

    def _discard(self, job: Job) -> None:
        """Take a just-cancelled job out of the heap, if it is still there, and notify its waiters.

        Whoever takes a job out of the heap (this, :meth:`_stop` or the worker) is the one that calls
        ``set_running_or_notify_cancel`` on it, exactly once.
        """
        with self._cond:
            if not job._queued:
                return
            job._queued = False
            self._heap = [entry for entry in self._heap if entry[2] is not job]
            heapq.heapify(self._heap)
        job.set_running_or_notify_cancel()  # wakes concurrent.futures.wait() and as_completed()
        log.debug("cancelled queued job %s", job.label)

    def _interrupt(self, job: Job) -> None:
        """Ask the engine running ``job`` (if it is running) to stop its pages mid-page."""
        job._abort.set()  # the job's own pages, whichever threads run them
        if job._active:
            engine = self._engines.get(job.engine)
            if engine is not None and engine.concurrency == 1:
                engine.abort()  # an engine that ignores ABORT_SCOPE still stops (it runs this job only)

    # -- worker ------------------------------------------------------------------------------------

    def _run(self) -> None:
        log.debug("%s: worker started (default engine %s)", self.name, self._engine_name)
        try:
            if self._preload and not self._stop_event.is_set():
                # A load error is recorded in self._loaded and _load_errors; every job will report it.
                with contextlib.suppress(Exception):
                    self._engine_for(self._engine_name)
            while (job := self._next()) is not None:
                lanes = self._lanes_for(job)
                if lanes is None:
                    self._execute(job)
                else:
                    lanes.submit(self._execute, job)
        finally:
            if self._lanes is not None:
                self._lanes.shutdown(wait=True)  # the jobs in flight end before their engine closes
            with self._cond:
                self._stop_event.set()  # also when something escaped: no more intake
                pending = self._take_queued()
            _cancel_taken(pending)
            self._closed_cleanly = self._close_engines()
            _cancel_future(self._loaded)
            log.debug("%s: worker ended", self.name)

    def _next(self) -> Job | None:
        """Block until a job (or the stop sentinel: ``None``) is at the head of the heap and, for a job,
        fewer than :attr:`_lane_count` jobs run; pop it. Waiting for a free lane before popping keeps the
        order: an interactive job submitted meanwhile is the next one to start."""
        with self._cond:
            while not self._heap or (self._heap[0][2] is not None and len(self._running) >= self._lane_count):
                self._cond.wait()
            *_, job = heapq.heappop(self._heap)
            if job is not None:
                job._queued = False
                self._running.add(job)
            return job

    def _lanes_for(self, job: Job) -> concurrent.futures.ThreadPoolExecutor | None:
        """The lanes to run ``job`` in when its engine works on several pages at once, else ``None`` (the
        worker runs it: also when the engine fails to load, which :meth:`_execute` then reports)."""
        if job._error is not None or job.engine in self._load_errors or job.cancelled():
            return None
        try:
            engine = self._engine_for(job.engine)
        except Exception:
            return None
        if engine.concurrency <= 1:
            return None
        if self._lanes is None:
            self._lanes = concurrent.futures.ThreadPoolExecutor(
                engine.concurrency, thread_name_prefix=f"{self.name}-lane"
            )
            with self._cond:
                self._lane_count = engine.concurrency
        return self._lanes

    def _execute(self, job: Job) -> None:
        if job.cancelled():  # cancelled between leaving the heap and now: the worker notifies
            job.set_running_or_notify_cancel()
            self._done_with(job)
            log.debug("skipped cancelled job %s", job.label)
            return
        job._active = True
        job.started.set()
        if job.on_start is not None:
            try:
                job.on_start(job)
            except Exception:
                log.exception("job %s: on_start failed", job.label)
        started = time.perf_counter()
        log.debug("job %s: started (%s, engine %s)", job.label, job.priority.name, job.engine)
        result: OcrResult | None = None
        error: BaseException | None = job._error or _fresh(self._load_errors.get(job.engine))
        if error is None:
            try:
                engine = self._engine_for(job.engine)
                if job.cancelled():
                    raise JobCancelled(job.label)
                result = contextvars.copy_context().run(
                    _recognize_job, job, engine, self._options, self._limits
                )
                if job.engine in self._replaced:
                    for page in result.pages:
                        if page.engine == registry.EMBEDDED:  # not a page read from a PDF's text layer
                            reason = f"{registry.EMBEDDED}: {self._replaced[job.engine]}"
                            page.fallback = page.fallback or reason
            except BaseException as exc:  # every failure goes to the Future; the worker keeps going
                error = exc
        seconds = time.perf_counter() - started
        try:
            if not job.set_running_or_notify_cancel():  # cancelled while it ran
                log.debug("job %s: cancelled after %.2f s", job.label, seconds)
                return
            job._active = False
            self._done_with(job)
            if error is None:
                log.debug("job %s: done in %.2f s", job.label, seconds)
                job.set_result(result)  # type: ignore[arg-type]
            else:
                log.debug("job %s: failed after %.2f s: %s", job.label, seconds, error)
                job.set_exception(error)
        finally:
            job._active = False
            self._done_with(job)
        if error is not None and not isinstance(error, Exception):
            raise error  # KeyboardInterrupt, SystemExit: reported to the job, then end the worker

    def _done_with(self, job: Job) -> None:
        """``job`` no longer runs: its lane is free for the next job."""
        with self._cond:
            if job in self._running:
                self._running.discard(job)
                self._cond.notify_all()

    def _engine_for(self, name: str) -> Engine:
        """The loaded engine ``name``, created and loaded on first use (worker thread only).

        An engine ``auto`` chose that fails with a :class:`TextdropError` (a VLM whose files do not load)
        is replaced by the embedded engine for good: its jobs' pages then carry the reason in
        ``PageResult.fallback``. An engine the user named is never replaced.

        Raises:
            Exception: whatever ``create_engine`` or ``load()`` raised (typically EngineUnavailableError,
                ModelError); it is remembered and handed to every later job of that engine without
                retrying.
        """
        if name in self._replaced:
            return self._engine_for(registry.EMBEDDED)
        engine = self._engines.get(name)
        if name in self._ready and engine is not None:
            return engine
        started = time.perf_counter()
        try:
            if engine is None:
                engine = self._engines[name] = create_engine(name, self._backends)
            engine.load()
        except TextdropError as exc:
            if name in self._chosen_by_auto and name != registry.EMBEDDED:  # auto keeps its fallback; says so
                self._replaced[name] = f"{name} could not be loaded ({exc})"
                log.warning("%s: %s; the embedded engine reads its pages", self.name, self._replaced[name])
                replacement = self._engine_for(registry.EMBEDDED)
                if name == self._engine_name:
                    _settle(self._loaded)
                return replacement
            self._load_failed(name, exc)
            raise
        except Exception as exc:
            self._load_failed(name, exc)
            raise
        self._ready.add(name)
        log.info("engine %s loaded in %.1f s", name, time.perf_counter() - started)
        if name == self._engine_name:
            _settle(self._loaded)
        return engine

    def _load_failed(self, name: str, exc: Exception) -> None:
        self._load_errors[name] = exc
        log.warning("%s: engine %s failed to load: %s", self.name, name, exc)
        if name == self._engine_name:
            _settle(self._loaded, error=exc)

    def _close_engines(self) -> bool:
        ok = True
        for name, engine in self._engines.items():
            try:
                engine.close()
            except Exception:
                ok = False
                log.exception("%s: engine %s failed to close", self.name, name)
        self._engines.clear()
        self._ready.clear()
        return ok


NATIVE_EXIT_WAIT = 2.0
"""Seconds :func:`_wait_native_exit` waits at most for the worker's OS thread to end."""


def _wait_native_exit(thread: threading.Thread) -> None:
    """Wait until the worker's OS thread has really ended, not only its Python part (Linux).

    ``join()`` returns before the thread's C++ ``thread_local`` destructors run. MLX's run then; if the
    interpreter starts finalising meanwhile, the process aborts ("terminate called without an active
    exception", ml-explore/mlx#3126). Measured with mlx 0.32.4 on Linux: 3 exits in 9 aborted after a
    bare join, none in 8 ``textdrop ocr --engine mlx`` runs after this wait.
    """
    task = f"/proc/self/task/{thread.native_id}"
    deadline = time.monotonic() + NATIVE_EXIT_WAIT
    while os.path.exists(task) and time.monotonic() < deadline:
        time.sleep(0.005)


def _recognize_job(
    job: Job, engine: Engine, options: RecognizeOptions | None, limits: SourceLimits | None
) -> OcrResult:
    """``recognize`` for ``job``, inside a copied context whose :data:`ABORT_SCOPE` is the job's own."""
    ABORT_SCOPE.set((*ABORT_SCOPE.get(), job._abort))
    return recognize(
        job.source,
        engine=engine,
        options=options if job.options is None else job.options,
        limits=limits if job.limits is None else job.limits,
        on_page=lambda done, total: _page_done(job, done, total),
        on_text=job.on_text,
    )


def _page_done(job: Job, done: int, total: int) -> None:
    """``recognize``'s page callback: stop a cancelled job here, between pages."""
    if job.cancelled():
        raise JobCancelled(f"{job.label}: cancelled after page {done} of {total}")
    if job.on_page is not None:
        job.on_page(done, total)


def _cancel_taken(jobs: list[Job]) -> None:
    """Cancel jobs already taken out of the heap, and notify their waiters."""
    for job in jobs:
        job.cancel()  # runs the cancel callbacks; _discard does nothing, the job is out of the heap
        job.set_running_or_notify_cancel()
    if jobs:
        log.debug("cancelled %d queued job(s)", len(jobs))


def _cancel_future(future: concurrent.futures.Future[None]) -> None:
    """Cancel a Future nobody runs and notify its waiters (a no-op when it is done)."""
    if future.cancel():
        with contextlib.suppress(RuntimeError):  # notified already
            future.set_running_or_notify_cancel()


def _settle(future: concurrent.futures.Future[None], error: BaseException | None = None) -> None:
    """Set ``future``'s result or exception unless a caller cancelled it."""
    with contextlib.suppress(concurrent.futures.InvalidStateError):
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(error)


def _fresh(error: Exception | None) -> Exception | None:
    """A copy of a remembered load error for one more Future.

    Raising one exception instance in many places makes its traceback grow with every raise (each
    ``result()`` adds frames), so each job gets its own copy, with the original's traceback and cause.
    """
    if error is None:
        return None
    try:
        clone = copy.copy(error)
    except Exception:
        return error
    clone.__cause__ = error.__cause__
    clone.__context__ = error.__context__
    clone.__suppress_context__ = error.__suppress_context__
    return clone.with_traceback(error.__traceback__)
