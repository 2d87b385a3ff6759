"""Load images and PDFs into page images, within size, pixel and page limits.

:func:`open_source` takes a path, bytes or a PIL image and returns a :class:`Document` whose
:meth:`Document.pages` yields each page as an upright RGB image, decoding one page at a time, so a long
PDF is never all in memory. The format is decided by content, never by the file name. Every problem a
user can cause becomes a :mod:`textdrop.engine.errors` error whose one-line message names the input and
says what to do. The source file is only ever opened read-only.
"""

from __future__ import annotations

import hashlib
import io
import logging
import math
import os
import re
import stat
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import cache
from types import TracebackType
from typing import IO, TYPE_CHECKING

from PIL import Image, ImageOps, UnidentifiedImageError
from pydantic import BaseModel, ConfigDict, Field

from textdrop.engine.errors import (
    EncryptedPdfError,
    FileAccessError,
    InputFileError,
    LimitExceededError,
    TextdropError,
    UsageError,
)

if TYPE_CHECKING:
    from textdrop.engine.documents.textlayer import TextLayer

log = logging.getLogger(__name__)

SUPPORTED_SUFFIXES: frozenset[str] = frozenset(
    {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp", ".gif", ".heic", ".heif", ".pdf"}
)
"""Suffixes of the files textdrop reads (for file dialogs and folder filters); opening goes by content."""

_FORMATS_TEXT = "PNG, JPEG, TIFF, WebP, BMP, GIF, HEIC/HEIF, PDF"
_PILLOW_FORMATS = ("PNG", "JPEG", "TIFF", "WEBP", "BMP", "GIF")  # never EPS and the like: no Ghostscript
_MIB = 1024 * 1024
_pillow_lock = threading.RLock()


class SourceLimits(BaseModel):
    """Limits on what :func:`open_source` accepts, guarding memory against huge or hostile inputs."""

    model_config = ConfigDict(extra="forbid")

    max_file_mb: float = Field(200, gt=0, description="Largest input file accepted, in MiB.")
    max_page_pixels: int = Field(
        100_000_000,
        gt=0,
        description="Largest page accepted, width × height in pixels (guards against decompression bombs).",
    )
    max_pages: int = Field(500, gt=0, description="Most pages (PDF pages, TIFF frames) per document.")
    pdf_dpi: int = Field(200, ge=36, le=1200, description="Resolution PDF pages are rendered at, in dpi.")


class Document:
    """An opened source whose pages are decoded on demand; a context manager.

    Attributes:
        name: the file name without its folder, or ``None`` for bytes and PIL input.
        sha256: hex SHA-256 of the source bytes, or ``None`` for PIL input.
        page_count: number of pages :meth:`pages` yields (TIFF frames, PDF pages; 1 for other images).
        is_pdf: whether the source is a PDF (its pages may have a text layer, see :meth:`text_layer`).
    """

    def __init__(
        self,
        *,
        name: str | None,
        sha256: str | None,
        page_count: int,
        load_page: Callable[[int], Image.Image],
        on_close: Callable[[], None] = lambda: None,
        read_layer: Callable[[int], TextLayer] | None = None,
    ) -> None:
        self.name = name
        self.sha256 = sha256
        self.page_count = page_count
        self.is_pdf = read_layer is not None
        self._load_page = load_page
        self._read_layer = read_layer
        self._on_close = on_close
        self._closed = False

    def pages(self, numbers: Sequence[int] | None = None) -> Iterator[Image.Image]:
        """Yield each page, in order, as a fully decoded upright RGB image, one page per step.

        Args:
            numbers: only these pages (1-based, as :meth:`select` returns them); ``None``: every page.

        Raises:
            InputFileError: a page is truncated or corrupt.
            LimitExceededError: a page is larger than ``max_page_pixels``.
            ValueError: the document is closed.
        """
        for number in range(1, self.page_count + 1) if numbers is None else numbers:
            if self._closed:
                raise ValueError("Document is closed")
            yield self._load_page(number - 1)

    def select(self, numbers: Sequence[int] | None) -> list[int]:
        """The 1-based numbers of the pages to read: ``numbers`` in ascending order, or every page.

        Raises:
            UsageError: a number is below 1 or past the last page.
        """
        if numbers is None:
            return list(range(1, self.page_count + 1))
        missing = [n for n in numbers if not 1 <= n <= self.page_count]
        if missing:
            count = f"{self.page_count} page{'s' if self.page_count != 1 else ''}"
            raise UsageError(
                f"The document has {count}; there is no page {missing[0]}. Choose pages from 1 to "
                f"{self.page_count}."
            )
        return sorted(set(numbers))

    def page(self, index: int) -> Image.Image:
        """Page ``index`` (0-based) as a fully decoded upright RGB image; raises as :meth:`pages` does."""
        if self._closed:
            raise ValueError("Document is closed")
        return self._load_page(index)

    def text_layer(self, index: int) -> TextLayer | None:
        """The text layer of PDF page ``index`` (0-based), boxes in the pixels :meth:`page` renders it at;
        ``None`` for an image. Reads no pixels: milliseconds per page.

        Raises:
            InputFileError: PDFium cannot read the page's text.
            ValueError: the document is closed.
        """
        if self._closed:
            raise ValueError("Document is closed")
        return None if self._read_layer is None else self._read_layer(index)

    def close(self) -> None:
        """Release the file, image and PDF handles; further calls do nothing."""
        if not self._closed:
            self._closed = True
            self._on_close()

    def __enter__(self) -> Document:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def crop_box(image: Image.Image, box: tuple[int, int, int, int], number: int) -> Image.Image:
    """The region ``box`` (x0, y0, x1, y1 in pixels, x1/y1 exclusive) of page ``number``, clipped to it.

    Raises:
        UsageError: the box lies wholly outside the page.
    """
    width, height = image.size
    x0, y0, x1, y1 = box
    region = (min(x0, width), min(y0, height), min(x1, width), min(y1, height))
    if region[0] >= region[2] or region[1] >= region[3]:
        raise UsageError(
            f"The box {x0},{y0},{x1},{y1} lies outside page {number}, which is {width}×{height} pixels; "
            "give a region within the page."
        )
    return image.crop(region)


def file_label(path: str | os.PathLike[str]) -> str:
    """A path as one line of printable, UTF-8-safe text.

    Bytes of a non-UTF-8 name become ``\\xNN`` escapes, and so do control characters (C0, DEL, C1:
    newline, carriage return, escape sequences, U+0085 NEXT LINE); the line and paragraph separators
    and the bidirectional overrides become ``\\uNNNN``. Used wherever a file name is shown or recorded
    (messages, log lines, ``Document.name``, sidecar metadata), so any name the OS allows stays on one
    line, cannot drive the terminal, survives YAML and JSON unchanged, and compares equal on the next run.
    The label is for people and metadata; the path itself is used to open files and key the ledger.
    """
    text = os.fsencode(path).decode("utf-8", "backslashreplace")
    return _UNPRINTABLE.sub(_escape_char, text)


_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _escape_char(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def open_source(
    source: str | os.PathLike[str] | bytes | Image.Image,
    limits: SourceLimits | None = None,
    *,
    page_size: int | None = None,
) -> Document:
    """Open an image or PDF for reading page by page.

    Args:
        source: a file path, the bytes of a file, or a PIL image (one page; the caller's image is not
            changed). Bytes and paths may be PNG, JPEG, TIFF (every frame), WebP, BMP, GIF (first frame),
            HEIC/HEIF or PDF (every page, rendered at ``limits.pdf_dpi``), recognised by content.
        limits: size, pixel and page limits; the defaults of :class:`SourceLimits` when ``None``.
        page_size: render each PDF page so its longest side is this many pixels, whatever its size in
            points (a VLM engine's trained page size), instead of at ``limits.pdf_dpi``.

    Returns:
        An open :class:`Document`; close it, or use it in a ``with`` block.

    Raises:
        FileAccessError: the path does not exist, is a folder or another non-regular file, or cannot be read.
        InputFileError: the input is empty, of an unsupported format, corrupt, or a PDF without pages.
        LimitExceededError: the input exceeds ``max_file_mb``, ``max_pages`` or (first page of an image)
            ``max_page_pixels``.
        EncryptedPdfError: the PDF needs a password.
    """
    limits = limits or SourceLimits()
    if isinstance(source, Image.Image):
        return _open_pil(source, limits)
    if isinstance(source, bytes):
        label = "The image data"
        _check_size(len(source), label, limits)
        digest = hashlib.sha256(source).hexdigest()
        return _open_stream(io.BytesIO(source), label, None, digest, limits, page_size)
    path = os.fspath(source)
    label = f"'{file_label(path)}'"
    fp = _open_file(path, label, limits)
    try:
        name = file_label(os.path.basename(path))
        return _open_stream(fp, label, name, _sha256_stream(fp), limits, page_size)
    except OSError as exc:  # reading failed: a bad disk, a network share that went away
        fp.close()
        raise FileAccessError(f"{label} cannot be read ({exc.strerror or exc}); try again.") from exc
    except BaseException:
        fp.close()
        raise


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a regular file's bytes, read in 1 MiB chunks.

    Raises:
        FileAccessError: the path is a folder, a FIFO, a device or another non-regular file (also through
            a symlink), refused before a byte is read: hashing ``/dev/zero`` would never end.
        OSError: the file cannot be opened or read.
    """
    with open_regular(path, f"'{file_label(path)}'") as fp:
        return _sha256_stream(fp)


def file_version(path: str | os.PathLike[str]) -> tuple[int, int, int, int]:
    """``(device, inode, size, mtime in ns)`` of a file: it differs once the file is written to, replaced
    by another (a rename over it, or deleted and created again) or moved in from elsewhere.

    Raises:
        OSError: the file does not exist or cannot be examined.
    """
    info = os.stat(path)
    return info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns


def open_regular(path: str | os.PathLike[str], label: str) -> IO[bytes]:
    """Open a regular file for reading, refusing anything else before reading from it.

    The type is checked on the opened descriptor (``fstat``), so a file swapped for a FIFO between a check
    and the open cannot slip through, and the open itself does not block: ``O_NONBLOCK`` makes opening a
    FIFO without a writer return at once (blocking reads are restored for the regular file).

    Args:
        path: the file; symlinks are followed.
        label: how the file is named in the message, e.g. ``"'scan.png'"``.

    Raises:
        FileAccessError: a folder, FIFO, socket or device.
        OSError: the file cannot be opened (missing, no permission).
    """
    if stat.S_ISDIR(os.stat(path).st_mode):  # before open(): a folder cannot be opened everywhere
        raise FileAccessError(f"{label} is a folder, not a file; give the path of an image or PDF.")
    nonblock = getattr(os, "O_NONBLOCK", 0)
    fd = os.open(path, os.O_RDONLY | nonblock | getattr(os, "O_BINARY", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise FileAccessError(
                f"{label} is not a regular file (a pipe, device or socket); give the path of an image or PDF."
            )
        if nonblock:
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _sha256_stream(fp: IO[bytes]) -> str:
    digest = hashlib.sha256()
    while chunk := fp.read(_MIB):
        digest.update(chunk)
    return digest.hexdigest()


def _open_file(path: str, label: str, limits: SourceLimits) -> IO[bytes]:
    try:
        fp = open_regular(path, label)  # the Document closes it
    except (FileNotFoundError, NotADirectoryError) as exc:
        raise FileAccessError(f"{label} does not exist; check the path and try again.") from exc
    except PermissionError as exc:
        raise FileAccessError(f"{label} cannot be read (permission denied); check its permissions.") from exc
    except OSError as exc:
        raise FileAccessError(f"{label} cannot be opened ({exc.strerror or exc}); check the path.") from exc
    try:
        _check_size(os.fstat(fp.fileno()).st_size, label, limits)
    except BaseException:
        fp.close()
        raise
    return fp


def _check_size(size: int, label: str, limits: SourceLimits) -> None:
    if size == 0:
        raise InputFileError(f"{label} is empty (0 bytes); if it is still being written, wait and try again.")
    if size > limits.max_file_mb * _MIB:
        raise LimitExceededError(
            f"{label} is {size / _MIB:,.1f} MiB, over the {limits.max_file_mb:g} MiB limit; "
            "raise the max_file_mb setting to read it."
        )


def _check_pages(count: int, label: str, limits: SourceLimits) -> None:
    if count > limits.max_pages:
        raise LimitExceededError(
            f"{label} has {count} pages, over the {limits.max_pages}-page limit; "
            "split it or raise the max_pages setting."
        )


def _check_pixels(size: tuple[int, int], where: str, limits: SourceLimits, fix: str) -> None:
    width, height = size
    if width * height > limits.max_page_pixels:
        raise LimitExceededError(
            f"{where} is {width}×{height} = {width * height:,} pixels, over the "
            f"{limits.max_page_pixels:,}-pixel limit; {fix}."
        )


_RAISE_PIXELS = "raise the max_page_pixels setting only if you trust the file"


@contextmanager
def _decoding(where: str, limits: SourceLimits) -> Iterator[None]:
    """Decode under our pixel limit and turn any decoder failure into a :class:`TextdropError`.

    Pillow warns above ``Image.MAX_IMAGE_PIXELS`` and raises above twice that. Here the process-wide
    setting becomes ``max_page_pixels`` (under a lock, restored after) and the warning an error, so
    Pillow never refuses an image within our limit and refuses, before allocating, any image over it,
    in the decoders' own checks too (TIFF tiles, GIF frames).
    """
    try:
        with _pillow_lock, warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, limits.max_page_pixels
            try:
                yield
            finally:
                Image.MAX_IMAGE_PIXELS = saved
    except TextdropError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise LimitExceededError(
            f"{where} is larger than the {limits.max_page_pixels:,}-pixel limit; {_RAISE_PIXELS}."
        ) from exc
    except Exception as exc:
        raise InputFileError(
            f"{where} is truncated or corrupt ({exc}); re-save or re-export it and try again."
        ) from exc


def _page_label(label: str, index: int, count: int) -> str:
    return f"{label}, page {index + 1}," if count > 1 else label


def _open_stream(
    fp: IO[bytes], label: str, name: str | None, sha256: str, limits: SourceLimits, page_size: int | None
) -> Document:
    fp.seek(0)
    head = fp.read(1024)
    if b"%PDF-" in head:
        return _open_pdf(fp, label, name, sha256, limits, page_size)
    return _open_image(fp, label, name, sha256, limits, heif=head[4:8] == b"ftyp")


@cache
def _register_heif() -> None:
    # pi-heif: the decoder-only build of pillow-heif (same API), without the GPL x265 encoder (ADR 008)
    from pi_heif import register_heif_opener

    register_heif_opener()


def _open_image(
    fp: IO[bytes], label: str, name: str | None, sha256: str, limits: SourceLimits, *, heif: bool
) -> Document:
    formats = _PILLOW_FORMATS
    if heif:  # an ISO base media file: register pi-heif's opener the first time one is seen
        _register_heif()
        formats += ("HEIF",)
    with _decoding(label, limits):
        try:
            image = Image.open(fp, formats=formats)
        except UnidentifiedImageError as exc:
            raise InputFileError(
                f"{label} is not an image or PDF textdrop can read; "
                f"convert it to one of the supported formats: {_FORMATS_TEXT}."
            ) from exc
    try:
        with _decoding(label, limits):
            count = image.n_frames if image.format == "TIFF" else 1  # GIF, WebP, APNG: first frame only
        _check_pages(count, label, limits)
    except BaseException:
        image.close()
        raise
    log.debug("opened %s: %s %s, %d page(s)", label, image.format, image.mode, count)

    def load_page(index: int) -> Image.Image:
        where = _page_label(label, index, count)
        with _decoding(where, limits):
            image.seek(index)
            _check_pixels(image.size, where, limits, _RAISE_PIXELS)
            return _to_rgb(image)

    def close() -> None:
        image.close()
        fp.close()

    return Document(name=name, sha256=sha256, page_count=count, load_page=load_page, on_close=close)


def _open_pil(image: Image.Image, limits: SourceLimits) -> Document:
    label = "The image"

    def load_page(_: int) -> Image.Image:
        with _decoding(label, limits):
            _check_pixels(image.size, label, limits, _RAISE_PIXELS)
            return _to_rgb(image)

    return Document(name=None, sha256=None, page_count=1, load_page=load_page)


def _to_rgb(image: Image.Image) -> Image.Image:
    """Decode ``image`` fully and return a new upright RGB copy; transparency is composited onto white."""
    image.load()
    image = ImageOps.exif_transpose(image)
    if image.mode in ("I", "F") or image.mode.startswith("I;16"):
        # Wide samples: 16-bit (0..65535), 8-bit values stored wide (0..255), or float in 0..1.
        high = image.getextrema()[1]
        top = 1.0 if image.mode == "F" and high <= 1 else 255 if high <= 255 else 65535
        image = image.convert("F").point(lambda v: v * 255 / top).convert("L")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        image = Image.alpha_composite(Image.new("RGBA", rgba.size, "white"), rgba)
    return image.convert("RGB")


def _open_pdf(
    fp: IO[bytes], label: str, name: str | None, sha256: str, limits: SourceLimits, page_size: int | None
) -> Document:
    import pypdfium2 as pdfium

    with _decoding(label, limits):
        try:
            pdf = pdfium.PdfDocument(fp)
        except pdfium.PdfiumError as exc:
            raise _pdf_refused(fp, label) from exc
    try:
        count = len(pdf)
        _check_pages(count, label, limits)
        with _decoding(label, limits):
            pdf.init_forms()  # so filled-in form fields are rendered too
    except BaseException:
        pdf.close()
        raise
    log.debug("opened %s: PDF, %d page(s), rendering at %s", label, count, page_size or limits.pdf_dpi)

    def page_scale(index: int) -> float:
        """Pixels per PDF point the page is rendered at."""
        return page_size / max(*pdf.get_page_size(index), 1) if page_size else limits.pdf_dpi / 72

    def load_page(index: int) -> Image.Image:
        where = _page_label(label, index, count)
        with _decoding(where, limits):
            points = pdf.get_page_size(index)
            scale = page_scale(index)
            size = tuple(math.ceil(side * scale) for side in points)
            _check_pixels(
                size, f"{where} at {round(scale * 72)} dpi", limits, "lower pdf_dpi or " + _RAISE_PIXELS
            )
            page = pdf[index]
            try:
                return page.render(scale=scale).to_pil().convert("RGB")
            finally:
                page.close()

    def read_layer(index: int) -> TextLayer:
        from textdrop.engine.documents.textlayer import read_text_layer

        with _decoding(_page_label(label, index, count), limits):
            return read_text_layer(pdf, index, page_scale(index))

    def close() -> None:
        pdf.close()
        fp.close()

    return Document(
        name=name, sha256=sha256, page_count=count, load_page=load_page, on_close=close, read_layer=read_layer
    )


def _pdf_refused(fp: IO[bytes], label: str) -> TextdropError:
    """The error for a PDF that pypdfium2 refused to open.

    The ``err_code`` of pypdfium2's exception cannot be trusted: pypdfium2 also refuses a PDF that loads
    but has no pages, and then reports PDFium's last error, which a successful load does not reset (so
    it is left over from an earlier file). Loading again through the raw API tells the cases apart.
    """
    import pypdfium2.raw as pdfium_c

    fp.seek(0)
    data = fp.read()
    raw = pdfium_c.FPDF_LoadMemDocument64(data, len(data), None)
    if raw:
        count = pdfium_c.FPDF_GetPageCount(raw)
        pdfium_c.FPDF_CloseDocument(raw)
        if count == 0:
            return InputFileError(f"{label} is a PDF with no pages; check that it was exported fully.")
    elif pdfium_c.FPDF_GetLastError() in (pdfium_c.FPDF_ERR_PASSWORD, pdfium_c.FPDF_ERR_SECURITY):
        return EncryptedPdfError(
            f"{label} is password-protected; remove the password "
            "(e.g. qpdf --decrypt --password=PASSWORD in.pdf out.pdf) and try again."
        )
    return InputFileError(
        f"{label} is a damaged PDF; repair or re-export it (e.g. qpdf in.pdf repaired.pdf) and try again."
    )
