"""Writers of hostile and broken input files, shared by the test modules.

Each function writes one file at ``path`` (a :class:`pathlib.Path`) and returns that path.
"""

from __future__ import annotations

import io
import random
import struct
import zlib
from pathlib import Path

from PIL import Image


def minimal_pdf(objects: list[bytes], trailer: bytes = b"") -> bytes:
    """A PDF whose objects ``1 0 obj``.. are ``objects`` in order (object 1 must be the catalog).

    Args:
        objects: the body of each object, e.g. ``b"<< /Type /Catalog /Pages 2 0 R >>"``.
        trailer: extra trailer dictionary entries, e.g. ``b"/Encrypt 4 0 R"``.
    """
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R %s >>\n" % (len(objects) + 1, trailer)
    out += b"startxref\n%d\n%%%%EOF\n" % xref
    return bytes(out)


def _pages_pdf(count: int, extra: list[bytes] | None = None, trailer: bytes = b"") -> bytes:
    """A PDF of ``count`` blank US Letter pages (objects 3..), then the ``extra`` objects."""
    kids = b" ".join(b"%d 0 R" % (3 + i) for i in range(count))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, count),
        *[b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>"] * count,
        *(extra or []),
    ]
    return minimal_pdf(objects, trailer)


def write_pdf(path: Path, pages: int) -> Path:
    """A valid PDF of ``pages`` blank 612×792 pt (US Letter) pages."""
    path.write_bytes(_pages_pdf(pages))
    return path


def write_no_page_pdf(path: Path) -> Path:
    """A well-formed PDF whose page tree is empty (``/Count 0``)."""
    path.write_bytes(_pages_pdf(0))
    return path


def write_encrypted_pdf(path: Path) -> Path:
    """A PDF with a Standard security handler whose user password is not empty (PDFium asks for it)."""
    number = 4  # the /Encrypt dictionary follows the catalog, page tree and one page
    encrypt = b"<< /Filter /Standard /V 1 /R 2 /O <%s> /U <%s> /P -4 >>" % (b"11" * 32, b"22" * 32)
    trailer = b"/Encrypt %d 0 R /ID [<%s> <%s>]" % (number, b"ab" * 16, b"ab" * 16)
    path.write_bytes(_pages_pdf(1, [encrypt], trailer))
    return path


def write_corrupt_pdf(path: Path) -> Path:
    """A file that starts like a PDF and then holds garbage."""
    path.write_bytes(b"%PDF-1.7\n" + bytes(random.Random(0).randrange(256) for _ in range(2000)))
    return path


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def write_bomb_png(path: Path, width: int = 40_000, height: int = 40_000) -> Path:
    """A tiny PNG whose header claims ``width``×``height`` 8-bit grey pixels (a decompression bomb)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    rows = zlib.compress(b"\x00" * (width + 1))  # one row of data; the rest is missing
    data = b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", rows)
    path.write_bytes(data + _png_chunk(b"IEND", b""))
    return path


def write_truncated_jpeg(path: Path, size: tuple[int, int] = (256, 256)) -> Path:
    """A noisy JPEG cut off halfway through its image data."""
    noise = Image.frombytes("RGB", size, random.Random(0).randbytes(size[0] * size[1] * 3))
    buffer = io.BytesIO()
    noise.save(buffer, "JPEG", quality=90)
    data = buffer.getvalue()
    path.write_bytes(data[: len(data) // 2])
    return path


def write_text_as_image(path: Path) -> Path:
    """A plain text file (give it an image suffix such as ``.png``)."""
    path.write_text("This is not an image.\n", encoding="utf-8")
    return path
