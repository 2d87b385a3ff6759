"""Text layer versus OCR on a born-digital PDF: seconds per page (medians) and whether the text is exact.

Usage: ``python benchmarks/pdf_text.py [PAGES]`` (default 10) from the repository root. Writes a PDF of
PAGES copies of the test invoice (``tests/helpers/pdfs.py``), reads it with ``pdf_text = "layer"`` and with
``"ocr"`` on the embedded engine (loaded once, not timed), and prints per-page medians, their ratio, and
whether the invoice code ``INV-7Q3X-0O0O-l1I1`` came out intact.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.helpers.pdfs import write_invoice
from textdrop.engine import RecognizeOptions, recognize
from textdrop.engine.registry import create_engine

CODE = "INV-7Q3X-0O0O-l1I1"


def main() -> None:
    pages = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    with tempfile.TemporaryDirectory() as folder, create_engine("rapid") as engine:
        pdf = write_invoice(Path(folder) / "invoice.pdf", pages=pages)
        figures = {}
        for mode in ("layer", "ocr"):
            result = recognize(pdf, engine=engine, options=RecognizeOptions(pdf_text=mode))
            per_page = statistics.median(page.seconds for page in result.pages)
            whole = (result.seconds - result.load_seconds) / pages
            exact = all(CODE in page.text for page in result.pages)
            figures[mode] = per_page
            print(
                f"{mode:5}: median {per_page * 1000:8.1f} ms/page (page only), {whole * 1000:8.1f} ms/page "
                f"(document, opening included), code exact: {exact}"
            )
            if not exact:
                read = [line for line in result.pages[0].text.splitlines() if "INV" in line]
                print(f"       read as: {read}")
        print(f"ocr / layer: {figures['ocr'] / figures['layer']:.0f}x")


if __name__ == "__main__":
    main()
