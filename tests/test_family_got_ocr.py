"""GOT-OCR2 end to end through textdrop's mlx engine on a tiny programmed GOT
(``tests/fixtures/tiny/got_ocr.py``, mlx-vlm ``got``); llama.cpp has no GOT projector, so the fixture refuses
that backend. Then the family's Mathpix-Markdown converter on answers in the documented format.
"""

from __future__ import annotations

from importlib.util import find_spec
from pathlib import Path

import pytest

from tests.fixtures.tiny import TinyModel, Unsupported, got_ocr
from textdrop.engine import recognize
from textdrop.engine.registry import RecognizeOptions, create_engine
from textdrop.engine.vlm import families
from textdrop.engine.vlm.families.got_ocr import FAMILY

pytestmark = pytest.mark.vlm

SAMPLE = Path(__file__).parent.parent / "assets" / "samples" / "tess_phototest.tif"
OPTIONS = RecognizeOptions(max_tokens=40, detect_orientation=False)

needs_mlx = pytest.mark.skipif(find_spec("mlx_vlm") is None, reason="mlx-vlm is not installed")


@pytest.fixture(scope="session")
def got_model(tmp_path_factory: pytest.TempPathFactory) -> TinyModel:
    return got_ocr.build("mlx", tmp_path_factory.mktemp("models") / "tiny-got-ocr")


@needs_mlx
def test_got_ocr_mlx_end_to_end(got_model: TinyModel, monkeypatch: pytest.MonkeyPatch) -> None:
    """The engine sends GOT's formatted-OCR prompt (checked as token ids), streams the raw Mathpix answer
    and converts it; the page is the VLM's, not a fallback's."""
    from mlx_vlm.models.got.processing_got import GotOcrProcessor

    seen: list[list[int]] = []
    call = GotOcrProcessor.__call__

    def record(self, *args, **kwargs):
        out = call(self, *args, **kwargs)
        seen.append([int(i) for i in out["input_ids"][0].tolist()])
        return out

    monkeypatch.setattr(GotOcrProcessor, "__call__", record)
    engine = create_engine(f"mlx:{got_model.path}")
    streamed: list[str] = []
    try:
        result = recognize(SAMPLE, engine=engine, options=OPTIONS, on_text=lambda _, t: streamed.append(t))
        tokenizer = engine._processor.tokenizer
        expected = tokenizer.encode(got_model.prompt.format(prompt=got_ocr.PROMPT_MARKDOWN))
    finally:
        engine.close()
    assert engine.family == "got-ocr"
    assert seen == [expected]
    assert streamed[-1] == got_model.answer
    page = result.pages[0]
    assert page.fallback is None and result.engine == "mlx"
    assert page.markdown == "# Invoice\n\nTea 3.50"


def test_got_ocr_is_not_built_for_llama_cpp(tmp_path: Path) -> None:
    with pytest.raises(Unsupported, match="no GOT-OCR2 vision projector"):
        got_ocr.build("llama", tmp_path)
    assert not any(tmp_path.iterdir())


def test_got_ocr_family_facts() -> None:
    assert families.get("got-ocr") is FAMILY
    assert families.guess("mlx-community/GOT-OCR2_0-bf16") is FAMILY
    assert FAMILY.prompts == {"markdown": got_ocr.PROMPT_MARKDOWN, "text": got_ocr.PROMPT_TEXT}
    assert FAMILY.page_size == got_ocr.IMAGE_SIZE and not FAMILY.follows_instructions


@pytest.mark.parametrize(
    ("answer", "markdown"),
    [
        pytest.param(
            "\\title{\nR&D QUALITY IMPROVEMENT\\\\\nSUGGESTION FORM\n}\n\nName",
            "# R&D QUALITY IMPROVEMENT SUGGESTION FORM\n\nName",
            id="title",
        ),
        pytest.param(
            "\\author{\nHanwen Jiang* \\(\\quad\\) Arjun Karpur \\({ }^{\\dagger}\\)\n}",
            "Hanwen Jiang* $\\quad$ Arjun Karpur ${ }^{\\dagger}$",
            id="author-inline-math",
        ),
        pytest.param(
            "\\section*{Results}\nSee \\(x^2\\).\n\\subsection*{Data}\n\\[\nE = mc^2\n\\]",
            "## Results\n\nSee $x^2$.\n\n### Data\n\n$$\nE = mc^2\n$$",
            id="sections-math",
        ),
        pytest.param(
            "\\begin{tabular}{|l|r|}\n\\hline Item & Price \\\\\n\\hline Tea & 3.50 \\\\\n"
            "\\multicolumn{2}{|c|}{Total 3.50} \\\\\n\\hline\n\\end{tabular}",
            "| Item | Price |\n| --- | --- |\n| Tea | 3.50 |\n| Total 3.50 |  |",
            id="tabular",
        ),
        pytest.param(
            "\\begin{itemize}\n\\item one\n\\item two\n\\end{itemize}",
            "- one\n- two",
            id="itemize",
        ),
        pytest.param("\\title{\nCut off", "\\title{\nCut off", id="cut-off-title-kept"),
    ],
)
def test_got_ocr_mathpix_answers_become_markdown(answer: str, markdown: str) -> None:
    """Answers in the format transformers' GOT-OCR2 docs and tests record (``\\title{\\nR…``,
    ``\\author{\\nHanwen Jiang* \\(\\quad\\) …``) and the Mathpix Markdown structures GOT emits."""
    assert FAMILY.convert(answer) == markdown
