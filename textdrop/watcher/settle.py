"""When is a file complete: the settle rule of the folder service.

A file is complete when no event has arrived for it for the settle time (per folder, default
:data:`DEFAULT_SETTLE_SECONDS`), its size and modification time are what they were when the wait began,
and it opens and decodes to its end (:func:`decodes`: an image's last byte read, a PDF's pages
countable). Any change restarts the wait; a file that vanishes is dropped.

The idea follows the stability tracking of paperless-ngx's consumer (per path, the time of the last
event plus a stat snapshot, re-checked before a file is taken). It covers the cases a watched folder
sees in practice:

* a scanner that appends pages to the same PDF: each append changes the size, so the wait restarts,
  and a PDF caught between two writes lacks its ``%%EOF`` and fails the decode check;
* a slow copy over SMB, which may announce the file before its bytes arrive and stall for seconds:
  the stat snapshot and the decode check keep the file waiting until the last byte is there;
* a file that arrives by rename (macOS screenshots are written as a hidden file, then renamed): the
  service touches the final name on the move event; the tracker only knows the paths it is told about.

:class:`SettleTracker` holds no framework and no thread of its own: watchdog observer threads call
:meth:`~SettleTracker.touch` and :meth:`~SettleTracker.discard`, the service thread calls
:meth:`~SettleTracker.pop_ready` and sleeps for :meth:`~SettleTracker.next_due`. The clock is
injectable, so the tests run with a fake one.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
import os
import stat as stat_module
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

from PIL import Image

from textdrop.engine.documents.sources import (
    SUPPORTED_SUFFIXES,
    _pillow_lock,
    _register_heif,
    file_label,
    open_regular,
)

log = logging.getLogger(__name__)

DEFAULT_SETTLE_SECONDS = 2.0
"""Seconds without an event (and without a size or mtime change) before a file counts as complete."""

MAX_FAILED_CHECKS = 3
"""Consecutive failed decode checks, size and mtime unchanged, after which a file is released anyway."""

_HEAD_BYTES = 1024  # the PDF header may follow up to 1 KiB of junk (sources.py looks as far)
_PDF_TAIL_BYTES = 1024
_PDF_TRAILING = b"\x00\t\n\x0c\r "  # PDF white space, which may follow the final %%EOF
_PDF_SUFFIX = ".pdf"
_IMAGE_SUFFIXES = SUPPORTED_SUFFIXES - {_PDF_SUFFIX}
_HEIF_SUFFIXES = frozenset({".heic", ".heif"})
_HEIF_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1"})
_PILLOW_FORMATS = ("PNG", "JPEG", "TIFF", "WEBP", "BMP", "GIF")  # MPO opens as JPEG; never EPS and the like
_BMP_HEADER_SIZES = frozenset({12, 40, 52, 56, 64, 108, 124})
_PNG_IEND = b"\x00\x00\x00\x00IEND\xaeB`\x82"  # Pillow decodes a PNG whose last 20 bytes are missing
_PNG_TAIL_BYTES = 1024


def decodes(path: Path) -> bool:
    """Whether ``path`` opens and decodes to its end, so it was not caught half-written.

    Which check applies goes by suffix and content:

    * a PDF (suffix ``.pdf``, or ``%PDF-`` in its first 1024 bytes) must end with ``%%EOF`` (only PDF
      white space after it; so a PDF that a scanner is extending by an incremental update fails even
      though the earlier ``%%EOF`` is still within its last 1024 bytes) and open in pypdfium2 with at
      least one page. A password-protected PDF that ends so counts as complete (the job reports the
      password).
    * an image (a suffix in :data:`~textdrop.engine.documents.sources.SUPPORTED_SUFFIXES`, or PNG, JPEG, GIF,
      TIFF, WebP, BMP or HEIF magic) must open in Pillow and load fully, and a PNG must have its
      ``IEND`` chunk in its last 1024 bytes (Pillow decodes a PNG that lacks its last 20 bytes). For a
      multi-frame image (TIFF pages, animation frames) the last frame is loaded; earlier frames come
      before it in the file. A JPEG is decoded at 1/8 scale (``Image.draft``), which still reads every
      byte. Pillow's ``LOAD_TRUNCATED_IMAGES`` is left as it is (``False``), so a truncated image
      fails. An image larger than Pillow's decompression-bomb limit is not decoded and counts as
      complete: the job's own pixel limit then decides.
    * any other file is not textdrop's to judge and counts as complete (the job decides).

    PDFium is not thread-safe, so the PDF check holds the lock :mod:`textdrop.engine.documents.sources` holds
    around its own PDFium calls; it may wait for a page the job worker is rendering.

    Args:
        path: the file to check.

    Returns:
        ``True`` when the file decodes (or is not an image or PDF); ``False`` when it is missing,
        unreadable, truncated or corrupt. Never raises: any other ``Exception`` from the decoders means
        ``False`` too.
    """
    path = Path(path)
    try:
        with open_regular(path, f"'{file_label(path)}'") as fp:  # never blocks on a FIFO swapped in
            head = fp.read(_HEAD_BYTES)
            suffix = path.suffix.lower()
            if b"%PDF-" in head or suffix == _PDF_SUFFIX:
                return _pdf_complete(fp, path)
            if suffix in _IMAGE_SUFFIXES or _image_magic(head):
                return _image_complete(fp, heif=suffix in _HEIF_SUFFIXES or _heif_magic(head))
            return True
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        log.debug("%s is too large to check by decoding; taking it as complete: %s", file_label(path), exc)
        return True
    except Exception as exc:
        log.debug("%s does not decode (yet): %s: %s", file_label(path), type(exc).__name__, exc)
        return False


def _image_magic(head: bytes) -> bool:
    return (
        head.startswith((b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a", b"II*\x00", b"MM\x00*"))
        or (head[:4] == b"RIFF" and head[8:12] == b"WEBP")
        or (
            head[:2] == b"BM"
            and len(head) >= 18
            and int.from_bytes(head[14:18], "little") in _BMP_HEADER_SIZES
        )
        or _heif_magic(head)
    )


def _heif_magic(head: bytes) -> bool:
    return head[4:8] == b"ftyp" and head[8:12] in _HEIF_BRANDS


def _image_complete(fp: IO[bytes], *, heif: bool) -> bool:
    formats: tuple[str, ...] = _PILLOW_FORMATS
    if heif:
        _register_heif()
        formats += ("HEIF",)
    fp.seek(0)
    with Image.open(fp, formats=formats) as image:
        frames = getattr(image, "n_frames", 1)
        if frames > 1:
            image.seek(frames - 1)
        if image.format in ("JPEG", "MPO"):
            width, height = image.size
            image.draft("RGB", (max(1, width // 8), max(1, height // 8)))
        image.load()
        if image.format == "PNG":
            return _PNG_IEND in _tail(fp, _PNG_TAIL_BYTES)
    return True


def _tail(fp: IO[bytes], count: int) -> bytes:
    """The last ``count`` bytes of ``fp`` (fewer in a shorter file)."""
    fp.seek(max(0, os.fstat(fp.fileno()).st_size - count))
    return fp.read(count)


def _pdf_complete(fp: IO[bytes], path: Path) -> bool:
    # The raw API, as pypdfium2's PdfDocument refuses a PDF without pages with the error code of an
    # earlier load (PDFium does not reset it on success), which would pass for "password needed".
    import pypdfium2.raw as pdfium_c

    if not _tail(fp, _PDF_TAIL_BYTES).rstrip(_PDF_TRAILING).endswith(b"%%EOF"):
        return False  # still being written, or an incremental update (a scanner adding a page) half-way
    with _pillow_lock:
        raw = pdfium_c.FPDF_LoadDocument(os.fsencode(path) + b"\x00", None)
        if not raw:  # a failed load does set the error code
            return pdfium_c.FPDF_GetLastError() in (pdfium_c.FPDF_ERR_PASSWORD, pdfium_c.FPDF_ERR_SECURITY)
        try:
            return pdfium_c.FPDF_GetPageCount(raw) >= 1
        finally:
            pdfium_c.FPDF_CloseDocument(raw)


@dataclasses.dataclass(frozen=True, slots=True)
class _Entry:
    """One tracked path; replaced, never changed, so a stale copy is told apart by identity."""

    quiet_since: float  # clock() value the wait runs from
    stat: tuple[int, int] | None  # (size in bytes, mtime in ns); None when it could not be read
    failures: int = 0  # consecutive failed decode checks with this stat


class _Verdict(enum.Enum):
    VANISHED = enum.auto()  # gone, or no longer a regular file: drop it
    BUSY = enum.auto()  # stat failed (EACCES, EBUSY on a share): wait again
    CHANGED = enum.auto()  # size or mtime moved: wait again from now
    PASSED = enum.auto()  # unchanged and decodes: ready
    FAILED = enum.auto()  # unchanged and does not decode: wait again, counting the failure


class SettleTracker:
    """Tracks files until they are complete; thread-safe, with no thread of its own.

    Times are values of ``clock`` in seconds. Keys are the :class:`~pathlib.Path` objects given to
    :meth:`touch` (the service passes absolute paths); equal paths spelled differently are different
    keys.

    Args:
        settle_seconds: seconds without an event or a size/mtime change before a file is complete.
        clock: a monotonic clock in seconds; injectable for tests.
        check: the decode check run on a file whose stat has settled (default :func:`decodes`); ``None``
            disables it. It runs in the thread that calls :meth:`pop_ready`, without the tracker's lock
            held; an exception it raises counts as a failed check.

    Raises:
        ValueError: ``settle_seconds`` is negative (or NaN).
    """

    def __init__(
        self,
        settle_seconds: float = DEFAULT_SETTLE_SECONDS,
        *,
        clock: Callable[[], float] = time.monotonic,
        check: Callable[[Path], bool] | None = decodes,
    ) -> None:
        if not settle_seconds >= 0:
            raise ValueError(f"settle_seconds must be >= 0, not {settle_seconds!r}")
        self.settle_seconds = float(settle_seconds)
        self._clock = clock
        self._check = check
        self._lock = threading.Lock()
        self._entries: dict[Path, _Entry] = {}

    def touch(self, path: Path, *, quiet_since: float | None = None) -> None:
        """Record an event for ``path`` (created, modified, moved in) or its discovery by a scan.

        The wait restarts: the new ``quiet_since`` replaces any earlier one, the stat snapshot is taken
        anew and the failed-check count goes back to 0. A path that does not exist (or is not a regular
        file) is ignored, and forgotten if it was tracked.

        Args:
            path: the file.
            quiet_since: the ``clock()`` value the wait runs from; ``clock()`` now when ``None``. It may
                lie in the past (a file found by the startup scan, its mtime mapped onto the clock, is
                ready at once) or in the future (a retry scheduled for ``quiet_since + settle_seconds``).
        """
        when = self._clock() if quiet_since is None else quiet_since
        try:
            snapshot: tuple[int, int] | None = _stat(path)
        except (FileNotFoundError, NotADirectoryError):
            with self._lock:
                known = self._entries.pop(path, None) is not None
            log.debug(
                "ignored %s: not a file (any more)%s",
                file_label(path),
                "; stopped tracking it" if known else "",
            )
            return
        except OSError as exc:  # EACCES, EBUSY: track it; pop_ready reads the stat again
            log.debug("cannot stat %s yet (%s); tracking it anyway", file_label(path), exc)
            snapshot = None
        with self._lock:
            self._entries[path] = _Entry(when, snapshot)

    def discard(self, path: Path) -> None:
        """Stop tracking ``path`` (deleted or moved away); nothing happens for a path not tracked."""
        with self._lock:
            self._entries.pop(path, None)

    def pop_ready(self) -> list[Path]:
        """Take the files that are complete now; each is returned once and is then no longer tracked.

        Each path whose wait is over (``clock() - quiet_since >= settle_seconds``) is stat'ed:

        * gone, or not a regular file: dropped (not returned);
        * size or mtime changed since its snapshot: a new snapshot and the wait restarts;
        * stat failed otherwise (EACCES, EBUSY): the wait restarts, to retry;
        * unchanged: the check runs. Passed (and the stat still unchanged after it): returned. Failed:
          the wait restarts and the failure is counted; at :data:`MAX_FAILED_CHECKS` consecutive
          failures the path is returned anyway, for the job to record the decode error.

        The stat and the check run without the lock held; a path touched or discarded meanwhile is
        left as that touch or discard made it.

        Returns:
            The complete paths, oldest ``quiet_since`` first, ties in path order.
        """
        with self._lock:
            now = self._clock()
            due = [(path, entry) for path, entry in self._entries.items() if self._remaining(entry, now) <= 0]
        due.sort(key=lambda item: (item[1].quiet_since, item[0]))
        verdicts = [(path, entry, *self._inspect(path, entry)) for path, entry in due]
        ready: list[Path] = []
        with self._lock:
            now = self._clock()
            for path, entry, verdict, snapshot in verdicts:
                if self._entries.get(path) is not entry:
                    continue  # touched (the wait restarted) or discarded while it was being checked
                if verdict is _Verdict.VANISHED:
                    del self._entries[path]
                    log.debug("dropped %s: it vanished while settling", file_label(path))
                elif verdict is _Verdict.PASSED:
                    del self._entries[path]
                    ready.append(path)
                elif verdict is _Verdict.FAILED:
                    failures = entry.failures + 1
                    if failures >= MAX_FAILED_CHECKS:
                        del self._entries[path]
                        ready.append(path)
                        log.info(
                            "%s still does not decode after %d checks with its size and time unchanged; "
                            "passing it on as it is",
                            file_label(path),
                            failures,
                        )
                    else:
                        self._entries[path] = _Entry(now, entry.stat, failures)
                elif verdict is _Verdict.CHANGED:
                    self._entries[path] = _Entry(now, snapshot)
                else:  # BUSY
                    self._entries[path] = _Entry(now, entry.stat, entry.failures)
        return ready

    def next_due(self) -> float | None:
        """Seconds until the earliest tracked path may be ready, for the service to sleep on.

        Returns:
            Seconds (>= 0.0); 0.0 when a path is due now; ``None`` when nothing is tracked. A path that
            is due may still not be ready: :meth:`pop_ready` may find it changed or not decoding.
        """
        with self._lock:
            if not self._entries:
                return None
            now = self._clock()
            return max(0.0, min(self._remaining(entry, now) for entry in self._entries.values()))

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def __contains__(self, path: object) -> bool:
        with self._lock:
            try:
                return path in self._entries
            except TypeError:  # unhashable: never a key
                return False

    def _remaining(self, entry: _Entry, now: float) -> float:
        """Seconds left in ``entry``'s wait at ``now`` (<= 0 when over); one formula for pop and next_due."""
        return self.settle_seconds - (now - entry.quiet_since)

    def _inspect(self, path: Path, entry: _Entry) -> tuple[_Verdict, tuple[int, int] | None]:
        """Stat ``path`` and, if unchanged, run the check; called without the lock."""
        verdict, snapshot = _restat(path, entry.stat)
        if verdict is not _Verdict.PASSED or self._check is None:
            return verdict, snapshot
        try:
            passed = bool(self._check(path))
        except Exception:
            log.warning("the completeness check of %s failed", file_label(path), exc_info=True)
            passed = False
        verdict, snapshot = _restat(path, entry.stat)  # it may have changed while being checked
        if verdict is _Verdict.PASSED and not passed:
            verdict = _Verdict.FAILED
        return verdict, snapshot


def _stat(path: Path) -> tuple[int, int]:
    """``(size in bytes, mtime in ns)`` of a regular file.

    Raises:
        FileNotFoundError: ``path`` does not exist or is not a regular file.
        OSError: it cannot be stat'ed (EACCES, EBUSY, ...).
    """
    result = os.stat(path)
    if not stat_module.S_ISREG(result.st_mode):
        raise FileNotFoundError(f"not a regular file: {file_label(path)}")
    return result.st_size, result.st_mtime_ns


def _restat(path: Path, before: tuple[int, int] | None) -> tuple[_Verdict, tuple[int, int] | None]:
    """Compare ``path``'s stat with ``before``: PASSED here means only "unchanged"."""
    try:
        snapshot = _stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return _Verdict.VANISHED, None
    except OSError as exc:
        log.debug("cannot stat %s (%s); will retry", file_label(path), exc)
        return _Verdict.BUSY, None
    if snapshot != before:
        return _Verdict.CHANGED, snapshot
    return _Verdict.PASSED, snapshot
