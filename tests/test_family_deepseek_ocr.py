"""DeepSeek-OCR end to end through textdrop's llama.cpp engine on a tiny programmed DeepSeek-OCR
(``tests/fixtures/tiny/deepseek_ocr.py``: GGUF ``deepseek2-ocr`` + projector ``deepseekocr``), the
chat-template override (issue 13, finding 2) rendered the way llama-cpp-python's ``MTMDChatHandler`` renders
it, and the recorded grounding answer converted to Markdown.
"""

from __future__ import annotations

from importlib.util import find_spec
from pathlib import Path

import pytest

from tests.fixtures.tiny import TinyModel, deepseek_ocr
from textdrop.engine import recognize
from textdrop.engine.registry import RecognizeOptions, create_engine
from textdrop.engine.vlm import families
from textdrop.engine.vlm.families.deepseek_ocr import CHAT_TEMPLATE, FAMILY
from textdrop.engine.vlm.guards import message_content
from textdrop.engine.vlm.postprocess import clean

pytestmark = pytest.mark.vlm

RECORDED = Path(__file__).parent / "data" / "vlm_outputs"
SAMPLE = Path(__file__).parent.parent / "assets" / "samples" / "tess_phototest.tif"
OPTIONS = RecognizeOptions(max_tokens=40, detect_orientation=False)
MARKER = "<__media__>"
STORED = deepseek_ocr.STORED_CHAT_TEMPLATE
"""A template that prints each message's content as it is, as the one stored in the DeepSeek-OCR GGUF does
(issue 13, finding 2): fine for a string, a Python ``repr`` for a list of content parts."""

needs_llama = pytest.mark.skipif(find_spec("llama_cpp") is None, reason="llama-cpp-python is not installed")
needs_mlx = pytest.mark.skipif(find_spec("mlx_vlm") is None, reason="mlx-vlm is not installed")


@pytest.fixture(scope="session")
def deepseek_model(tmp_path_factory: pytest.TempPathFactory) -> TinyModel:
    return deepseek_ocr.build("llama", tmp_path_factory.mktemp("models") / "tiny-deepseek-ocr")


@pytest.mark.parametrize("backend", [pytest.param("llama", marks=needs_llama, id="deepseek-ocr-llama")])
def test_deepseek_ocr_end_to_end(
    backend: str, deepseek_model: TinyModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The engine renders the model card's prompt (the override, checked as token ids), keeps the grounding
    tokens of the answer, converts it to Markdown, and the page is the VLM's, not a fallback's."""
    from llama_cpp.llama_chat_format import MTMDChatHandler

    seen: list[str] = []
    post = MTMDChatHandler._postprocess_template_text

    def record(self, text: str, image_urls: list[str], media_marker: str) -> str:
        out = post(self, text, image_urls, media_marker)
        seen.append(out.replace(media_marker, "<image>\n"))  # mtmd ends a DeepSeek-OCR image with "\n"
        return out

    monkeypatch.setattr(MTMDChatHandler, "_postprocess_template_text", record)
    engine = create_engine(f"{backend}:{deepseek_model.path}")
    streamed: list[str] = []
    try:
        result = recognize(SAMPLE, engine=engine, options=OPTIONS, on_text=lambda _, t: streamed.append(t))

        def tokens(text: str) -> list[int]:
            return engine._llm.tokenize(text.encode(), add_bos=True, special=True)

        expected = deepseek_model.prompt.format(prompt=FAMILY.prompts["markdown"]).removeprefix(
            deepseek_ocr.BOS
        )
        assert [tokens(p) for p in seen] == [tokens(expected)]
    finally:
        engine.close()
    assert engine.family == "deepseek-ocr"
    assert streamed[-1] == deepseek_ocr.ANSWER  # <|ref|>title<|/ref|><|det|>[[…]]<|/det|> kept
    page = result.pages[0]
    assert page.fallback is None and result.engine == backend
    assert page.markdown == "# Invoice\n\nTea 3.50"


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


def test_deepseek_ocr_mlx_has_no_tiny_fixture(tmp_path: Path) -> None:
    """mlx-vlm's fixed ViT-B SAM makes a page cost minutes on a CPU: the plain build says so."""
    with pytest.raises(NotImplementedError, match="250 to 410 s"):
        deepseek_ocr.build("mlx", tmp_path)
    assert not any(tmp_path.iterdir())


@needs_mlx
@pytest.mark.slow
def test_deepseek_ocr_mlx_full_size_folder_loads_and_its_decoder_is_programmed(tmp_path: Path) -> None:
    """The folder ``benchmarks/deepseek_ocr_mlx.py`` measures: ``mlx_vlm.load`` accepts it (strict weights,
    the fixed ViT-B SAM included), and its DeepSeek-V2 MoE decoder, run on the prompt's text alone (the SAM
    pass over a page takes minutes), emits the grounding answer and then its end-of-sentence token."""
    import mlx.core as mx
    from mlx_vlm import load
    from mlx_vlm.generate import generate_step

    model = deepseek_ocr.build("mlx", tmp_path / "model", full_size_sam=True)
    mlx_model, processor = load(str(model.path))
    tokenizer = processor.tokenizer
    assert mlx_model.sam_model.blocks[0].attn.qkv.weight.shape == (3 * 768, 768)  # ViT-B, as measured
    prompt = tokenizer(FAMILY.prompts["markdown"], add_special_tokens=False)["input_ids"]
    bos = 0  # the id processing_deepseekocr.py puts before every prompt
    sampled: list[int] = []
    for token, _ in generate_step(
        mx.array([[bos, *prompt]]), mlx_model, None, None, max_tokens=20, temperature=0.0
    ):
        sampled.append(int(token))
        if sampled[-1] == tokenizer.eos_token_id:
            break
    assert tokenizer.decode(sampled, skip_special_tokens=False) == deepseek_ocr.ANSWER + deepseek_ocr.EOS
