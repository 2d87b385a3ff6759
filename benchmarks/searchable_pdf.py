"""Searchable PDF output on real scans: write time, size, and how well the extracted text matches the result.

Usage: ``python benchmarks/searchable_pdf.py [FOLDER]`` from the repository root (default:
``shared/eval/dev``). Reads every image of FOLDER with the embedded engine (loaded once), writes its
searchable PDF into a temporary folder, extracts the text back with pypdfium2 and prints, over the pages:
the median seconds to build the PDF, the median size of the PDF over the source's, and the median and
largest CER of the extracted text against the result's own text (both normalised as ``textdrop bench`` does).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pypdfium2 as pdfium

from textdrop.bench import error_rates, normalise
from textdrop.engine import recognize
from textdrop.engine.documents.pdfout import searchable_pdf
from textdrop.engine.registry import create_engine

SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff"}


def main() -> None:
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("shared/eval/dev")
    images = sorted(p for p in folder.iterdir() if p.suffix.lower() in SUFFIXES)
    seconds, ratios, cers = [], [], []
    with tempfile.TemporaryDirectory() as out, create_engine("rapid") as engine:
        for image in images:
            result = recognize(image, engine=engine)
            started = time.perf_counter()
            data = searchable_pdf(result, image)
            seconds.append(time.perf_counter() - started)
            target = Path(out) / (image.name + ".pdf")
            target.write_bytes(data)
            ratios.append(len(data) / image.stat().st_size)
            pdf = pdfium.PdfDocument(target)
            text = "\n".join(pdf[i].get_textpage().get_text_range() for i in range(len(pdf)))
            pdf.close()
            cers.append(error_rates(normalise(result.text), normalise(text))[0])
    print(f"{len(images)} pages from {folder}")
    print(f"build: median {statistics.median(seconds) * 1000:.0f} ms/page")
    print(f"size:  median {statistics.median(ratios):.2f}x the source file")
    print(f"CER extracted vs result text: median {statistics.median(cers):.4f}, max {max(cers):.4f}")


if __name__ == "__main__":
    main()
