"""PDF text layers: a page's own text, read with pypdfium2, and whether it can stand in for OCR.

A born-digital PDF carries its text exactly (``0O0O-l1I1`` stays ``0O0O-l1I1``), and reading it takes
milliseconds where OCR takes seconds. :func:`read_text_layer` reads a page's characters with PDFium's text
API (``FPDFText_*``, in content order, with PDFium's own line breaks), cuts them into lines at line breaks
and at wide gaps (table cells, columns), and maps their boxes to the pixels of the page as
:mod:`textdrop.engine.documents.sources` renders it, so the lines go through the same reading-order step
(:func:`textdrop.engine.ocr.layout.compose`) as OCR lines. It also says why a layer must not replace OCR
(:attr:`TextLayer.problem`): no text, characters without a Unicode mapping (what other tools print as
``(cid:NN)``), an invisible layer (an earlier OCR pass whose quality is unknown), or a scanned page whose
only text is a stamp or a page number. See ``docs/adr/011-scripts-and-pdf.md``.
"""

from __future__ import annotations

import ctypes
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from textdrop.engine.result import Line

if TYPE_CHECKING:
    import pypdfium2 as pdfium

log = logging.getLogger(__name__)

GARBAGE_SHARE = 0.1
"""Share of a layer's characters that may lack a usable Unicode value (PDFium reports a mapping error, or
the value is U+FFFD, U+0000 or in the Private Use Area) before the layer counts as garbage."""

INVISIBLE_SHARE = 0.5
"""Share of invisible characters (text render mode 3, how OCR tools hide their text behind a scan) from
which the layer counts as an earlier OCR pass."""

SCAN_COVER = 0.8
"""Share of the page's area one image must cover for the page to count as a scan."""

SCAN_MAX_CHARS = 40
"""On a scanned page, a visible layer with fewer characters than this is a stamp or a page number, not the
page's text: the page is OCRed."""

LINE_GAP = 1.2
"""A horizontal gap wider than this many line heights between two characters of one PDFium line starts a
new line (a table cell or another column), as the OCR detector would box them separately."""


@dataclass
class TextLayer:
    """The text layer of one PDF page.

    Attributes:
        lines: the layer's lines in content order; boxes in pixels of the page rendered at the scale given
            to :func:`read_text_layer` (upright, as PDFium renders it), confidence 1.0.
        width: width in pixels of the rendered page.
        height: height in pixels of the rendered page.
        chars: characters that are not white space.
        problem: why the layer cannot replace OCR on this page, or ``None`` when it can.
    """

    lines: list[Line] = field(default_factory=list)
    width: int = 0
    height: int = 0
    chars: int = 0
    problem: str | None = None


@dataclass
class _Char:
    text: str
    box: tuple[float, float, float, float] | None  # left, bottom, right, top in page points; None: generated


def read_text_layer(pdf: pdfium.PdfDocument, index: int, scale: float) -> TextLayer:
    """Read page ``index`` of ``pdf``'s text layer, boxes scaled by ``scale`` pixels per point.

    Args:
        pdf: an open document.
        index: 0-based page index.
        scale: pixels per PDF point of the rendered page (``dpi / 72``).

    Returns:
        The layer; :attr:`TextLayer.problem` says whether it can be used instead of OCR.

    Raises:
        pypdfium2.PdfiumError: PDFium cannot load the page or its text.
    """
    import pypdfium2.raw as pdfium_c

    page = pdf[index]
    try:
        width_pt, height_pt = page.get_size()
        width, height = round(width_pt * scale), round(height_pt * scale)
        textpage = page.get_textpage()
        try:
            chars, bad, invisible = _chars(textpage.raw)
        finally:
            textpage.close()
        layer = TextLayer(width=width, height=height)
        layer.chars = sum(1 for char in chars if char.box is not None and not char.text.isspace())
        for run in _runs(chars):
            line = _line(page.raw, run, width, height, pdfium_c)
            if line is not None:
                layer.lines.append(line)
        area = width_pt * height_pt
        layer.problem = _problem(layer.chars, bad, invisible, lambda: _image_cover(page, area))
        return layer
    finally:
        page.close()


def _chars(textpage: object) -> tuple[list[_Char], int, int]:
    """The page's characters in PDFium's order (``\\n`` for its line breaks), the number without a usable
    Unicode value, and the number drawn invisibly."""
    import pypdfium2.raw as pdfium_c

    count = pdfium_c.FPDFText_CountChars(textpage)
    left, right, bottom, top = (ctypes.c_double() for _ in range(4))
    chars: list[_Char] = []
    bad = invisible = 0
    index = 0
    while index < count:
        code = pdfium_c.FPDFText_GetUnicode(textpage, index)
        step = 1
        if 0xD800 <= code < 0xDC00 and index + 1 < count:  # a UTF-16 surrogate pair (PDFium on Windows)
            low = pdfium_c.FPDFText_GetUnicode(textpage, index + 1)
            if 0xDC00 <= low < 0xE000:
                code, step = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00), 2
        text = chr(code) if code < 0x110000 else "\ufffd"
        if text in "\r\n":
            if not chars or chars[-1].text != "\n":
                chars.append(_Char("\n", None))
        elif pdfium_c.FPDFText_IsGenerated(textpage, index) == 1:
            chars.append(_Char(text, None))
        else:
            box = None
            edges = (ctypes.byref(left), ctypes.byref(right), ctypes.byref(bottom), ctypes.byref(top))
            if pdfium_c.FPDFText_GetCharBox(textpage, index, *edges):
                box = (left.value, bottom.value, right.value, top.value)
            if not text.isspace():
                if (
                    pdfium_c.FPDFText_HasUnicodeMapError(textpage, index) == 1
                    or code in (0, 0xFFFD)
                    or 0xE000 <= code <= 0xF8FF
                ):
                    bad += 1
                obj = pdfium_c.FPDFText_GetTextObject(textpage, index)
                if obj and (
                    pdfium_c.FPDFTextObj_GetTextRenderMode(obj) == pdfium_c.FPDF_TEXTRENDERMODE_INVISIBLE
                ):
                    invisible += 1
            chars.append(_Char(text, box))
        index += step
    return chars, bad, invisible


def _runs(chars: list[_Char]) -> list[list[_Char]]:
    """Cut the characters into lines: at PDFium's line breaks and at gaps wider than :data:`LINE_GAP`."""
    runs: list[list[_Char]] = []
    current: list[_Char] = []
    last: tuple[float, float, float, float] | None = None
    for char in chars:
        if char.text == "\n":
            runs.append(current)
            current, last = [], None
            continue
        if char.box is not None and last is not None and not char.text.isspace():
            height = max(last[3] - last[1], char.box[3] - char.box[1], 1.0)
            if char.box[0] - last[2] > LINE_GAP * height or char.box[2] < last[0]:
                runs.append(current)
                current = []
        current.append(char)
        if char.box is not None and not char.text.isspace():
            last = char.box
    runs.append(current)
    return [run for run in runs if any(c.box is not None and not c.text.isspace() for c in run)]


def _line(page: object, run: list[_Char], width: int, height: int, pdfium_c: object) -> Line | None:
    """One line: its text and the pixel box around its characters (PDF points mapped as PDFium renders)."""
    text = "".join(char.text for char in run).strip()
    boxes = [char.box for char in run if char.box is not None and not char.text.isspace()]
    if not text or not boxes:
        return None
    corners = []
    top_left = (min(b[0] for b in boxes), max(b[3] for b in boxes))
    bottom_right = (max(b[2] for b in boxes), min(b[1] for b in boxes))
    for x, y in (top_left, bottom_right):
        device_x, device_y = ctypes.c_int(), ctypes.c_int()
        pdfium_c.FPDF_PageToDevice(  # type: ignore[attr-defined]
            page, 0, 0, width, height, 0, x, y, ctypes.byref(device_x), ctypes.byref(device_y)
        )
        corners.append((device_x.value, device_y.value))
    (ax, ay), (bx, by) = corners
    x0, x1 = sorted((min(max(ax, 0), width), min(max(bx, 0), width)))
    y0, y1 = sorted((min(max(ay, 0), height), min(max(by, 0), height)))
    return Line(" ".join(text.split()), (x0, y0, max(x1, x0 + 1), max(y1, y0 + 1)), 1.0)


def _image_cover(page: pdfium.PdfPage, area: float) -> float:
    """The share of the page's area that its largest image covers (0 when it has none)."""
    import pypdfium2.raw as pdfium_c

    largest = 0.0
    for obj in page.get_objects(filter=[pdfium_c.FPDF_PAGEOBJ_IMAGE], max_depth=3):
        left, bottom, right, top = obj.get_bounds()
        largest = max(largest, (right - left) * (top - bottom))
    return largest / area if area > 0 else 0.0


def _problem(chars: int, bad: int, invisible: int, image_cover: object) -> str | None:
    """Why a layer of ``chars`` characters cannot replace OCR, or ``None``; ``image_cover()`` is called
    only when needed (it walks the page's objects)."""
    if chars == 0:
        return "no text layer"
    if bad > GARBAGE_SHARE * chars:
        return f"{bad} of its {chars} characters have no Unicode mapping"
    if invisible > INVISIBLE_SHARE * chars:
        return "its text layer is invisible (an earlier OCR pass)"
    if chars < SCAN_MAX_CHARS and image_cover() >= SCAN_COVER:  # type: ignore[operator]
        return f"a scanned page with only {chars} characters of text"
    return None
