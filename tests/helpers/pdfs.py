"""PDFs for the text-layer tests, written with pikepdf: born-digital pages, scans, and layers to distrust.

Text is drawn in the standard Helvetica font (no font file needed); positions are PDF points from the
bottom-left corner of a US Letter page (612 × 792 pt).
"""

from __future__ import annotations

import zlib
from pathlib import Path

import pikepdf
from pikepdf import Dictionary, Name
from PIL import Image

LETTER = (612, 792)


def _font(pdf: pikepdf.Pdf, differences: bool) -> pikepdf.Object:
    font = Dictionary(Type=Name.Font, Subtype=Name.Type1, BaseFont=Name.Helvetica)
    if differences:  # every code drawn as a glyph with a made-up name: no Unicode value can be derived
        font.Encoding = Dictionary(
            Type=Name.Encoding, Differences=pikepdf.Array([32, *(Name(f"/g{n}") for n in range(32, 127))])
        )
    else:
        font.Encoding = Name.WinAnsiEncoding
    return pdf.make_indirect(font)


def _image(pdf: pikepdf.Pdf, image: Image.Image) -> pikepdf.Object:
    rgb = image.convert("RGB")
    return pdf.make_stream(
        zlib.compress(rgb.tobytes()),
        Type=Name.XObject,
        Subtype=Name.Image,
        Width=rgb.width,
        Height=rgb.height,
        ColorSpace=Name.DeviceRGB,
        BitsPerComponent=8,
        Filter=Name.FlateDecode,
    )


def add_page(
    pdf: pikepdf.Pdf,
    lines: list[tuple[float, float, float, str]] = (),
    *,
    scan: Image.Image | None = None,
    invisible: bool = False,
    unmapped: bool = False,
) -> None:
    """Append a Letter page: an optional full-page ``scan`` image, then ``lines`` of text.

    Args:
        pdf: the document to add to.
        lines: ``(x, y, size, text)`` in points; text in Latin-1.
        scan: an image drawn over the whole page first.
        invisible: draw the text in render mode 3 (invisible), as OCR tools hide their layer.
        unmapped: draw the text in a font whose glyph names map to no Unicode value.
    """
    page = pdf.add_blank_page(page_size=LETTER)
    resources = Dictionary(Font=Dictionary(F1=_font(pdf, unmapped)))
    ops = []
    if scan is not None:
        resources.XObject = Dictionary(Im1=_image(pdf, scan))
        ops.append(f"q {LETTER[0]} 0 0 {LETTER[1]} 0 0 cm /Im1 Do Q")
    mode = 3 if invisible else 0
    for x, y, size, text in lines:
        escaped = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
        ops.append(f"BT {mode} Tr /F1 {size} Tf {x} {y} Td ({escaped}) Tj ET")
    page.Resources = resources
    page.Contents = pdf.make_stream("\n".join(ops).encode("latin-1"))


INVOICE = [
    (72, 720, 20, "Invoice"),
    (72, 690, 11, "Invoice number: INV-7Q3X-0O0O-l1I1"),
    (72, 670, 11, "Date: 2026-03-14"),
    (72, 630, 11, "Please pay within 30 days of the invoice date to the account below."),
]
"""A born-digital invoice whose code ``INV-7Q3X-0O0O-l1I1`` OCR misreads (0/O, l/1/I)."""


def write_invoice(path: Path, pages: int = 1) -> Path:
    """A born-digital PDF of ``pages`` copies of :data:`INVOICE`."""
    with pikepdf.new() as pdf:
        for _ in range(pages):
            add_page(pdf, INVOICE)
        pdf.save(path)
    return path


def write_pdf(path: Path, pages: list[dict]) -> Path:
    """A PDF with one page per keyword dict of :func:`add_page`."""
    with pikepdf.new() as pdf:
        for page in pages:
            add_page(pdf, **page)
        pdf.save(path)
    return path
