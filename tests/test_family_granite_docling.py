"""granite-docling (Idefics3) through the real runtimes, on the tiny programmed fixture.

The fixture (tests/fixtures/tiny/idefics3.py) has granite-docling's tokenizer, control tokens, chat
template and preprocessing and answers a DocTags page. These tests pin what the runtimes do with it:
llama-cpp-python's own decoding drops the DocTags (finding 1 of issue 13), decoding with special tokens
keeps them; mlx-vlm keeps them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures.tiny import idefics3
from tests.helpers.tiny_families import (
    BACKENDS,
    needs_llama,
    needs_mlx,
    read_page,
    run_llama,
    run_mlx,
    token_ids,
)

pytestmark = pytest.mark.vlm


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("tiny-granite-docling")


@needs_llama
def test_granite_docling_llama_prompt_and_control_tokens(tiny_dir: Path) -> None:
    model = idefics3.build("llama", tiny_dir / "llama")
    run = run_llama(model, idefics3.PROMPT_TEXT)
    run.assert_prompt_around_image(model.prompt)
    # libmtmd wraps the Idefics3 image in the overview's tokens
    wrapper = run.tokenize("<fake_token_around_image><global-img>")
    text = run.text_tokens
    assert any(text[i : i + 2] == wrapper for i in range(len(text))), "no <global-img> wrapper"
    # control tokens survive only when decoding keeps them
    assert run.special == idefics3.ANSWER
    assert run.content == "InvoiceItemTea", "llama-cpp-python's default decoding no longer drops DocTags"


@needs_mlx
def test_granite_docling_mlx_prompt_and_control_tokens(tiny_dir: Path) -> None:
    model = idefics3.build("mlx", tiny_dir / "mlx")
    prompt, text, processor, helper = run_mlx(model, idefics3.PROMPT_TEXT)
    assert prompt == model.prompt
    assert helper == model.prompt
    ids = processor.tokenizer(prompt, add_special_tokens=False)["input_ids"]
    assert ids[-1] == processor.tokenizer.convert_tokens_to_ids("<|end_of_role|>")
    assert text == idefics3.ANSWER


MARKDOWN = "# Invoice\n\n| Item | Tea |\n| --- | --- |"
"""The fixture's answer through the family converter: the title a heading, the OTSL table a table."""


@pytest.mark.parametrize("backend", BACKENDS)
def test_granite_docling_through_the_engine(
    backend: str, tiny_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = idefics3.build(backend, tiny_dir / f"engine-{backend}")
    run = read_page(model, monkeypatch)
    assert run.family == "granite-docling"
    assert token_ids(model, run.prompt) == token_ids(model, run.expected_prompt(model.prompt))
    if backend == "mlx":  # as mlx-vlm tokenizes it: no second <bos>
        assert run.prompt_ids == token_ids(model, model.prompt)
    assert run.raw == idefics3.ANSWER, "the DocTags control tokens were not kept"
    assert run.page.markdown == MARKDOWN
    assert run.page.fallback is None
