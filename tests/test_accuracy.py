"""Accuracy of the real embedded engine on the bundled samples, by character error rate (CER).

Every ``assets/samples/<stem>.gt.txt`` is a test: the sample beside it is read with the embedded engine
and its text compared with the ground truth after NFKC and whitespace folding (and case folding for
samples flagged ``caseless`` in ``MANIFEST.tsv``, whose ground truth is upper case). The engine is
loaded once for the module; the whole module runs in about 20 s on two cores.
"""

from __future__ import annotations

import csv
import shutil
import unicodedata
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from PIL import Image
from rapidfuzz.distance import Levenshtein

from textdrop.cli import run
from textdrop.engine import recognize
from textdrop.engine.errors import ExitCode
from textdrop.engine.ocr.rapid import RapidEngine
from textdrop.engine.result import OcrResult

pytestmark = pytest.mark.slow

SAMPLES = Path(__file__).resolve().parent.parent / "assets" / "samples"
GT_SUFFIX = ".gt.txt"
GROUND_TRUTHS = sorted(SAMPLES.glob(f"*{GT_SUFFIX}"))
ROTATED = "tess_phototest-rotated-R"
UPRIGHT = "tess_phototest"

THRESHOLDS: dict[str, float] = {
    # Highest CER each sample may have: about twice the CER measured when the threshold was set, at
    # least 0.03, so that a real regression fails and noise across onnxruntime builds does not.
    "tess_phototest": 0.03,  # measured 0.0000: clean 200-dpi print
    "tess_phototest-rotated-R": 0.03,  # measured 0.0000: the same page scanned sideways
    "tess_8087_054_3B": 0.14,  # measured 0.069-0.071: 300-dpi book page, two columns, small type
    "sroie_058": 0.12,  # measured 0.0602: photographed receipt; GT from boxes, caseless
    "sroie_181": 0.03,  # measured 0.003-0.005: scanned receipt, caseless
}

PDF_DPI = 200
"""Resolution of the PDF made from a sample; also textdrop's default render resolution, so the page
comes back at the pixel size of the image it was made from."""


def stem_of(gt: Path) -> str:
    return gt.name.removesuffix(GT_SUFFIX)


def image_of(stem: str) -> Path:
    """The sample image beside ``<stem>.gt.txt`` (any suffix but the ground truth's)."""
    images = [p for p in SAMPLES.glob(f"{stem}.*") if not p.name.endswith(GT_SUFFIX) and p.stem == stem]
    assert len(images) == 1, f"expected one image for {stem} in {SAMPLES}, found {images}"
    return images[0]


def caseless_stems() -> set[str]:
    """Stems whose CER ignores case: ``caseless`` in MANIFEST.tsv's ``flags``, else every ``sroie_*``."""
    manifest = SAMPLES / "MANIFEST.tsv"
    if not manifest.is_file():
        return {stem_of(gt) for gt in GROUND_TRUTHS if stem_of(gt).startswith("sroie_")}
    with manifest.open(encoding="utf-8", newline="") as handle:
        rows = csv.DictReader(handle, delimiter="\t")
        return {
            row["stem"] for row in rows if "caseless" in (row.get("flags") or "").replace(",", " ").split()
        }


def normalize(text: str, caseless: bool = False) -> str:
    """NFKC, runs of whitespace (newlines and form feeds included) folded to one space, ends trimmed."""
    text = " ".join(unicodedata.normalize("NFKC", text).split())
    return text.casefold() if caseless else text


def cer(hypothesis: str, reference: str, caseless: bool = False) -> float:
    """Character error rate: edit distance over the length of the (normalized) reference."""
    ref = normalize(reference, caseless)
    hyp = normalize(hypothesis, caseless)
    return Levenshtein.distance(hyp, ref) / max(1, len(ref))


def ground_truth(stem: str) -> str:
    return (SAMPLES / f"{stem}{GT_SUFFIX}").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def engine() -> Iterator[RapidEngine]:
    """The embedded engine, loaded once for the whole module."""
    if not RapidEngine.is_available():
        pytest.skip(f"the embedded engine is not installed: {RapidEngine.install_hint}")
    rapid = RapidEngine()
    rapid.load()
    yield rapid
    rapid.close()


@pytest.fixture(scope="module")
def read_sample(engine: RapidEngine) -> Callable[[str], OcrResult]:
    """``read_sample(stem)``: the sample's result, recognised once per module and then remembered."""
    results: dict[str, OcrResult] = {}

    def read(stem: str) -> OcrResult:
        if stem not in results:
            results[stem] = recognize(image_of(stem), engine=engine)
        return results[stem]

    return read


def test_samples_are_bundled() -> None:
    assert GROUND_TRUTHS, f"no *{GT_SUFFIX} in {SAMPLES}"
    assert {ROTATED, UPRIGHT} <= {stem_of(gt) for gt in GROUND_TRUTHS}


@pytest.mark.parametrize("gt", GROUND_TRUTHS, ids=stem_of)
def test_sample_cer_within_threshold(gt: Path, read_sample: Callable[[str], OcrResult]) -> None:
    stem = stem_of(gt)
    result = read_sample(stem)
    measured = cer(result.text, ground_truth(stem), caseless=stem in caseless_stems())
    assert stem in THRESHOLDS, f"{stem}: no threshold yet; measured CER {measured:.4f}, add it to THRESHOLDS"
    assert measured <= THRESHOLDS[stem], f"{stem}: CER {measured:.4f} > {THRESHOLDS[stem]}"
    assert result.engine == "rapid"
    assert result.source == image_of(stem).name
    assert all(0 <= line.confidence <= 1 for page in result.pages for line in page.lines)


def test_sideways_page_is_turned_upright(read_sample: Callable[[str], OcrResult]) -> None:
    rotated = read_sample(ROTATED)
    (page,) = rotated.pages
    assert page.rotation in (90, 270)
    with Image.open(image_of(ROTATED)) as image:
        assert (page.width, page.height) == (image.height, image.width), "boxes refer to the upright page"
    assert all(line.width > line.height for line in page.lines), "lines run across the upright page"
    assert cer(rotated.text, ground_truth(ROTATED)) <= THRESHOLDS[ROTATED]
    assert cer(rotated.text, read_sample(UPRIGHT).text) <= 0.03


def test_a_small_region_like_a_screen_capture_is_read(
    engine: RapidEngine, read_sample: Callable[[str], OcrResult]
) -> None:
    # A strip around the first line, as a screen capture would give: RapidOCR alone enlarges such a strip
    # to a 736 px short side, about 8x, and takes ten times as long.
    x0, y0, x1, y1 = read_sample(UPRIGHT).pages[0].lines[0].bbox
    with Image.open(image_of(UPRIGHT)) as image:
        strip = image.convert("RGB").crop((max(x0 - 8, 0), max(y0 - 4, 0), x1 + 8, y1 + 4))
    assert strip.height < 100
    result = recognize(strip, engine=engine)
    assert cer(result.text, ground_truth(UPRIGHT).splitlines()[0]) <= 0.05, result.text


def test_pdf_reads_like_the_image(
    engine: RapidEngine, read_sample: Callable[[str], OcrResult], tmp_path: Path
) -> None:
    pdf = tmp_path / f"{UPRIGHT}.pdf"
    with Image.open(image_of(UPRIGHT)) as image:
        size = image.size
        image.convert("RGB").save(pdf, "PDF", resolution=PDF_DPI)

    from_pdf = recognize(pdf, engine=engine)

    (page,) = from_pdf.pages
    assert abs(page.width - size[0]) <= 1 and abs(page.height - size[1]) <= 1  # points round to pixels
    assert cer(from_pdf.text, read_sample(UPRIGHT).text) <= 0.02
    assert cer(from_pdf.text, ground_truth(UPRIGHT)) <= THRESHOLDS[UPRIGHT]


def test_cli_with_the_embedded_engine(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = shutil.copy(image_of(UPRIGHT), tmp_path)
    assert run(["ocr", "--engine", "rapid", "--format", "txt", "--stdout", str(source)]) == ExitCode.OK
    assert cer(capsys.readouterr().out, ground_truth(UPRIGHT)) <= THRESHOLDS[UPRIGHT]
    assert sorted(p.name for p in tmp_path.iterdir()) == [image_of(UPRIGHT).name]
