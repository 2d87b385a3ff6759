"""The folder service: watchdog observers → settle → jobs → sidecars, exactly once per file version.

A scanner, a phone sync or the OS screenshot tool fills a folder; every complete file gets exactly one
up-to-date Markdown sidecar, across restarts, crashes (``kill -9`` at any moment), bursts and bad files.

The pieces, each in its own thread:

- **observers** (watchdog; native events by default, :class:`~watchdog.observers.polling.PollingObserver`
  for a folder on a network share, where native events do not arrive) only tell a folder's
  :class:`~textdrop.watcher.settle.SettleTracker` that a path changed;
- the **dispatch** thread takes settled files, hashes them, consults the
  :class:`~textdrop.watcher.ledger.Ledger` and submits jobs to the :class:`~textdrop.engine.jobs.JobQueue`
  (at most :data:`MAX_IN_FLIGHT` at a time, so a burst of a thousand files holds a bounded amount of
  memory);
- the **job worker** runs OCR and then, in the same thread, writes the sidecar and records the result.

Recovery works from the files themselves: on start a scan finds every file that lacks an up-to-date
sidecar (one whose front matter names the file's current SHA-256) and queues it, so work cut off by a crash
is done again, and a sidecar written just before a crash is recognised instead of duplicated. Temp files of
interrupted sidecar writes are removed. A periodic rescan (default every 5 minutes) catches missed events.

Failures are per file, never for the service: transient ones (a locked file on an SMB share, EBUSY,
EACCES) are retried with exponential backoff and jitter up to a limit; a sidecar that cannot be written
(a full disk, a read-only or forbidden output folder) is retried from the stored result until it can be;
permanent ones (a corrupt file) are recorded with their reason and retried only when the file changes.
What is not per file stops the service with its cause, raised by :meth:`WatchService.check`: a ledger that
cannot be written, a dispatch or job worker thread that died, a watched folder that is gone. Dead observers
are replaced. A sidecar is written only while the source is still the file that was read. (ADR 009.)
"""

from __future__ import annotations

import errno
import fnmatch
import json
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import CancelledError
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver
from watchdog.observers.polling import PollingObserver

from textdrop.engine.documents.sidecar import (
    DEFAULT_TEMPLATE,
    SidecarOptions,
    find_up_to_date,
    is_temp_file,
    read_metadata,
    remove_stale_temp_files,
    write_sidecar,
)
from textdrop.engine.documents.sources import (
    SUPPORTED_SUFFIXES,
    SourceLimits,
    file_label,
    file_version,
    sha256_file,
)
from textdrop.engine.errors import (
    ConfigError,
    EngineUnavailableError,
    LedgerError,
    OutputError,
    TextdropError,
)
from textdrop.engine.jobs import Job, JobQueue, Priority
from textdrop.engine.models.catalog import packs_for
from textdrop.engine.registry import RecognizeOptions, result_identity
from textdrop.engine.result import OcrResult
from textdrop.watcher.ledger import Entry, Ledger, Status
from textdrop.watcher.settle import DEFAULT_SETTLE_SECONDS, SettleTracker

log = logging.getLogger(__name__)

MAX_IN_FLIGHT = 4
"""Jobs submitted and not yet finished, at most; enough to keep the worker busy while the next file is
hashed, few enough that a burst of files never piles up results in memory."""

IGNORED_NAMES = frozenset({".ds_store", "thumbs.db", "desktop.ini"})
IGNORED_FOLDERS = frozenset({"@eadir", "#recycle", "$recycle.bin"})
PARTIAL_SUFFIXES = (".part", ".crdownload", ".tmp", ".download", ".partial")
"""Names of files that are still being downloaded or are another program's scratch files."""

TRANSIENT_ERRNOS = frozenset(
    {errno.EBUSY, errno.EACCES, errno.EPERM, errno.EAGAIN, errno.ETXTBSY, errno.ENOSPC, errno.EIO}
)
"""OS errors worth retrying: locked files (SMB, antivirus), a busy device, a full disk."""

OBSERVER_RESTARTS = 5
RESTART_WINDOW_SECONDS = 600.0
"""Dead observers are restarted at most this many times within this many seconds; then the service stops
with an error (a folder that keeps vanishing, an exhausted inotify limit) instead of looking alive."""

DEFAULT_PATTERNS: tuple[str, ...] = tuple(sorted(f"*{suffix}" for suffix in SUPPORTED_SUFFIXES))


class FolderOptions(BaseModel):
    """One watched folder, as a ``[[folders]]`` table of the configuration file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: Path = Field(description="The folder to watch (``~`` is expanded).")
    recursive: bool = Field(False, description="Also watch its sub-folders.")
    patterns: tuple[str, ...] = Field(
        DEFAULT_PATTERNS,
        description=(
            "File name patterns to read (case-insensitive shell patterns such as '*.pdf' or 'scan_*'); "
            "only images and PDFs are ever read, whatever the patterns say."
        ),
    )
    settle_seconds: float = Field(
        DEFAULT_SETTLE_SECONDS,
        ge=0,
        le=3600,
        description="A file is complete once nothing changed it for this many seconds (and it decodes).",
    )
    polling: bool = Field(
        False, description="Poll the folder instead of waiting for native events (network shares)."
    )
    output: Path | None = Field(None, description="Folder for the sidecars; default: beside each file.")
    engine: str | None = Field(None, description="Engine for this folder; default: the configured one.")
    template: str | None = Field(None, description="Sidecar name template; default: the [sidecar] one.")
    outputs: tuple[Literal["md", "txt", "json", "pdf"], ...] = Field(
        ("md",),
        description="What to write for each file: 'md' (Markdown sidecar), 'txt', 'json', and 'pdf' (a "
        'searchable PDF: the pages with an invisible text layer), e.g. ["md", "pdf"].',
    )
    languages: tuple[str, ...] | None = Field(
        None,
        description='Languages of this folder\'s pages (e.g. ["ru", "en"]); default: [recognize] languages.',
    )
    clipboard: bool = Field(False, description="Tray app: put each new result on the clipboard.")
    notify: bool = Field(False, description="Tray app: show a notification for each new result.")

    @field_validator("path", "output")
    @classmethod
    def _absolute(cls, value: Path | None) -> Path | None:
        return None if value is None else Path(os.path.abspath(value.expanduser()))

    @field_validator("patterns")
    @classmethod
    def _some_patterns(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value or not all(pattern.strip() for pattern in value):
            raise ValueError("give at least one non-empty file name pattern, such as '*.pdf'")
        return value

    @field_validator("template")
    @classmethod
    def _valid_template(cls, value: str | None) -> str | None:
        if value is not None:
            SidecarOptions(template=value)  # raises ValueError with the reason
        return value

    @field_validator("languages")
    @classmethod
    def _known_languages(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is not None:
            try:
                packs_for(value)
            except TextdropError as exc:
                raise ValueError(str(exc)) from None
        return value

    @field_validator("outputs")
    @classmethod
    def _some_outputs(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value or len(set(value)) != len(value):
            raise ValueError('give each output format once, and at least one, such as ["md", "pdf"]')
        return value

    @property
    def checked_output(self) -> str:
        """The output whose metadata tells whether a file is done: the first that carries metadata
        (``txt`` carries none)."""
        return next((fmt for fmt in self.outputs if fmt != "txt"), self.outputs[0])


class WatchOptions(BaseModel):
    """The ``[watch]`` table: timings and limits shared by every watched folder."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rescan_minutes: float = Field(
        5, gt=0, description="Rescan every folder this often, catching events that never arrived."
    )
    poll_seconds: float = Field(1.0, gt=0, le=600, description="Interval of polling observers.")
    max_attempts: int = Field(5, ge=1, le=100, description="Attempts per file version before giving up.")
    retry_seconds: float = Field(
        2.0, gt=0, description="Wait before the first retry of a transient failure; doubles each time."
    )
    max_retry_seconds: float = Field(300, gt=0, description="Longest wait between two retries.")
    grace_seconds: float = Field(
        10, ge=0, description="On shutdown, how long the page being read may take before it is abandoned."
    )


@dataclass(frozen=True)
class FileEvent:
    """What happened to one file, for the console and the tray.

    Attributes:
        path: the source file.
        status: ``"done"`` (sidecar written), ``"reused"`` (sidecar written from the result of a file
            with the same content), ``"retry"`` (transient failure; will be retried), ``"failed"``
            (recorded; retried only when the file changes).
        sidecar: the sidecar written, for ``done`` and ``reused``.
        message: the error message, for ``retry`` and ``failed``.
        seconds: OCR wall-clock seconds, for ``done``.
        pages: page count, for ``done`` and ``reused``.
        markdown: the result's Markdown, for ``done`` and ``reused`` (the tray copies it for folders
            with ``clipboard = true``).
        warnings: the result's warnings (text no installed language pack reads), for ``done`` and ``reused``.
        fallbacks: one line per page the embedded engine read because the VLM failed on it
            (:meth:`OcrResult.fallback_notes`), for ``done`` and ``reused``.
    """

    path: Path
    status: str
    sidecar: Path | None = None
    message: str = ""
    seconds: float = 0.0
    pages: int = 0
    markdown: str = ""
    warnings: tuple[str, ...] = ()
    fallbacks: tuple[str, ...] = ()


def is_ignored(path: Path, root: Path) -> bool:
    """True for files the service never reads: dotfiles (and anything in a dot-folder), ``.DS_Store``,
    ``._*`` resource forks, ``Thumbs.db``, ``desktop.ini``, ``@eaDir`` (Synology), partial downloads
    (``.part``, ``.crdownload``, ``.tmp``, …), Office lock files (``~$*``) and textdrop's own temp files.
    Components of ``path`` above ``root`` are not looked at."""
    try:
        parts = path.relative_to(root).parts
    except ValueError:
        parts = (path.name,)
    for folder in parts[:-1]:
        if folder.startswith(".") or folder.lower() in IGNORED_FOLDERS:
            return True
    name = path.name
    lowered = name.lower()
    return (
        name.startswith((".", "~$"))
        or lowered in IGNORED_NAMES
        or lowered.endswith(PARTIAL_SUFFIXES)
        or is_temp_file(name)
    )


def check_folders(folders: Iterable[FolderOptions], *, home: Path | None = None) -> None:
    """Refuse, before anything starts, a set of folders that would loop or process files twice.

    Refused: a folder that does not exist or is not a folder; a filesystem root or the home folder itself
    (far too much to read, and sidecars everywhere); the same folder twice; two nested folders (one would
    see the other's files); an output folder inside a recursively watched folder, or that is another
    watched folder (sidecars would land where the watcher looks).

    Raises:
        ConfigError: the first problem found, with what to change.
    """
    home = Path(os.path.realpath(home or Path.home()))
    folders = list(folders)
    real = {}
    for folder in folders:
        where = file_label(folder.path)
        if not folder.path.is_dir():
            state = "does not exist" if not folder.path.exists() else "is not a folder"
            raise ConfigError(
                f"The watched folder {where} {state}. Create it, or remove it with: "
                f"textdrop folders remove {where}"
            )
        path = Path(os.path.realpath(folder.path))
        if path.parent == path:
            raise ConfigError(f"Refusing to watch {where}: it is the root of a filesystem. Pick a folder.")
        if path == home:
            raise ConfigError(
                f"Refusing to watch your home folder {where} itself: choose the folder your scanner or "
                f"screenshots go to, such as {file_label(home / 'Pictures' / 'Screenshots')}."
            )
        if path in real.values():
            raise ConfigError(f"The folder {where} is listed twice; remove one with: textdrop folders remove")
        real[folder.path] = path
    for outer in folders:
        for inner in folders:
            if outer is not inner and real[outer.path] in real[inner.path].parents:
                raise ConfigError(
                    f"The watched folders {file_label(inner.path)} and {file_label(outer.path)} are nested: "
                    f"files would be seen twice. Watch only {file_label(outer.path)}, with recursive = true."
                )
    for folder in folders:
        if folder.output is None:
            continue
        output = Path(os.path.realpath(folder.output))
        for watched in folders:
            inside = real[watched.path] in output.parents
            if (inside and watched.recursive) or (output == real[watched.path] and watched is not folder):
                raise ConfigError(
                    f"The output folder {file_label(folder.output)} of {file_label(folder.path)} is watched "
                    f"itself (by {file_label(watched.path)}): the watcher would read its own sidecars. "
                    f"Choose an output folder outside the watched folders."
                )


class _Handler(FileSystemEventHandler):
    """Forwards watchdog events to the service (runs in an observer thread)."""

    def __init__(self, service: WatchService, folder: FolderOptions) -> None:
        self.service = service
        self.folder = folder

    def dispatch(self, event: FileSystemEvent) -> None:
        try:
            self.service._on_event(self.folder, event)
        except LedgerError as error:  # the service cannot record anything any more
            self.service._die(error)
        except Exception:  # an observer thread must never die
            log.exception("error handling %r", event)


class WatchService:
    """Watches folders and gives every complete file in them exactly one up-to-date sidecar.

    Lifecycle: :meth:`start` (checks the folders, scans them, starts observers and the dispatch thread)
    → :meth:`wait_idle` or run until told to stop → :meth:`stop`. Also a context manager.

    Args:
        folders: the folders to watch; checked by :func:`check_folders`.
        ledger: the ledger (the service does not close it).
        jobs: a started job queue (the service does not stop it); its default engine serves folders
            without an engine of their own.
        options: timings and limits.
        limits: size, pixel and page limits for every file.
        template: sidecar name template for folders without one of their own.
        observe: start observers (``False`` for ``textdrop watch --once``: scan, process, done).
        on_event: called with a :class:`FileEvent` for every file finished or failed, from the job
            worker thread or the dispatch thread; it must be quick and must not raise.
    """

    def __init__(
        self,
        folders: Iterable[FolderOptions],
        *,
        ledger: Ledger,
        jobs: JobQueue,
        options: WatchOptions | None = None,
        limits: SourceLimits | None = None,
        template: str = DEFAULT_TEMPLATE,
        observe: bool = True,
        on_event: Callable[[FileEvent], None] | None = None,
    ) -> None:
        self.folders = list(folders)
        self.ledger = ledger
        self.jobs = jobs
        self.options = options or WatchOptions()
        self.limits = limits or SourceLimits()
        self.template = template
        self.observe = observe
        self.on_event = on_event or (lambda event: None)
        self._trackers = {folder.path: SettleTracker(folder.settle_seconds) for folder in self.folders}
        self._observers: list[BaseObserver] = []
        self._wake = threading.Event()
        self._idle = threading.Event()
        self._stopping = threading.Event()
        # a server backend runs jobs.concurrency jobs at once: keep it fed (docs/adr/014)
        self._slots = threading.BoundedSemaphore(max(MAX_IN_FLIGHT, 2 * jobs.concurrency))
        self._in_flight: dict[Path, str] = {}  # path → SHA-256 of the version being read
        self._unreadable: dict[Path, int] = {}  # path → failed attempts to open it (dispatch thread only)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._next_rescan = 0.0
        self._output_failures: dict[Path, int] = {}  # path → sidecar writes failed in a row
        self._fatal: TextdropError | None = None
        self._restarts: list[float] = []  # monotonic times of observer restarts
        self.max_in_flight_seen = 0
        """The most jobs that were ever in flight at once (a bound the tests check)."""

    # ----- lifecycle -------------------------------------------------------------------------------

    def start(self) -> WatchService:
        """Check the folders, queue every file lacking an up-to-date sidecar, start watching.

        Raises:
            ConfigError: a folder is missing or the set of folders would loop (:func:`check_folders`), or
                the system refuses to watch a folder (too many watches: the message suggests polling).
        """
        check_folders(self.folders)
        if self.observe:
            self._start_observers()
        self._remove_stale_temp_files()
        self._scan()
        self._next_rescan = time.monotonic() + self.options.rescan_minutes * 60
        self._thread = threading.Thread(target=self._run, name="textdrop-watch", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float | None = None) -> None:
        """Stop intake: observers and the dispatch thread end; jobs already submitted are left to the job
        queue (stop it afterwards; files whose jobs are cancelled stay pending and are done next start).
        Idempotent."""
        self._stopping.set()
        self._wake.set()
        for observer in self._observers:
            observer.stop()
        for observer in self._observers:
            observer.join(timeout)
        self._observers.clear()
        if self._thread is not None:
            self._thread.join(timeout)

    def check(self) -> None:
        """Supervise the service's threads; call it every second or so while the service runs.

        Dead observers (a watched folder removed and re-created, an observer thread that crashed) are
        replaced by new ones and the folders rescanned, at most :data:`OBSERVER_RESTARTS` times in
        :data:`RESTART_WINDOW_SECONDS`. The dispatch thread and the job worker cannot be replaced without
        losing track of the files in flight: when one has died, or the ledger failed, the service stops
        and the cause is raised (it was logged when it happened).

        Raises:
            TextdropError: why the service stopped (:class:`LedgerError`, :class:`ConfigError` for a
                watched folder that is gone, or an error naming the thread that died).
        """
        if self._fatal is None and not self._stopping.is_set():
            if self._thread is not None and not self._thread.is_alive():
                self._die(
                    TextdropError("The watch service's dispatch thread ended unexpectedly; see the log.")
                )
            elif not self.jobs.alive:
                self._die(TextdropError("The OCR worker thread ended unexpectedly; see the log."))
            elif self.observe and any(not _observing(observer) for observer in self._observers):
                self._restart_observers()
        if self._fatal is not None:
            raise self._fatal

    def _restart_observers(self) -> None:
        now = time.monotonic()
        self._restarts = [t for t in self._restarts if now - t < RESTART_WINDOW_SECONDS] + [now]
        if len(self._restarts) > OBSERVER_RESTARTS:
            self._die(
                TextdropError(
                    f"The folder observers died {len(self._restarts)} times within "
                    f"{RESTART_WINDOW_SECONDS / 60:g} minutes; stopping (see the log). Check the watched "
                    "folders, or set polling = true for them."
                )
            )
            return
        log.warning("a folder observer stopped; starting new ones and rescanning the folders")
        for observer in self._observers:
            observer.stop()
        for observer in self._observers:
            observer.join(5)
        self._observers.clear()
        try:
            check_folders(self.folders)
            self._start_observers()
        except ConfigError as error:
            self._die(error)
            return
        self._next_rescan = 0.0  # the dispatch thread rescans: events may have been missed meanwhile
        self._wake.set()

    def _die(self, error: TextdropError) -> None:
        """Stop the service for good because of ``error`` (logged here; raised by :meth:`check`)."""
        if self._fatal is None:
            self._fatal = error
            log.error("the watch service stops: %s", error, exc_info=error if error.__traceback__ else None)
        self._stopping.set()
        self._wake.set()

    def __enter__(self) -> WatchService:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def backlog(self) -> int:
        """Files waiting to settle, scheduled for a retry, or being read."""
        with self._lock:
            in_flight = len(self._in_flight)
        return in_flight + sum(len(tracker) for tracker in self._trackers.values())

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until no file is settling, scheduled for a retry or being read (``--once``).

        Returns:
            True when idle; False when ``timeout`` seconds passed first or the service was stopped.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._stopping.is_set():
            if self._idle.is_set() and self.backlog == 0:  # the dispatch thread holds no popped file
                return True
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(0.05)
        return False

    # ----- events and scans ------------------------------------------------------------------------

    def _start_observers(self) -> None:
        native: BaseObserver | None = None
        for folder in self.folders:
            if folder.polling:
                observer: BaseObserver = PollingObserver(timeout=self.options.poll_seconds)
                self._observers.append(observer)
            else:
                if native is None:
                    native = Observer()
                    self._observers.append(native)
                observer = native
            observer.schedule(_Handler(self, folder), str(folder.path), recursive=folder.recursive)
        try:
            for observer in self._observers:
                observer.start()
        except OSError as error:
            self.stop()
            raise ConfigError(
                f"Cannot watch the folders: {error.strerror or error}. On Linux, raise the inotify limit "
                f"(fs.inotify.max_user_watches) or set polling = true for large folder trees."
            ) from error

    def _on_event(self, folder: FolderOptions, event: FileSystemEvent) -> None:
        if event.event_type in ("opened", "closed_no_write"):
            return
        tracker = self._trackers[folder.path]
        source = Path(os.fsdecode(event.src_path))
        target = Path(os.fsdecode(event.dest_path)) if event.event_type == "moved" else source
        arrived = event.event_type != "deleted" and self._inside(folder, target)
        if event.event_type in ("deleted", "moved"):
            tracker.discard(source)
            if not event.is_directory and not os.path.lexists(source):
                if arrived and event.event_type == "moved" and self._wanted(folder, target):
                    self.ledger.move(str(source), str(target))  # renamed: its result serves the new name
                else:
                    self.ledger.forget(str(source))
        if not arrived:
            return
        if event.is_directory:
            if event.event_type in ("created", "moved") and folder.recursive:
                for path in self._files(folder, target):  # a folder moved in brings files without events
                    tracker.touch(path)
                self._wake.set()
            return
        if self._wanted(folder, target):
            tracker.touch(target)
            self._wake.set()

    def _inside(self, folder: FolderOptions, path: Path) -> bool:
        if folder.recursive:
            return folder.path in path.parents
        return path.parent == folder.path

    def _wanted(self, folder: FolderOptions, path: Path) -> bool:
        if path.suffix.lower() not in SUPPORTED_SUFFIXES or is_ignored(path, folder.path):
            return False
        name = path.name.lower()
        return any(fnmatch.fnmatchcase(name, pattern.lower()) for pattern in folder.patterns)

    def _files(self, folder: FolderOptions, top: Path) -> Iterator[Path]:
        """Wanted regular files under ``top`` (only ``top`` itself unless recursive); dot-folders and
        symlinked folders are not entered."""
        for dirpath, dirnames, filenames in os.walk(top):
            here = Path(dirpath)
            dirnames[:] = sorted(
                name
                for name in dirnames
                if folder.recursive and not is_ignored(here / name / "x", folder.path)
            )
            for name in sorted(filenames):
                path = here / name
                if self._wanted(folder, path) and path.is_file():
                    yield path

    def _scan(self) -> None:
        """Queue every wanted file that lacks an up-to-date sidecar."""
        started = time.monotonic()
        queued = 0
        for folder in self.folders:
            tracker = self._trackers[folder.path]
            for path in self._files(folder, folder.path):
                if path in tracker or self._finished(path):
                    continue
                tracker.touch(path, quiet_since=self._quiet_since(path))
                queued += 1
        log.info("scan: %d file(s) to read (%.2f s)", queued, time.monotonic() - started)
        self._wake.set()

    def _remove_stale_temp_files(self) -> None:
        """Remove temp files of sidecar writes cut off by a crash (once, at start: a rescan need not walk
        the folders twice)."""
        for folder in self.folders:
            for top in self._temp_folders(folder):
                remove_stale_temp_files(top)

    def _temp_folders(self, folder: FolderOptions) -> list[Path]:
        folders = [folder.path]
        if folder.recursive:
            folders = [Path(dirpath) for dirpath, _, _ in os.walk(folder.path)]
        if folder.output is not None:
            folders.append(folder.output)
        return folders

    def _finished(self, path: Path) -> bool:
        """True when the ledger's row for this path matches its size and mtime and needs nothing more
        (done with its sidecar still there, or failed for good): no need to read the file again."""
        entry = self.ledger.latest(str(path))
        if entry is None:
            return False
        try:
            stat = path.stat()
        except OSError:
            return False
        if (entry.size, entry.mtime_ns) != (stat.st_size, stat.st_mtime_ns):
            return False
        if entry.status == Status.FAILED:
            return True
        return entry.status == Status.DONE and entry.sidecar is not None and os.path.isfile(entry.sidecar)

    @staticmethod
    def _quiet_since(path: Path) -> float | None:
        """The monotonic time of the file's last change (mtime, or ctime for a file renamed into place),
        so a file that has been quiet for longer than the settle time is read without waiting."""
        try:
            stat = path.stat()
        except OSError:
            return None
        age = time.time() - max(stat.st_mtime, stat.st_ctime)
        return time.monotonic() - max(age, 0.0)

    # ----- dispatch ---------------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._loop()
        except LedgerError as error:
            self._die(error)
        except BaseException as error:  # never a live-looking service with a dead thread
            self._die(TextdropError(f"The watch service failed: {error!r}; see the log."))
            log.exception("the dispatch thread failed")

    def _loop(self) -> None:
        while not self._stopping.is_set():
            self._idle.clear()
            try:
                self._dispatch_ready()
                now = time.monotonic()
                if self.observe and now >= self._next_rescan:
                    self._next_rescan = now + self.options.rescan_minutes * 60
                    self._scan()
                    continue
            except LedgerError:
                raise
            except Exception:  # the service never dies of one file
                log.exception("unexpected error in the watch service; continuing")
                now = time.monotonic()
            if self.backlog == 0:
                self._idle.set()
            waits = [wait for tracker in self._trackers.values() if (wait := tracker.next_due()) is not None]
            if self.observe:
                waits.append(max(self._next_rescan - now, 0.0))
            self._wake.wait(min(min(waits, default=1.0), 60.0))
            self._wake.clear()

    def _dispatch_ready(self) -> None:
        for folder in self.folders:
            for path in self._trackers[folder.path].pop_ready():
                if self._stopping.is_set():
                    return
                self._dispatch(folder, path)

    def _dispatch(self, folder: FolderOptions, path: Path) -> None:
        """Hash one settled file and decide: skip, recover, reuse a result, or submit a job."""
        tracker = self._trackers[folder.path]
        label = file_label(path)
        with self._lock:
            if path in self._in_flight:  # changed while being read: look again once that job is done
                tracker.touch(path)
                return
        try:
            before = path.stat()
            digest = sha256_file(path)
            after = path.stat()
        except FileNotFoundError:
            log.debug("%s vanished before it was read", label)
            return
        except TextdropError as error:  # a FIFO or device with an image's name: refused, never read
            log.warning("%s (skipped)", _about(path, str(error)))
            self.on_event(FileEvent(path, "failed", message=str(error)))
            return
        except OSError as error:
            self._transient(folder, path, None, f"cannot read the file: {error.strerror or error}", error)
            return
        self._unreadable.pop(path, None)
        if path.suffix.lower() == ".pdf" and read_metadata(path) is not None:
            log.debug("%s is a searchable PDF textdrop wrote; not read again", label)
            return
        if (before.st_size, before.st_mtime_ns) != (after.st_size, after.st_mtime_ns):
            log.debug("%s changed while being hashed; waiting for it to settle", label)
            tracker.touch(path)
            return
        key = str(path)
        entry = self.ledger.record_pending(key, digest, after.st_size, after.st_mtime_ns)
        if entry.status == Status.FAILED:
            log.debug("%s failed before (%s); skipped until it changes", label, entry.last_error)
            return
        template = folder.template or self.template
        current = find_up_to_date(
            path, digest, folder.checked_output, out_dir=folder.output, template=template
        )
        if current is not None:  # written before a crash, or by `textdrop ocr`
            metadata = read_metadata(current) or {}
            seconds = metadata.get("seconds")
            self.ledger.mark_done(
                key,
                digest,
                sidecar=str(current),
                engine=str(metadata.get("engine")),
                model=metadata.get("model"),
                seconds=float(seconds) if isinstance(seconds, int | float) else 0.0,
            )
            log.debug("%s: sidecar %s is up to date", label, file_label(current))
            return
        with self._lock:
            twin = digest in self._in_flight.values()
        if twin:  # the same content is being read under another name: reuse that result when it is done
            tracker.touch(path)
            return
        if entry.retry_at is not None and entry.retry_at > time.time():
            tracker.touch(path, quiet_since=self._retry_quiet_since(folder, entry.retry_at - time.time()))
            return
        if self._reuse(folder, path, digest):  # before counting attempts: reuse reads nothing
            return
        if entry.attempts >= self.options.max_attempts:
            reason = entry.last_error or "textdrop stopped while reading it"
            self._failed(path, digest, f"gave up after {entry.attempts} attempts: {reason}")
            return
        while not self._slots.acquire(timeout=0.5):
            if self._stopping.is_set():
                tracker.touch(path)
                return
        with self._lock:  # before submitting: a fast job may finish before submit() returns
            self._in_flight[path] = digest
            self.max_in_flight_seen = max(self.max_in_flight_seen, len(self._in_flight))
        try:
            job = self.jobs.submit(
                path,
                priority=Priority.BACKGROUND,
                engine=folder.engine,
                options=self._options(folder),
                limits=self.limits,
                on_start=lambda job: self.ledger.start(key, digest),
            )
        except BaseException:
            with self._lock:
                self._in_flight.pop(path, None)
            self._slots.release()
            raise
        job.add_done_callback(lambda job: self._finish(folder, path, digest, after, job))

    def _reuse(self, folder: FolderOptions, path: Path, digest: str) -> bool:
        """Write the sidecar from the stored result of the same content under another name: the same
        bytes are not recognised twice by one engine."""
        engine, model = result_identity(self.jobs.engine_name(folder.engine))
        stored = self.ledger.load_result(digest, engine, model)
        if stored is None:
            return False
        try:
            result = OcrResult.from_dict(json.loads(stored))
        except (ValueError, KeyError, TypeError) as error:
            log.warning(
                "the stored result for %s is unusable (%s); reading it again", file_label(path), error
            )
            return False
        try:
            target = self._write_outputs(folder, path, result)
        except OutputError as error:
            self._output_failed(folder, path, digest, error)
            return True
        retried = self._output_failures.pop(path, None) is not None  # its own result, after a failed write
        self.ledger.mark_done(
            str(path), digest, sidecar=str(target), engine=result.engine, model=result.model, seconds=0.0
        )
        how = "written on a retry" if retried else "same content as a file read before"
        log.info("%s → %s (%s)", file_label(path), file_label(target), how)
        self.on_event(
            FileEvent(
                path,
                "done" if retried else "reused",
                sidecar=target,
                seconds=result.seconds if retried else 0.0,
                pages=len(result.pages),
                markdown=result.markdown,
                warnings=tuple(result.warnings),
                fallbacks=tuple(result.fallback_notes()),
            )
        )
        return True

    # ----- results (job worker thread) --------------------------------------------------------------

    def _finish(self, folder: FolderOptions, path: Path, digest: str, stat: os.stat_result, job: Job) -> None:
        try:
            self._record(folder, path, digest, stat, job)
        except LedgerError as error:
            self._die(error)
        except Exception:
            log.exception("unexpected error recording the result of %s", file_label(path))
        finally:
            with self._lock:
                self._in_flight.pop(path, None)
            self._slots.release()
            self._wake.set()

    def _record(self, folder: FolderOptions, path: Path, digest: str, stat: os.stat_result, job: Job) -> None:
        key = str(path)
        try:
            result = job.result()
        except CancelledError:
            log.debug("%s: cancelled; it stays pending", file_label(path))
            return
        except Exception as error:
            if not path.exists():
                log.debug("%s vanished while being read", file_label(path))
                self.ledger.forget(key)
                return
            if self._changed(path, stat):
                self._trackers[folder.path].touch(path)  # still being written: settle again
                return
            if isinstance(error, OutputError | EngineUnavailableError) or _is_transient(error):
                self._transient(folder, path, digest, str(error), error)
            else:
                message = str(error) if isinstance(error, TextdropError) else f"unexpected error: {error!r}"
                if not isinstance(error, TextdropError):
                    log.error("%s: %s", file_label(path), message, exc_info=error)
                self._failed(path, digest, message)
            return
        if result.sha256 != digest:  # replaced between hashing and reading: read the new version
            self._trackers[folder.path].touch(path)
            return
        # Stored first: a sidecar write that fails (disk full) is retried from it, without OCR.
        self.ledger.store_result(digest, result.engine, result.model, json.dumps(result.to_dict()).encode())
        try:
            unchanged = file_version(path) == _version(stat)
        except FileNotFoundError:
            log.info("%s was deleted while being read; no sidecar", file_label(path))
            self.ledger.forget(key)
            return
        except OSError:
            unchanged = False
        if not unchanged:  # replaced or written to after it was read: the result describes nothing
            log.info("%s changed while being read; reading it again once it settles", file_label(path))
            self._trackers[folder.path].touch(path)
            return
        try:
            target = self._write_outputs(folder, path, result)
        except OutputError as error:
            self._output_failed(folder, path, digest, error)
            return
        self._output_failures.pop(path, None)
        self.ledger.mark_done(
            key, digest, sidecar=str(target), engine=result.engine, model=result.model, seconds=result.seconds
        )
        pages = len(result.pages)
        log.info("%s → %s (%d page(s), %.2f s)", file_label(path), file_label(target), pages, result.seconds)
        for line in result.fallback_notes():
            log.warning("%s: %s", file_label(path), line)
        self.on_event(
            FileEvent(
                path,
                "done",
                sidecar=target,
                seconds=result.seconds,
                pages=pages,
                markdown=result.markdown,
                warnings=tuple(result.warnings),
                fallbacks=tuple(result.fallback_notes()),
            )
        )

    def _options(self, folder: FolderOptions) -> RecognizeOptions | None:
        """The queue's recognition options with the folder's languages, or None (the queue's own)."""
        if folder.languages is None:
            return None
        return self.jobs.options.model_copy(update={"languages": folder.languages})

    def _write_outputs(self, folder: FolderOptions, path: Path, result: OcrResult) -> Path:
        """Write every output of ``folder`` for ``path``; returns the one :attr:`FolderOptions.checked_output`
        names. Raises OutputError."""
        template = folder.template or self.template
        targets = {
            fmt: write_sidecar(result, path, fmt, out_dir=folder.output, template=template)
            for fmt in folder.outputs
        }
        return targets[folder.checked_output]

    def _changed(self, path: Path, stat: os.stat_result) -> bool:
        try:
            now = path.stat()
        except OSError:
            return False
        return (now.st_size, now.st_mtime_ns) != (stat.st_size, stat.st_mtime_ns)

    def _transient(
        self, folder: FolderOptions, path: Path, digest: str | None, message: str, error: BaseException
    ) -> None:
        """Schedule a retry with exponential backoff and jitter, or give up after ``max_attempts``.

        Attempts are counted in the ledger once the file could be hashed (``digest``), and in memory
        before that (a file that cannot even be opened has no ledger row yet)."""
        if digest is None:
            attempts = self._unreadable[path] = self._unreadable.get(path, 0) + 1
            if attempts >= self.options.max_attempts:
                del self._unreadable[path]
                log.warning(
                    "%s; gave up after %d attempts (retried when it changes)", _about(path, message), attempts
                )
                self.on_event(
                    FileEvent(path, "failed", message=f"gave up after {attempts} attempts: {message}")
                )
                return
        else:
            entry = self.ledger.get(str(path), digest)
            attempts = entry.attempts if entry else 0
            if attempts >= self.options.max_attempts:
                self._failed(path, digest, f"gave up after {attempts} attempts: {message}")
                return
        delay = min(self.options.retry_seconds * 2 ** max(attempts - 1, 0), self.options.max_retry_seconds)
        delay *= random.uniform(0.5, 1.5)
        if digest is not None:
            self.ledger.mark_failed(str(path), digest, message, permanent=False, retry_at=time.time() + delay)
        log.warning("%s; retrying in %.0f s", _about(path, message), delay)
        log.debug("transient error", exc_info=error)
        self._trackers[folder.path].touch(path, quiet_since=self._retry_quiet_since(folder, delay))
        self.on_event(FileEvent(path, "retry", message=message))

    def _output_failed(self, folder: FolderOptions, path: Path, digest: str, error: OutputError) -> None:
        """A sidecar could not be written (disk full, read-only or forbidden output folder): retry.

        The result is stored, so a retry only writes. The file never fails for good over its output,
        which is not its fault: retries back off exponentially with jitter up to ``max_retry_seconds``
        and go on until the write succeeds, each visible in ``textdrop status`` as a failure that will be
        retried. Without observers (``watch --once``) the run gives up after ``max_attempts`` writes:
        the file is reported failed (a non-zero exit) but stays pending, so the next run tries again.
        """
        failures = self._output_failures[path] = self._output_failures.get(path, 0) + 1
        message = str(error)
        if not self.observe and failures >= self.options.max_attempts:
            del self._output_failures[path]
            self.ledger.mark_failed(str(path), digest, message, permanent=False)
            log.warning("%s; gave up for this run after %d attempts", _about(path, message), failures)
            self.on_event(FileEvent(path, "failed", message=f"{message} (retried on the next run)"))
            return
        delay = min(self.options.retry_seconds * 2 ** (failures - 1), self.options.max_retry_seconds)
        delay *= random.uniform(0.5, 1.5)
        self.ledger.mark_failed(str(path), digest, message, permanent=False, retry_at=time.time() + delay)
        log.warning("%s; retrying in %.0f s", _about(path, message), delay)
        log.debug("sidecar write failed", exc_info=error)
        self._trackers[folder.path].touch(path, quiet_since=self._retry_quiet_since(folder, delay))
        self.on_event(FileEvent(path, "retry", message=message))

    @staticmethod
    def _retry_quiet_since(folder: FolderOptions, delay: float) -> float:
        return time.monotonic() + delay - folder.settle_seconds

    def _failed(self, path: Path, digest: str, message: str) -> None:
        self.ledger.mark_failed(str(path), digest, message, permanent=True)
        log.warning("%s (not retried until the file changes)", _about(path, message))
        self.on_event(FileEvent(path, "failed", message=message))


def _version(info: os.stat_result) -> tuple[int, int, int, int]:
    """:func:`file_version` from a stat result taken earlier."""
    return info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns


def _observing(observer: BaseObserver) -> bool:
    """True while an observer thread and every one of its emitter threads (one per folder) run."""
    return observer.is_alive() and all(emitter.is_alive() for emitter in observer.emitters)


def _about(path: Path, message: str) -> str:
    """``message``, prefixed with the file's name unless it names the file already."""
    label = file_label(path)
    return message if label in message else f"{label}: {message}"


def _is_transient(error: BaseException) -> bool:
    """True for errors that may go away by themselves: a locked or busy file, a full disk."""
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, OSError) and cause.errno in TRANSIENT_ERRNOS:
            return True
        cause = cause.__cause__
    return False


__all__ = [
    "Entry",
    "FileEvent",
    "FolderOptions",
    "WatchOptions",
    "WatchService",
    "check_folders",
    "is_ignored",
]
