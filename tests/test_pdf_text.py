"""PDF text layers: born-digital pages are read from their layer exactly; scans and bad layers are OCRed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pikepdf
import pytest
from PIL import Image, ImageDraw

from tests.helpers.fake_engines import FakeEngine
from tests.helpers.pdfs import INVOICE, add_page, write_invoice, write_pdf
from textdrop.cli import run
from textdrop.engine import LAYER_ENGINE, RecognizeOptions, recognize
from textdrop.engine.documents.sidecar import read_metadata
from textdrop.engine.documents.sources import SourceLimits, open_source


def _scan() -> Image.Image:
    image = Image.new("RGB", (850, 1100), "white")
    ImageDraw.Draw(image).text((100, 100), "scanned words", fill="black")
    return image


@pytest.fixture
def mixed(tmp_path: Path) -> Path:
    """Page 1 born-digital; 2 a scan; 3 a scan with a page number; 4 a scan with an invisible OCR layer;
    5 text in a font whose glyphs map to no Unicode value."""
    return write_pdf(
        tmp_path / "mixed.pdf",
        [
            {"lines": INVOICE},
            {"scan": _scan()},
            {"scan": _scan(), "lines": [(300, 30, 9, "Page 3")]},
            {"scan": _scan(), "lines": INVOICE, "invisible": True},
            {"lines": INVOICE, "unmapped": True},
        ],
    )


def test_a_born_digital_pdf_is_read_from_its_layer_exactly_without_ocr(tmp_path: Path, fake_engine):
    result = recognize(write_invoice(tmp_path / "invoice.pdf", pages=2), engine="fake")
    assert FakeEngine.pages == []  # no page was rendered for the engine
    assert result.engine == LAYER_ENGINE and result.model is None
    assert result.text_sources() == {"layer": [1, 2]}
    for page in result.pages:
        assert "Invoice number: INV-7Q3X-0O0O-l1I1" in page.text.splitlines()
        assert "Please pay within 30 days of the invoice date to the account below." in page.markdown
        assert all(line.confidence == 1.0 for line in page.lines)


def test_scans_and_doubtful_layers_are_ocred_page_by_page(mixed: Path, fake_engine):
    result = recognize(mixed, engine="fake")
    assert result.text_sources() == {"layer": [1], "ocr": [2, 3, 4, 5]}
    assert len(FakeEngine.pages) == 4
    assert result.engine == "fake"  # an engine produced some of the text
    assert "INV-7Q3X-0O0O-l1I1" in result.pages[0].text
    assert result.pages[1].text.startswith("fake page")


def test_problems_of_each_layer(mixed: Path):
    with open_source(mixed) as document:
        problems = [document.text_layer(index).problem for index in range(document.page_count)]
    assert problems[0] is None
    assert problems[1] == "no text layer"
    assert problems[2] == "a scanned page with only 5 characters of text"
    assert "invisible" in problems[3]
    assert "no Unicode mapping" in problems[4]


def test_pdf_text_ocr_never_reads_a_layer_and_layer_never_ocrs(mixed: Path, fake_engine):
    ocr = recognize(mixed, engine="fake", options=RecognizeOptions(pdf_text="ocr"))
    assert ocr.text_sources() == {"ocr": [1, 2, 3, 4, 5]} and len(FakeEngine.pages) == 5
    FakeEngine.reset()
    layer = recognize(mixed, engine="fake", options=RecognizeOptions(pdf_text="layer"))
    assert FakeEngine.pages == []
    assert layer.text_sources() == {"layer": [1, 2, 3, 4, 5]}
    assert layer.pages[1].text == "" and layer.pages[3].text.count("INV-7Q3X-0O0O-l1I1") == 1
    assert layer.warnings == [
        f"page {n} was read from its text layer only (pdf_text = layer): {problem}"
        for n, problem in [
            (2, "no text layer"),
            (3, "a scanned page with only 5 characters of text"),
            (4, "its text layer is invisible (an earlier OCR pass)"),
            (5, "109 of its 109 characters have no Unicode mapping"),
        ]
    ]


@pytest.mark.parametrize("rotate", [0, 90])
def test_layer_boxes_are_in_the_pixels_of_the_rendered_page(tmp_path: Path, rotate: int):
    with pikepdf.new() as pdf:
        add_page(pdf, INVOICE)
        pdf.pages[0].CropBox = [36, 36, 576, 756]
        pdf.pages[0].Rotate = rotate
        pdf.save(tmp_path / "cropped.pdf")
    with open_source(tmp_path / "cropped.pdf", SourceLimits(pdf_dpi=100)) as document:
        layer = document.text_layer(0)
        ink = np.asarray(document.page(0).convert("L")) < 128
    assert (layer.width, layer.height) == (ink.shape[1], ink.shape[0])
    covered = np.zeros_like(ink)
    for line in layer.lines:
        x0, y0, x1, y1 = line.bbox
        assert ink[y0:y1, x0:x1].sum() > 0, line
        covered[max(y0 - 2, 0) : y1 + 2, max(x0 - 2, 0) : x1 + 2] = True
    assert ink[~covered].sum() == 0  # every dark pixel lies in a line's box


def test_cli_front_matter_records_the_text_source_per_page(mixed: Path, tmp_path: Path, fake_engine):
    assert run(["ocr", str(mixed), "--engine", "fake"]) == 0
    metadata = read_metadata(mixed.with_name("mixed.pdf.md"))
    assert metadata["pdf_text"] == {"layer": [1], "ocr": [2, 3, 4, 5]}
    assert metadata["engine"] == "fake"
    invoice = write_invoice(tmp_path / "invoice.pdf")
    assert run(["ocr", str(invoice), "--engine", "fake"]) == 0
    metadata = read_metadata(invoice.with_name("invoice.pdf.md"))
    assert metadata["engine"] == LAYER_ENGINE and metadata["pdf_text"] == {"layer": [1]}
    assert "INV-7Q3X-0O0O-l1I1" in invoice.with_name("invoice.pdf.md").read_text(encoding="utf-8")
    assert run(["ocr", str(invoice), "--engine", "fake", "--pdf-text", "ocr", "--force"]) == 0
    assert read_metadata(invoice.with_name("invoice.pdf.md"))["pdf_text"] == {"ocr": [1]}


def test_images_have_no_text_source(tmp_path: Path, fake_engine):
    _scan().save(tmp_path / "scan.png")
    result = recognize(tmp_path / "scan.png", engine="fake")
    assert result.pages[0].text_source is None and result.text_sources() == {}
