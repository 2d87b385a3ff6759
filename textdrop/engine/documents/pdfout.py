"""Searchable PDF output: the source's pages unchanged, with an invisible text layer on the recognised lines.

Written with pikepdf (MPL-2.0, over qpdf, Apache-2.0; ``docs/adr/011-scripts-and-pdf.md`` says why this
library). An image source becomes one page per image (TIFF frame) holding its pixels losslessly (a JPEG's
own bytes when it needs no EXIF turn), shown turned upright (``/Rotate``) when the engine found it sideways or
upside down; a PDF source keeps its pages as they are, and only the pages that
were OCRed get the layer (pages read from their own text layer are searchable already).

Each line is drawn in text render mode 3 (invisible, as OCRmyPDF and Tesseract do) in a font without glyph
outlines: a Type 0 font, Identity-H encoding, one CID per distinct character of the document and a
``ToUnicode`` CMap mapping it back to the character, so any character (Cyrillic, CJK, emoji) can be
searched and copied. Every glyph is 0.5 em wide; each line is stretched horizontally to its box. Viewers
never draw the font, so no font program is embedded.

:func:`searchable_pdf` builds the file's bytes; :func:`~.sidecar.write_sidecar` names and
writes it like any sidecar (format ``pdf``). :func:`read_metadata` finds textdrop's metadata in such a
file (the document information dictionary), so the never-overwrite rule applies to PDFs too.
"""

from __future__ import annotations

import io
import logging
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textdrop import __version__
from textdrop.engine.documents.sources import SourceLimits, file_label, open_source
from textdrop.engine.errors import OutputError

if TYPE_CHECKING:
    import pikepdf
    from PIL import Image

    from textdrop.engine.result import OcrResult, PageResult

log = logging.getLogger(__name__)

DEFAULT_DPI = 150
"""Resolution assumed for an image without a DPI of its own (screenshots, phone photos): it sets the page
size in points only; the pixels are kept as they are."""

GLYPH_WIDTH = 500
"""Width of every glyph of the invisible font, in thousandths of an em."""

DESCENT = 0.2
"""Share of a line box's height below the baseline (the font's descent)."""

_KEYS = {
    "/TextdropSource": "source",
    "/TextdropSha256": "sha256",
    "/TextdropEngine": "engine",
    "/TextdropModel": "model",
    "/TextdropPages": "pages",
    "/TextdropSeconds": "seconds",
}


def searchable_pdf(result: OcrResult, source: Path) -> bytes:
    """The searchable PDF of ``source`` for ``result``, as bytes.

    Args:
        result: the recognised document; its pages match the source's pages in number and order.
        source: the image or PDF file ``result`` was read from (opened read-only, never changed).

    Returns:
        The PDF file's content.

    Raises:
        OutputError: the source cannot be read again, or no longer has the pages of ``result``.
    """
    import pikepdf

    try:
        with pikepdf.new() as pdf:
            if _is_pdf(source):
                _copy_pdf_pages(pdf, result, source)
            else:
                _image_pages(pdf, result, source)
            _metadata(pdf, result)
            buffer = io.BytesIO()
            pdf.save(buffer)
    except OutputError:
        raise
    except (OSError, pikepdf.PdfError, ValueError) as error:
        raise OutputError(
            f"Cannot write the searchable PDF of {file_label(source.name)}: {error}. "
            "Check that the source is still there and unchanged, then try again."
        ) from error
    return buffer.getvalue()


def read_metadata(path: Path) -> dict[str, Any] | None:
    """Textdrop's metadata in a PDF it wrote (keys as in :func:`~.sidecar.read_metadata`),
    or ``None`` for any other file or one that cannot be read. Never raises."""
    import pikepdf

    try:
        with pikepdf.open(path) as pdf:
            info = pdf.docinfo
            producer = str(info.get("/Producer", ""))
            if not producer.startswith("textdrop ") or "/TextdropSource" not in info:
                return None
            data: dict[str, Any] = {"textdrop": producer.removeprefix("textdrop ")}
            for key, name in _KEYS.items():
                value = str(info[key]) if key in info else None
                data[name] = value
            data["created"] = str(info.get("/TextdropCreated", "")) or None
    except Exception as error:  # any damage in a file textdrop may not have written
        log.debug("no textdrop metadata in %s: %s", path, error)
        return None
    for name, kind in (("pages", int), ("seconds", float)):
        try:
            data[name] = kind(data[name]) if data[name] is not None else None
        except ValueError:
            data[name] = None
    return data


def _is_pdf(source: Path) -> bool:
    with source.open("rb") as handle:
        return b"%PDF-" in handle.read(1024)


def _metadata(pdf: pikepdf.Pdf, result: OcrResult) -> None:
    import pikepdf

    created = datetime.now(UTC)
    values = {
        "/Producer": f"textdrop {__version__}",
        "/Creator": "textdrop",
        "/CreationDate": created.strftime("D:%Y%m%d%H%M%SZ"),
        "/TextdropCreated": created.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "/TextdropSource": result.source or "",
        "/TextdropSha256": result.sha256 or "",
        "/TextdropEngine": result.engine,
        "/TextdropPages": str(len(result.pages)),
        "/TextdropSeconds": f"{result.seconds:.2f}",
    }
    if result.model:
        values["/TextdropModel"] = result.model
    for key, value in values.items():
        pdf.docinfo[key] = pikepdf.String(value)


# -- pages ----------------------------------------------------------------------------------------------


@contextmanager
def _reopened(source: Path) -> Iterator[Any]:
    """The source opened again; it was read within the user's limits already, so none apply here."""
    limits = SourceLimits(max_file_mb=1e9, max_page_pixels=10**12, max_pages=10**6)
    with open_source(source, limits) as document:
        yield document


def _check_pages(result: OcrResult, count: int, source: Path) -> None:
    if count != len(result.pages):
        raise OutputError(
            f"{file_label(source.name)} has {count} pages now but {len(result.pages)} were read: it changed "
            "while being read. Read it again."
        )


def _image_pages(pdf: pikepdf.Pdf, result: OcrResult, source: Path) -> None:
    import pikepdf

    font = _Font(pdf, result)
    with _reopened(source) as document:
        _check_pages(result, document.page_count, source)
        dpi = _dpi(source)
        passthrough = _jpeg(source) if document.page_count == 1 else None
        for page, image in zip(result.pages, document.pages(), strict=True):
            width, height = image.width * 72 / dpi, image.height * 72 / dpi
            new = pdf.add_blank_page(page_size=(width, height))
            new.Resources = pikepdf.Dictionary(
                XObject=pikepdf.Dictionary(Im0=_image(pdf, image, passthrough))
            )
            drawing = f"q {width:.4f} 0 0 {height:.4f} 0 0 cm /Im0 Do Q\n".encode()
            new.Contents = pdf.make_stream(drawing + font.layer(new, page, (0, 0, width, height), 0))
            if page.rotation:  # the engine turned the page to read it: viewers show it the same way up
                new.Rotate = page.rotation


def _copy_pdf_pages(pdf: pikepdf.Pdf, result: OcrResult, source: Path) -> None:
    import pikepdf

    font = _Font(pdf, result)
    with pikepdf.open(source) as original:
        _check_pages(result, len(original.pages), source)
        pdf.pages.extend(original.pages)
    for page, new in zip(result.pages, pdf.pages, strict=True):
        if page.text_source == "layer":
            continue
        box = tuple(float(v) for v in new.cropbox)
        rotate = int(new.obj.get("/Rotate", 0)) % 360
        layer = font.layer(new, page, box, rotate)  # type: ignore[arg-type]
        if layer:
            new.contents_add(pdf.make_stream(b"q\n"), prepend=True)
            new.contents_add(pdf.make_stream(b"\nQ\n" + layer))


def _dpi(source: Path) -> float:
    """The image's own horizontal DPI when it has a plausible one, else :data:`DEFAULT_DPI`."""
    from PIL import Image

    try:
        with Image.open(source) as image:
            dpi = float(image.info.get("dpi", (0, 0))[0])
    except (OSError, ValueError, TypeError, IndexError):
        return DEFAULT_DPI
    return dpi if 36 <= dpi <= 2400 else DEFAULT_DPI


def _jpeg(source: Path) -> tuple[bytes, bool] | None:
    """``(the file's bytes, grayscale)`` when it is an RGB or grayscale JPEG that needs no EXIF turn: the
    PDF then holds the very same compressed image (PDF readers decode JPEG natively)."""
    from PIL import Image

    try:
        with Image.open(source) as image:
            if image.format != "JPEG" or image.mode not in ("RGB", "L"):
                return None
            if image.getexif().get(0x0112, 1) != 1:  # Orientation: the page was turned when read
                return None
            gray = image.mode == "L"
    except OSError:
        return None
    return source.read_bytes(), gray


def _image(pdf: pikepdf.Pdf, image: Image.Image, jpeg: tuple[bytes, bool] | None) -> pikepdf.Object:
    """An image XObject with ``image``'s pixels: the JPEG's own bytes, else Flate (lossless), in
    DeviceGray when the three channels are equal everywhere (a grayscale scan), else DeviceRGB."""
    import numpy as np
    import pikepdf

    if jpeg is not None:
        (data, gray), codec = jpeg, pikepdf.Name.DCTDecode
    else:
        pixels = np.asarray(image)
        gray = bool((pixels[..., 0] == pixels[..., 1]).all() and (pixels[..., 1] == pixels[..., 2]).all())
        raw = np.ascontiguousarray(pixels[..., 0] if gray else pixels)
        data, codec = zlib.compress(raw.tobytes(), 6), pikepdf.Name.FlateDecode
    return pdf.make_stream(
        data,
        Type=pikepdf.Name.XObject,
        Subtype=pikepdf.Name.Image,
        Width=image.width,
        Height=image.height,
        ColorSpace=pikepdf.Name.DeviceGray if gray else pikepdf.Name.DeviceRGB,
        BitsPerComponent=8,
        Filter=codec,
    )


# -- the invisible text ---------------------------------------------------------------------------------


class _Font:
    """The document's invisible Type 0 font: one CID per distinct character of the result."""

    def __init__(self, pdf: pikepdf.Pdf, result: OcrResult) -> None:
        import pikepdf

        chars = sorted({char for page in result.pages for line in _lines(page) for char in line[0]})
        self.cids = {char: cid for cid, char in enumerate(chars, start=1)}
        entries = "".join(
            f"<{cid:04X}> <{char.encode('utf-16-be').hex().upper()}>\n" for char, cid in self.cids.items()
        )
        cmap = (
            "/CIDInit /ProcSet findresource begin 12 dict begin begincmap\n"
            "/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def\n"
            "/CMapName /Adobe-Identity-UCS def /CMapType 2 def\n"
            "1 begincodespacerange <0000> <FFFF> endcodespacerange\n"
            + "".join(
                f"{min(100, len(chars) - start)} beginbfchar\n"
                + "".join(entries.splitlines(keepends=True)[start : start + 100])
                + "endbfchar\n"
                for start in range(0, len(chars), 100)
            )
            + "endcmap CMapName currentdict /CMap defineresource pop end end\n"
        )
        descriptor = pikepdf.Dictionary(
            Type=pikepdf.Name.FontDescriptor,
            FontName=pikepdf.Name.GlyphLessFont,
            Flags=5,
            FontBBox=[0, -1000 * DESCENT, GLYPH_WIDTH, 1000 * (1 - DESCENT)],
            ItalicAngle=0,
            Ascent=1000 * (1 - DESCENT),
            Descent=-1000 * DESCENT,
            CapHeight=1000 * (1 - DESCENT),
            StemV=80,
        )
        cid_font = pikepdf.Dictionary(
            Type=pikepdf.Name.Font,
            Subtype=pikepdf.Name.CIDFontType2,
            BaseFont=pikepdf.Name.GlyphLessFont,
            CIDSystemInfo=pikepdf.Dictionary(Registry="Adobe", Ordering="Identity", Supplement=0),
            FontDescriptor=pdf.make_indirect(descriptor),
            DW=GLYPH_WIDTH,
            CIDToGIDMap=pikepdf.Name.Identity,
        )
        self.font = pdf.make_indirect(
            pikepdf.Dictionary(
                Type=pikepdf.Name.Font,
                Subtype=pikepdf.Name.Type0,
                BaseFont=pikepdf.Name.GlyphLessFont,
                Encoding=pikepdf.Name("/Identity-H"),
                DescendantFonts=[pdf.make_indirect(cid_font)],
                ToUnicode=pdf.make_stream(cmap.encode("ascii")),
            )
        )

    def layer(
        self, target: pikepdf.Page, page: PageResult, box: tuple[float, float, float, float], rotate: int
    ) -> bytes:
        """The content-stream operators drawing ``page``'s lines invisibly on ``target``, whose visible
        area is ``box`` (user-space points) shown turned clockwise by ``rotate`` degrees; adds the font to
        its resources. Empty when the page has no text."""
        import pikepdf

        lines = _lines(page)
        if not lines:
            return b""
        name = target.add_resource(self.font, pikepdf.Name.Font, prefix="TdF")
        matrix = _pixels_to_user(page, box, rotate)
        ops = [f"{' '.join(f'{v:.6f}' for v in matrix)} cm", "BT", "3 Tr", f"{name} 1 Tf"]
        for text, (x0, y0, x1, y1) in lines:
            size = max(y1 - y0, 1)
            stretch = max(x1 - x0, 1) / (len(text) * GLYPH_WIDTH / 1000 * size)
            baseline = page.height - y1 + DESCENT * size
            codes = "".join(f"{self.cids[char]:04X}" for char in text)
            ops.append(f"{size * stretch:.3f} 0 0 {size:.3f} {x0:.2f} {baseline:.2f} Tm <{codes}> Tj")
        ops.append("ET")
        return ("q\n" + "\n".join(ops) + "\nQ\n").encode("ascii")


def _lines(page: PageResult) -> list[tuple[str, tuple[float, float, float, float]]]:
    """``(text, box)`` per line in reading order, boxes in pixels of the upright page. An engine without
    boxes (a VLM) gets its text lines spread evenly down the page, so the page is still searchable."""
    if page.lines:
        return [(line.text, line.bbox) for line in page.lines if line.text]
    rows = [row.strip() for row in page.text.splitlines() if row.strip()]
    step = page.height / max(len(rows), 1)
    return [(row, (0, i * step, page.width, (i + 0.8) * step)) for i, row in enumerate(rows)]


def _pixels_to_user(
    page: PageResult, box: tuple[float, float, float, float], rotate: int
) -> tuple[float, float, float, float, float, float]:
    """The matrix ``a b c d e f`` from the text space (pixels of the upright page, y up from its bottom)
    to the PDF page's user space (points), found from where three corners land.

    The upright page is the displayed page turned clockwise by ``page.rotation`` (the engine's orientation
    fix); the displayed page is the ``box`` area turned clockwise by ``rotate`` (the page's ``/Rotate``).
    """
    llx, lly, urx, ury = box
    box_w, box_h = urx - llx, ury - lly
    shown_w, shown_h = (box_h, box_w) if rotate in (90, 270) else (box_w, box_h)
    turned = page.rotation in (90, 270)
    pixels_w, pixels_h = (page.height, page.width) if turned else (page.width, page.height)
    scale = shown_w / pixels_w  # points per pixel

    def user(xu: float, yu: float) -> tuple[float, float]:
        # upright pixels (y down) -> displayed pixels, undoing the engine's clockwise turn
        xd, yd = {
            0: (xu, yu),
            90: (yu, pixels_h - xu),
            180: (pixels_w - xu, pixels_h - yu),
            270: (pixels_w - yu, xu),
        }[page.rotation]
        xd, yd = xd * scale, yd * scale  # displayed points, y down
        across, down = {
            0: (xd, shown_h - yd),
            90: (yd, xd),
            180: (box_w - xd, yd),
            270: (box_w - yd, box_h - xd),
        }[rotate]
        return llx + across, lly + down

    origin = user(0, page.height)  # text space (0, 0): the upright page's bottom-left corner
    right = user(1, page.height)
    up = user(0, page.height - 1)
    return (
        right[0] - origin[0],
        right[1] - origin[1],
        up[0] - origin[0],
        up[1] - origin[1],
        origin[0],
        origin[1],
    )
