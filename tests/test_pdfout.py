"""Searchable PDF output: the source's pixels unchanged, an invisible text layer that extracts as the text."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pikepdf
import pypdfium2 as pdfium
import pytest
from PIL import Image, ImageDraw, ImageFont

from tests.helpers.fake_engines import FakeEngine
from tests.helpers.fonts import font_path
from tests.helpers.pdfs import INVOICE, add_page
from textdrop.bench import error_rates, normalise
from textdrop.cli import run
from textdrop.engine.documents.pdfout import read_metadata
from textdrop.engine.documents.sidecar import find_up_to_date, sidecar_path, write_sidecar
from textdrop.engine.documents.sources import sha256_file
from textdrop.engine.errors import ExitCode
from textdrop.engine.result import Line, OcrResult, PageResult

REPORT = [
    "Quarterly report for the board",
    "Revenue grew by 12 percent in the third quarter.",
    "Costs stayed flat while headcount rose slightly.",
    "Invoice INV-2231 was paid on 14 March 2026.",
]


def write_scan(path: Path, lines: list[str] = REPORT, **save: object) -> Path:
    image = Image.new("RGB", (1240, 120 + 60 * len(lines)), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.truetype(font_path("DejaVuSans.ttf"), 28)
    for index, text in enumerate(lines):
        draw.text((80, 60 + index * 60), text, font=font, fill=(20, 20, 20))
    image.save(path, **save)
    return path


def extracted(path: Path) -> list[str]:
    """The text of each page of a PDF, as PDFium extracts it (what a viewer's search and copy see)."""
    pdf = pdfium.PdfDocument(path)
    try:
        return [pdf[index].get_textpage().get_text_range() for index in range(len(pdf))]
    finally:
        pdf.close()


def text_in(path: Path, index: int, box: tuple[float, float, float, float]) -> str:
    """The text PDFium finds inside ``box`` (left, bottom, right, top; points) of page ``index``."""
    pdf = pdfium.PdfDocument(path)
    try:
        return pdf[index].get_textpage().get_text_bounded(*box)
    finally:
        pdf.close()


def result_for(source: Path, pages: list[PageResult]) -> OcrResult:
    return OcrResult(pages=pages, engine="rapid", source=source.name, sha256=sha256_file(source))


@pytest.mark.slow
def test_cli_pdf_extracts_as_the_sidecar_text_over_the_source_pixels(tmp_path: Path):
    scan = write_scan(tmp_path / "scan.png")
    assert run(["ocr", str(scan), "--engine", "rapid", "--format", "txt"]) == 0
    assert run(["ocr", str(scan), "--engine", "rapid", "--format", "pdf"]) == 0
    target = tmp_path / "scan.png.pdf"
    sidecar = (tmp_path / "scan.png.txt").read_text(encoding="utf-8")
    assert "INV-2231" in sidecar
    cer, _ = error_rates(normalise(sidecar), normalise(extracted(target)[0]))
    assert cer <= 0.02
    with pikepdf.open(target) as pdf:
        (image,) = (pikepdf.PdfImage(obj) for obj in pdf.pages[0].get_images().values())
        pixels = np.asarray(image.as_pil_image().convert("RGB"))
    assert np.array_equal(pixels, np.asarray(Image.open(scan).convert("RGB")))
    assert read_metadata(target)["sha256"] == sha256_file(scan)
    # up to date: a second run skips the file and leaves the PDF as it is
    before = target.read_bytes()
    assert run(["ocr", str(scan), "--engine", "rapid", "--format", "pdf"]) == 0
    assert target.read_bytes() == before


def test_a_jpeg_is_embedded_byte_for_byte(tmp_path: Path):
    scan = write_scan(tmp_path / "photo.jpg", quality=80)
    page = PageResult(1, 1240, 360, "x", "x", [Line("Quarterly report", (80, 60, 500, 95), 0.9)])
    target = write_sidecar(result_for(scan, [page]), scan, "pdf")
    with pikepdf.open(target) as pdf:
        (stream,) = pdf.pages[0].get_images().values()
        assert stream.Filter == pikepdf.Name.DCTDecode
        assert stream.read_raw_bytes() == scan.read_bytes()
    assert extracted(target) == ["Quarterly report"]


def test_a_grayscale_scan_stays_grayscale_and_lossless(tmp_path: Path):
    scan = tmp_path / "gray.png"
    write_scan(scan)
    Image.open(scan).convert("L").save(scan)
    page = PageResult(1, 1240, 360, "x", "x", [Line("Quarterly report", (80, 60, 500, 95), 0.9)])
    target = write_sidecar(result_for(scan, [page]), scan, "pdf")
    with pikepdf.open(target) as pdf:
        (stream,) = pdf.pages[0].get_images().values()
        assert stream.ColorSpace == pikepdf.Name.DeviceGray
        image = pikepdf.PdfImage(stream).as_pil_image()
    assert np.array_equal(np.asarray(image), np.asarray(Image.open(scan)))


@pytest.mark.parametrize("rotation", [0, 90, 180, 270])
def test_text_lies_over_its_line_on_an_image_read_turned(tmp_path: Path, rotation: int):
    """The engine turned the page by ``rotation`` to read it; the PDF keeps the image as it is, so the
    line's box (in upright pixels) must land where the line is on the unturned image."""
    scan = write_scan(tmp_path / "scan.png", dpi=(72, 72))  # 1 pixel = 1 point
    width, height = 1240, 360
    box = (80, 60, 500, 95)  # upright pixels
    upright = (width, height) if rotation in (0, 180) else (height, width)
    page = PageResult(1, *upright, "x", "x", [Line("Quarterly report", box, 0.9)], rotation=rotation)
    # the same box on the unturned image: undo the clockwise turn
    x0, y0, x1, y1 = box
    corners = {
        0: [(x0, y0), (x1, y1)],
        90: [(y0, height - x0), (y1, height - x1)],
        180: [(width - x0, height - y0), (width - x1, height - y1)],
        270: [(width - y0, x0), (width - y1, x1)],
    }[rotation]
    xs, ys = sorted(c[0] for c in corners), sorted(height - c[1] for c in corners)  # y up, in points
    target = write_sidecar(result_for(scan, [page]), scan, "pdf")
    assert text_in(target, 0, (xs[0] - 2, ys[0] - 2, xs[1] + 2, ys[1] + 2)) == "Quarterly report"
    assert text_in(target, 0, (xs[1] + 5, 0, width, height)) == ""
    with pikepdf.open(target) as pdf:  # the image is kept as it is and shown the right way up
        assert int(pdf.pages[0].obj.get("/Rotate", 0)) == rotation


def test_a_pdf_source_keeps_its_pages_and_gets_text_only_on_ocred_pages(tmp_path: Path):
    scan_image = Image.open(write_scan(tmp_path / "scan.png"))
    with pikepdf.new() as pdf:
        add_page(pdf, INVOICE)
        add_page(pdf, scan=scan_image)
        pdf.pages[1].CropBox = [36, 36, 576, 756]
        pdf.pages[1].Rotate = 90
        pdf.save(tmp_path / "mixed.pdf")
    source = tmp_path / "mixed.pdf"
    before = source.read_bytes()
    layer = PageResult(1, 1700, 2200, "x", "x", text_source="layer")
    # page 2 as rendered: the 540 x 720 pt crop box turned by 90°: 720 x 540 pt = 2000 x 1500 px at 200 dpi
    ocr = PageResult(2, 2000, 1500, "x", "x", [Line("Привет, 𝔸 world", (100, 200, 900, 260), 0.9)])
    ocr.text_source = "ocr"
    target = write_sidecar(result_for(source, [layer, ocr]), source, "pdf")
    assert source.read_bytes() == before
    first, second = extracted(target)
    assert first == extracted(source)[0]  # the born-digital page is untouched, its text not doubled
    assert second == "Привет, 𝔸 world"
    # displayed (x right, y down) px (100..900, 200..260) → points /200*72 → user space of the turned page:
    # across = y_shown, up = x_shown, from the crop box's corner (36, 36)
    left, bottom, right, top = 36 + 200 * 0.36, 36 + 100 * 0.36, 36 + 260 * 0.36, 36 + 900 * 0.36
    assert text_in(target, 1, (left - 2, bottom - 2, right + 2, top + 2)) == "Привет, 𝔸 world"


def test_pdf_naming_never_overwrites_a_foreign_file(tmp_path: Path):
    scan = write_scan(tmp_path / "scan.tif")
    foreign = tmp_path / "scan.tif.pdf"
    foreign.write_bytes(b"%PDF-1.4 someone else's file")
    page = PageResult(1, 1240, 360, "x", "x", [Line("Quarterly report", (80, 60, 500, 95), 0.9)])
    result = result_for(scan, [page])
    target = write_sidecar(result, scan, "pdf")
    assert target.name == "scan.tif.1.pdf"
    assert foreign.read_bytes() == b"%PDF-1.4 someone else's file"
    assert find_up_to_date(scan, sha256_file(scan), "pdf") == target
    assert sidecar_path(scan, "pdf") == target  # textdrop's own: rewritten in place next time
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".textdrop-")] == []


def test_a_vlm_page_without_boxes_is_still_searchable(tmp_path: Path):
    scan = write_scan(tmp_path / "scan.png")
    page = PageResult(1, 1240, 360, "# Report\n\nRevenue grew", "Report\n\nRevenue grew")
    target = write_sidecar(result_for(scan, [page]), scan, "pdf")
    assert extracted(target)[0].split() == ["Report", "Revenue", "grew"]


def test_stdout_cannot_print_a_pdf(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    scan = write_scan(tmp_path / "scan.png")
    assert run(["ocr", str(scan), "--stdout", "--format", "pdf"]) == ExitCode.USAGE
    assert "--stdout prints text, not a PDF" in capsys.readouterr().err
    assert not (tmp_path / "scan.png.pdf").exists()


def test_read_metadata_ignores_other_pdfs(tmp_path: Path):
    with pikepdf.new() as pdf:
        add_page(pdf, INVOICE)
        pdf.docinfo["/Producer"] = "textdrop 0.1.0"  # a producer name alone does not make it ours
        buffer = io.BytesIO()
        pdf.save(buffer)
    (tmp_path / "other.pdf").write_bytes(buffer.getvalue())
    assert read_metadata(tmp_path / "other.pdf") is None
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.7 garbage")
    assert read_metadata(tmp_path / "broken.pdf") is None


@pytest.fixture
def harness(tmp_path: Path, fake_engine):
    from tests.test_watch import Harness

    harness = Harness(tmp_path)
    yield harness
    harness.stop()
    harness.ledger.close()


def test_a_watched_folder_writes_md_and_pdf_and_never_reads_its_own_pdf(harness, tmp_path: Path, fake_engine):
    from tests.test_watch import folder, png, wait_until

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    png(inbox / "scan.png")
    harness.start(folder(inbox, outputs=("md", "pdf")))
    wait_until(lambda: (inbox / "scan.png.pdf").exists() and harness.done() == 1, what="the outputs")
    assert (inbox / "scan.png.md").exists()
    assert read_metadata(inbox / "scan.png.pdf")["source"] == "scan.png"
    harness.service.wait_idle(5)
    harness.stop()
    harness.start(folder(inbox, outputs=("md", "pdf")))  # a restart scans the folder: the PDF is there now
    harness.service.wait_idle(5)
    assert len(FakeEngine.pages) == 1, "the searchable PDF textdrop wrote is not read as a new scan"
    assert sorted(p.name for p in inbox.iterdir()) == ["scan.png", "scan.png.md", "scan.png.pdf"]


def test_folder_outputs_are_validated():
    from textdrop.watcher.service import FolderOptions

    assert FolderOptions(path=Path("/tmp/x")).outputs == ("md",)
    assert FolderOptions(path=Path("/tmp/x"), outputs=["txt", "pdf"]).checked_output == "pdf"
    with pytest.raises(ValueError, match="each output format once"):
        FolderOptions(path=Path("/tmp/x"), outputs=["md", "md"])
    with pytest.raises(ValueError):
        FolderOptions(path=Path("/tmp/x"), outputs=["docx"])
