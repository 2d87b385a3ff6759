"""Tests of engine.documents.sources: every format to RGB pages, orientation, transparency, limits, errors."""

from __future__ import annotations

import hashlib
import io
import os
import time
import warnings
from pathlib import Path

import pillow_heif
import pypdfium2 as pdfium
import pytest
from PIL import Image

from tests.helpers.badfiles import (
    write_bomb_png,
    write_corrupt_pdf,
    write_encrypted_pdf,
    write_no_page_pdf,
    write_pdf,
    write_text_as_image,
    write_truncated_jpeg,
)
from textdrop.engine.documents.sources import SUPPORTED_SUFFIXES, SourceLimits, open_source, sha256_file
from textdrop.engine.errors import (
    EncryptedPdfError,
    FileAccessError,
    InputFileError,
    LimitExceededError,
    TextdropError,
)


def read_pages(source, limits: SourceLimits | None = None) -> list[Image.Image]:
    with open_source(source, limits) as doc:
        pages = list(doc.pages())
    assert len(pages) == doc.page_count
    assert all(page.mode == "RGB" for page in pages)
    return pages


def refuse(path: Path, error: type[TextdropError], limits: SourceLimits | None = None) -> TextdropError:
    """Open and read ``path``, expecting ``error``; the file must be left exactly as it was."""
    before = path.read_bytes() if path.is_file() and os.access(path, os.R_OK) else None
    with pytest.raises(error) as caught:
        read_pages(path, limits)
    message = str(caught.value)
    assert "\n" not in message
    assert path.name in message
    if before is not None:
        assert path.read_bytes() == before
    return caught.value


def save(image: Image.Image, path: Path, **options) -> Path:
    image.save(path, **options)
    return path


@pytest.mark.parametrize(
    ("suffix", "options"),
    [(".png", {}), (".jpg", {"quality": 95}), (".webp", {"lossless": True}), (".bmp", {}), (".gif", {})],
)
def test_image_formats_decode_to_rgb_pages(tmp_path: Path, suffix: str, options: dict) -> None:
    path = save(Image.new("RGB", (64, 48), (200, 30, 30)), tmp_path / f"scan{suffix}", **options)
    with open_source(path) as doc:
        assert (doc.name, doc.page_count) == (path.name, 1)
        assert doc.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
        (page,) = doc.pages()
    assert (page.mode, page.size) == ("RGB", (64, 48))
    red, green, _ = page.getpixel((10, 10))
    assert red > 150 and green < 80


def test_heic_decodes(tmp_path: Path) -> None:
    path = tmp_path / "photo.heic"
    pillow_heif.from_pillow(Image.new("RGB", (64, 48), (30, 30, 200))).save(path, quality=95)
    (page,) = read_pages(path)
    assert page.size == (64, 48)
    assert page.getpixel((10, 10))[2] > 150


def test_multipage_tiff_yields_every_frame(tmp_path: Path) -> None:
    frames = [Image.new("L", (30 + 10 * i, 20), 255) for i in range(3)]
    path = save(frames[0], tmp_path / "fax.tiff", save_all=True, append_images=frames[1:])
    assert [page.size for page in read_pages(path)] == [(30, 20), (40, 20), (50, 20)]


def test_animated_gif_gives_first_frame_only(tmp_path: Path) -> None:
    frames = [Image.new("RGB", (20, 10), color) for color in ("red", "green", "blue")]
    path = save(frames[0], tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    assert Image.open(path).n_frames == 3
    assert [page.size for page in read_pages(path)] == [(20, 10)]


def test_pdf_pages_render_at_dpi(tmp_path: Path) -> None:
    pdf = pdfium.PdfDocument.new()
    pdf.new_page(612, 792)
    pdf.new_page(300, 200)
    pdf.save(tmp_path / "doc.pdf")
    pages = read_pages(tmp_path / "doc.pdf", SourceLimits(pdf_dpi=100))
    assert [page.size for page in pages] == [(850, 1100), (417, 278)]  # ceil(points × 100 / 72)
    assert pages[0].getpixel((5, 5)) == (255, 255, 255)


def test_hand_written_pdf_at_default_dpi(tmp_path: Path) -> None:
    assert [page.size for page in read_pages(write_pdf(tmp_path / "letter.pdf", 2))] == [(1700, 2200)] * 2


def test_pdf_pages_are_rendered_one_at_a_time(tmp_path: Path) -> None:
    pdf = pdfium.PdfDocument.new()
    pdf.new_page(200, 100)
    pdf.new_page(2000, 1000)
    pdf.save(tmp_path / "mixed.pdf")
    with open_source(tmp_path / "mixed.pdf", SourceLimits(pdf_dpi=72, max_page_pixels=100_000)) as doc:
        pages = doc.pages()
        assert next(pages).size == (200, 100)
        with pytest.raises(LimitExceededError, match=r"page 2.*2000×1000.*pdf_dpi"):
            next(pages)


def test_format_is_decided_by_content_not_suffix(tmp_path: Path) -> None:
    png_named_pdf = save(Image.new("RGB", (8, 6)), tmp_path / "image.pdf", format="PNG")
    pdf_named_png = write_pdf(tmp_path / "document.png", 1)
    assert read_pages(png_named_pdf)[0].size == (8, 6)
    assert read_pages(pdf_named_png, SourceLimits(pdf_dpi=72))[0].size == (612, 792)


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    image = Image.new("RGB", (40, 20), (0, 0, 255))
    image.paste((255, 0, 0), (0, 0, 20, 20))  # left half red
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated: turn 90° clockwise to show
    path = save(image, tmp_path / "phone.jpg", exif=exif.tobytes(), quality=95)
    (page,) = read_pages(path)
    assert page.size == (20, 40)
    assert page.getpixel((10, 5))[0] > 200  # the left half is now on top
    assert page.getpixel((10, 35))[2] > 200


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        (Image.new("RGBA", (4, 4), (0, 0, 0, 0)), 255),
        (Image.new("RGBA", (4, 4), (0, 0, 0, 128)), 127),
        (Image.new("LA", (4, 4), (0, 0)), 255),
        (Image.new("1", (4, 4), 1), 255),
        (Image.new("L", (4, 4), 100), 100),
        (Image.new("CMYK", (4, 4), (0, 0, 0, 0)), 255),
        (Image.new("I;16", (4, 4), 65535), 255),
        (Image.new("I;16", (4, 4), 32896), 128),
        (Image.new("I", (4, 4), 65535), 255),
        (Image.new("I", (4, 4), 200), 200),
        (Image.new("F", (4, 4), 1.0), 255),
    ],
    ids=lambda value: value.mode if isinstance(value, Image.Image) else str(value),
)
def test_modes_become_rgb_with_white_under_transparency(image: Image.Image, expected: int) -> None:
    (page,) = read_pages(image)
    assert all(abs(channel - expected) <= 1 for channel in page.getpixel((1, 1)))


def test_transparent_png_files_composite_onto_white(tmp_path: Path) -> None:
    rgba = save(Image.new("RGBA", (10, 10), (0, 0, 0, 0)), tmp_path / "shot.png")
    palette = Image.new("P", (10, 10), 0)
    palette.putpalette([0, 0, 0] * 256)
    paletted = save(palette, tmp_path / "palette.png", transparency=0)
    for path in (rgba, paletted):
        assert read_pages(path)[0].getpixel((5, 5)) == (255, 255, 255)


def test_sixteen_bit_files_scale_to_eight_bit(tmp_path: Path) -> None:
    grey = save(Image.new("I;16", (6, 6), 65535), tmp_path / "scan16.png")
    floats = save(Image.new("F", (6, 6), 0.5), tmp_path / "float.tiff")
    assert read_pages(grey)[0].getpixel((1, 1)) == (255, 255, 255)
    assert read_pages(floats)[0].getpixel((1, 1))[0] in (127, 128)


def test_bytes_input(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (12, 9), "white").save(buffer, "PNG")
    data = buffer.getvalue()
    with open_source(data) as doc:
        assert (doc.name, doc.sha256) == (None, hashlib.sha256(data).hexdigest())
        assert [page.size for page in doc.pages()] == [(12, 9)]
    pdf = write_pdf(tmp_path / "doc.pdf", 2).read_bytes()
    assert len(read_pages(pdf, SourceLimits(pdf_dpi=36))) == 2


def test_pil_input_is_not_modified() -> None:
    image = Image.new("RGBA", (5, 7), (0, 0, 0, 0))
    with open_source(image) as doc:
        assert (doc.name, doc.sha256, doc.page_count) == (None, None, 1)
        (page,) = doc.pages()
    assert (page.mode, page.size, page.getpixel((0, 0))) == ("RGB", (5, 7), (255, 255, 255))
    assert (image.mode, image.getpixel((0, 0))) == ("RGBA", (0, 0, 0, 0))


def test_sha256_file_matches_hashlib(tmp_path: Path) -> None:
    path = tmp_path / "big.bin"
    path.write_bytes(os.urandom(3 * 1024 * 1024 + 17))  # several 1 MiB chunks and a partial one
    assert sha256_file(path) == hashlib.sha256(path.read_bytes()).hexdigest()


def test_closed_document_refuses_pages(tmp_path: Path) -> None:
    with open_source(write_pdf(tmp_path / "doc.pdf", 1)) as doc:
        pass
    with pytest.raises(ValueError, match="closed"):
        next(doc.pages())


def test_supported_suffixes() -> None:
    assert {".png", ".jpeg", ".tiff", ".heic", ".pdf"} <= SUPPORTED_SUFFIXES
    assert all(suffix == suffix.lower() and suffix.startswith(".") for suffix in SUPPORTED_SUFFIXES)


# Errors


def test_missing_file(tmp_path: Path) -> None:
    refuse(tmp_path / "gone.png", FileAccessError)
    (tmp_path / "file.txt").write_text("x")
    refuse(tmp_path / "file.txt" / "inside.png", FileAccessError)


def test_directory_named_like_an_image(tmp_path: Path) -> None:
    (tmp_path / "x.png").mkdir()
    assert "folder" in str(refuse(tmp_path / "x.png", FileAccessError))


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_named_pipe_is_refused_without_blocking(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.png")
    refuse(tmp_path / "pipe.png", FileAccessError)


def test_unreadable_file(tmp_path: Path) -> None:
    path = save(Image.new("RGB", (4, 4)), tmp_path / "secret.png")
    path.chmod(0)
    try:
        if os.access(path, os.R_OK):
            pytest.skip("this user (root?) can read a file with mode 000")
        assert "permission" in str(refuse(path, FileAccessError))
    finally:
        path.chmod(0o600)


def test_zero_byte_file(tmp_path: Path) -> None:
    (tmp_path / "empty.jpg").touch()
    assert "empty (0 bytes)" in str(refuse(tmp_path / "empty.jpg", InputFileError))
    with pytest.raises(InputFileError, match="empty"):
        open_source(b"")


def test_file_over_max_file_mb(tmp_path: Path) -> None:
    path = save(Image.frombytes("L", (64, 64), os.urandom(64 * 64)), tmp_path / "big.png")
    assert path.stat().st_size > 0.001 * 1024 * 1024
    error = refuse(path, LimitExceededError, SourceLimits(max_file_mb=0.001))
    assert "max_file_mb" in str(error)
    with pytest.raises(LimitExceededError):
        open_source(path.read_bytes(), SourceLimits(max_file_mb=0.001))


def test_truncated_jpeg(tmp_path: Path) -> None:
    error = refuse(write_truncated_jpeg(tmp_path / "cut.jpg"), InputFileError)
    assert "truncated or corrupt" in str(error)


def test_text_file_named_png(tmp_path: Path) -> None:
    error = refuse(write_text_as_image(tmp_path / "notes.png"), InputFileError)
    assert "not an image or PDF" in str(error)
    assert "HEIC" in str(error)


def test_decompression_bomb_is_refused_without_decoding(tmp_path: Path) -> None:
    path = write_bomb_png(tmp_path / "bomb.png", 40_000, 40_000)
    start = time.perf_counter()
    error = refuse(path, LimitExceededError)
    assert time.perf_counter() - start < 1.0
    assert "max_page_pixels" in str(error)


def test_image_over_max_page_pixels(tmp_path: Path) -> None:
    path = save(Image.new("RGB", (20, 20)), tmp_path / "small.png")
    assert "max_page_pixels" in str(refuse(path, LimitExceededError, SourceLimits(max_page_pixels=399)))
    assert read_pages(path, SourceLimits(max_page_pixels=400))[0].size == (20, 20)


def test_tiff_frame_over_max_page_pixels_is_refused_before_decoding(tmp_path: Path) -> None:
    frames = [Image.new("L", (10, 10)), Image.new("L", (30, 30))]
    path = save(frames[0], tmp_path / "mixed.tiff", save_all=True, append_images=frames[1:])
    with open_source(path, SourceLimits(max_page_pixels=500)) as doc:
        pages = doc.pages()
        assert next(pages).size == (10, 10)
        with pytest.raises(LimitExceededError, match=r"page 2.*30×30"):
            next(pages)


@pytest.mark.parametrize(("side", "max_pixels"), [(10_000, 100_000_000), (13_500, 200_000_000)])
def test_pillow_guard_follows_our_limit(tmp_path: Path, side: int, max_pixels: int) -> None:
    """Headers above Pillow's own default bomb thresholds open (no warning, no error) within our limit."""
    saved = Image.MAX_IMAGE_PIXELS
    assert side * side > saved  # Pillow alone warns above its limit and refuses above twice that
    path = write_bomb_png(tmp_path / "huge.png", side, side)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with open_source(path, SourceLimits(max_page_pixels=max_pixels)) as doc:
            assert doc.page_count == 1
    assert saved == Image.MAX_IMAGE_PIXELS


def test_tiff_with_too_many_frames(tmp_path: Path) -> None:
    frames = [Image.new("L", (8, 8)) for _ in range(3)]
    path = save(frames[0], tmp_path / "long.tiff", save_all=True, append_images=frames[1:])
    assert "max_pages" in str(refuse(path, LimitExceededError, SourceLimits(max_pages=2)))


def test_pdf_with_too_many_pages(tmp_path: Path) -> None:
    path = write_pdf(tmp_path / "long.pdf", 3)
    assert "3 pages" in str(refuse(path, LimitExceededError, SourceLimits(max_pages=2)))


def test_encrypted_pdf(tmp_path: Path) -> None:
    path = write_encrypted_pdf(tmp_path / "locked.pdf")
    with pytest.raises(pdfium.PdfiumError, match="password"):
        pdfium.PdfDocument(path)  # the fixture really is refused by PDFium
    assert "qpdf --decrypt" in str(refuse(path, EncryptedPdfError))


def test_pdf_without_pages(tmp_path: Path) -> None:
    locked = write_encrypted_pdf(tmp_path / "locked.pdf")
    refuse(locked, EncryptedPdfError)  # leaves PDFium's last error at "password"
    assert "no pages" in str(refuse(write_no_page_pdf(tmp_path / "blank.pdf"), InputFileError))
    refuse(locked, EncryptedPdfError)


def test_corrupt_pdf(tmp_path: Path) -> None:
    refuse(write_corrupt_pdf(tmp_path / "broken.pdf"), InputFileError)


def test_truncated_pdf(tmp_path: Path) -> None:
    data = write_pdf(tmp_path / "full.pdf", 2).read_bytes()
    (tmp_path / "half.pdf").write_bytes(data[: len(data) // 2])
    refuse(tmp_path / "half.pdf", InputFileError)


def test_limits_are_validated() -> None:
    with pytest.raises(ValueError):
        SourceLimits(pdf_dpi=20)
    with pytest.raises(ValueError):
        SourceLimits(max_file_mb=0)
