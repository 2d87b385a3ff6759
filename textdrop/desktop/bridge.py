"""Jobs to Qt signals: the desktop submits to the one :class:`JobQueue` and hears back on the GUI thread.

The job worker runs the engine; this bridge only turns a job's callbacks (which run in the worker
thread) into Qt signals, which Qt delivers to receivers in the GUI thread (queued connections). Nothing
here ever waits for a job, so the GUI thread never blocks on a model (STYLE.md, pattern 7).
"""

from __future__ import annotations

import concurrent.futures
import itertools
import logging
import os
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QObject, Signal
from PySide6.QtGui import QImage

from textdrop.engine.errors import TextdropError
from textdrop.engine.jobs import Job, JobQueue, Priority

if TYPE_CHECKING:
    from textdrop.engine.registry import RecognizeOptions

log = logging.getLogger(__name__)


def png_bytes(image: QImage) -> bytes:
    """``image`` as the bytes of a PNG file, which is how image data (a capture, a drop, the clipboard)
    is submitted as a job. Safe in a worker thread (QImage is reentrant).

    Raises:
        TextdropError: Qt could not encode the image.
    """
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    if not image.save(buffer, "PNG"):
        raise TextdropError(
            f"A {image.width()}x{image.height()} image could not be encoded as PNG; try again."
        )
    buffer.close()
    return bytes(data.data())


class JobBridge(QObject):
    """Submits recognition jobs and reports on them through signals (ids are this bridge's own).

    Signals:
        started(int): the worker began the job.
        progress(int, int, int): job id, pages done, pages in all.
        text(int, int, str): job id, page number, the page's text so far (streaming engines only).
        finished(int, object): job id, the :class:`~textdrop.engine.result.OcrResult`.
        failed(int, str): job id, a one-line message that says what to do.
        cancelled(int): job id.
    """

    started = Signal(int)
    progress = Signal(int, int, int)
    text = Signal(int, int, str)
    finished = Signal(int, object)
    failed = Signal(int, str)
    cancelled = Signal(int)

    def __init__(self, queue: JobQueue, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.queue = queue
        self.engine: str | None = None
        """Engine spec for jobs submitted without one (``None``: the queue's default); the tray sets it
        when the settings change, so a new engine applies without a restart."""
        self._ids = itertools.count(1)
        self._jobs: dict[int, Job] = {}

    def submit(
        self,
        source: str | os.PathLike[str] | bytes | Any,
        *,
        priority: Priority = Priority.INTERACTIVE,
        engine: str | None = None,
        options: RecognizeOptions | None = None,
    ) -> int:
        """Queue ``source`` (a path, image or PDF bytes, or a PIL image); returns the job's id at once.

        An error at submission (the queue is stopping) is reported through :attr:`failed` too.
        """
        job_id = next(self._ids)
        try:
            job = self.queue.submit(
                source,
                priority=priority,
                engine=engine or self.engine,
                options=options,
                on_start=lambda _job: self.started.emit(job_id),
                on_page=lambda done, total: self.progress.emit(job_id, done, total),
                on_text=lambda page, text: self.text.emit(job_id, page, text),
            )
        except RuntimeError as exc:
            self.failed.emit(job_id, f"textdrop is shutting down and took no more work ({exc}).")
            return job_id
        self._jobs[job_id] = job
        job.add_done_callback(lambda done: self._done(job_id, done))
        return job_id

    def cancel(self, job_id: int) -> bool:
        """Cancel a queued or running job (a VLM stops mid-page); True when it is now cancelled."""
        job = self._jobs.get(job_id)
        return job is not None and job.cancel()

    def _done(self, job_id: int, job: Job) -> None:
        self._jobs.pop(job_id, None)
        if job.cancelled():
            self.cancelled.emit(job_id)
            return
        try:
            self.finished.emit(job_id, job.result())
        except TextdropError as exc:
            self.failed.emit(job_id, str(exc))
        except concurrent.futures.CancelledError:
            self.cancelled.emit(job_id)
        except Exception as exc:  # a bug in a backend: say so, never fail silently
            log.exception("job %d failed", job_id)
            self.failed.emit(job_id, f"unexpected error: {exc!r}")
