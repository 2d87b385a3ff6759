"""DeepSeek-OCR end to end through textdrop's llama.cpp engine on a tiny programmed DeepSeek-OCR
(``tests/fixtures/tiny/deepseek_ocr.py``: GGUF ``deepseek2-ocr`` + projector ``deepseekocr``), the
chat-template override (issue 13, finding 2) rendered the way llama-cpp-python's ``MTMDChatHandler`` renders
it, and the recorded grounding answer converted to Markdown.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures.tiny import TinyModel, deepseek_ocr
from tests.helpers.tiny_families import needs_llama, read_page, token_ids
from textdrop.engine.registry import RecognizeOptions
from textdrop.engine.vlm import families
from textdrop.engine.vlm.families.deepseek_ocr import CHAT_TEMPLATE, FAMILY
from textdrop.engine.vlm.guards import message_content
from textdrop.engine.vlm.postprocess import clean

pytestmark = pytest.mark.vlm

RECORDED = Path(__file__).parent / "data" / "vlm_outputs"
OPTIONS = RecognizeOptions(max_tokens=40, detect_orientation=False)
MARKER = "<__media__>"
STORED = deepseek_ocr.STORED_CHAT_TEMPLATE
"""A template that prints each message's content as it is, as the one stored in the DeepSeek-OCR GGUF does
(issue 13, finding 2): fine for a string, a Python ``repr`` for a list of content parts."""


@pytest.fixture(scope="session")
def deepseek_model(tmp_path_factory: pytest.TempPathFactory) -> TinyModel:
    return deepseek_ocr.build("llama", tmp_path_factory.mktemp("models") / "tiny-deepseek-ocr")


@pytest.mark.parametrize("backend", [pytest.param("llama", marks=needs_llama, id="deepseek-ocr-llama")])
def test_deepseek_ocr_end_to_end(
    backend: str, deepseek_model: TinyModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The engine renders the model card's prompt (the override, checked as token ids), keeps the grounding
    tokens of the answer, converts it to Markdown, and the page is the VLM's, not a fallback's."""
    run = read_page(deepseek_model, monkeypatch, OPTIONS)
    prompt = run.prompt.replace(run.marker, "<image>\n")  # mtmd ends a DeepSeek-OCR image with "\n"
    expected = deepseek_model.prompt.format(prompt=FAMILY.prompts["markdown"]).removeprefix(deepseek_ocr.BOS)
    assert token_ids(deepseek_model, prompt) == token_ids(deepseek_model, expected)
    assert run.family == "deepseek-ocr"
    assert run.raw == deepseek_ocr.ANSWER  # <|ref|>title<|/ref|><|det|>[[…]]<|/det|> kept
    assert run.page.fallback is None and run.engine == backend
    assert run.page.markdown == "# Invoice\n\nTea 3.50"


def _render(template: str) -> str:
    """Render ``template`` for textdrop's markdown request the way ``MTMDChatHandler.__call__`` does (its
    Jinja environment, its conversion of the image part into a media-marker text part)."""
    pytest.importorskip("llama_cpp")
    import jinja2.ext
    from jinja2.sandbox import ImmutableSandboxedEnvironment
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter, MTMDChatHandler

    messages = [{"role": "user", "content": message_content("data:x", FAMILY.prompts["markdown"], FAMILY)}]
    converted = [MTMDChatHandler._convert_message_for_template(m, MARKER) for m in messages]
    env = ImmutableSandboxedEnvironment(
        trim_blocks=True,
        lstrip_blocks=True,
        extensions=[Jinja2ChatFormatter.IgnoreGenerationTags, jinja2.ext.loopcontrols],
    )
    return env.from_string(template).render(messages=converted, add_generation_prompt=True)


def test_deepseek_ocr_stored_template_garbles_the_prompt() -> None:
    assert _render(STORED).startswith("[{'type': 'text', 'text': '<__media__>'}")


def test_deepseek_ocr_template_override_gives_the_model_card_prompt() -> None:
    """``<image>\\n<|grounding|>Convert the document to markdown.``: the marker becomes the image and mtmd
    ends a DeepSeek-OCR image with ``\\n`` (tools/mtmd/mtmd.cpp)."""
    assert FAMILY.chat_template == CHAT_TEMPLATE
    assert _render(CHAT_TEMPLATE) == MARKER + "<|grounding|>Convert the document to markdown."


def test_deepseek_ocr_family_facts() -> None:
    assert families.guess("ggml-org/DeepSeek-OCR-GGUF") is FAMILY
    assert families.guess("mlx-community/DeepSeek-OCR-8bit") is FAMILY
    assert FAMILY.keep_special  # the <|ref|>/<|det|> grounding tags are added tokens
    assert not FAMILY.follows_instructions and FAMILY.page_size == 1024


def test_deepseek_ocr_recorded_grounding_answer_becomes_markdown() -> None:
    """DeepSeek-OCR's answer on the DocLayNet paper's first page (tests/data/vlm_outputs/SOURCES.md)."""
    answer = (RECORDED / "deepseek_ocr_title.md").read_text(encoding="utf-8")
    expected = (RECORDED / "deepseek_ocr_title.expected.md").read_text(encoding="utf-8")
    assert clean(FAMILY, answer) + "\n" == expected
    assert "<|ref|>" not in clean(FAMILY, answer) and "[[" not in clean(FAMILY, answer)
