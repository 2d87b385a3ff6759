"""Qwen2.5-VL and Qwen3-VL end to end on tiny programmed models (llama.cpp and mlx-vlm).

Two architectures stand for the ``qwen-vl`` family: Qwen2.5-VL (``tests/fixtures/tiny/qwen2_5_vl.py``:
GGUF ``qwen2vl`` + ``qwen2.5vl_merger``, window attention) and Qwen3-VL (``tests/fixtures/tiny/qwen3_vl.py``:
GGUF ``qwen3vl`` + ``qwen3vl_merger`` with DeepStack). Each answers plain Markdown; the tests prove that the
model's own chat template renders textdrop's prompt after the image (Qwen2.5-VL with its default system
turn, Qwen3-VL without one), that the answer arrives whole and that no fallback hid a failure.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.tiny_families import build, read_page, tiny_module, token_ids
from textdrop.engine.vlm import families

pytestmark = pytest.mark.vlm

MARKDOWN = "# Invoice\n\n| Item | Price |\n|---|---|\n| Tea | 4.00 |"
SYSTEM = "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"


@pytest.mark.parametrize(
    ("architecture", "backend"),
    [("qwen2_5_vl", "llama"), ("qwen2_5_vl", "mlx"), ("qwen3_vl", "llama"), ("qwen3_vl", "mlx")],
    ids=["qwen-vl-2.5-llama", "qwen-vl-2.5-mlx", "qwen-vl-3-llama", "qwen-vl-3-mlx"],
)
def test_qwen_vl_page_end_to_end(
    architecture: str, backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = build(architecture, backend, tmp_path / f"qwen-vl-{backend}", "qwen-vl")
    run = read_page(model, monkeypatch)
    assert run.family == "qwen-vl"

    assert token_ids(model, run.prompt) == token_ids(model, run.expected_prompt(model.prompt))
    assert run.prompt.startswith(SYSTEM) == (architecture == "qwen2_5_vl")
    prompt = families.get("qwen-vl").prompts["markdown"]
    assert run.prompt.index(run.marker) < run.prompt.index(prompt), "the image goes first"
    assert run.raw == model.answer.removesuffix("<|im_end|>")
    assert run.page.markdown == MARKDOWN
    assert run.page.fallback is None


@pytest.mark.parametrize("architecture", ["qwen2_5_vl", "qwen3_vl"])
@pytest.mark.parametrize("backend", ["llama", "mlx"])
def test_qwen_fixtures_are_small_and_deterministic(architecture: str, backend: str, tmp_path: Path) -> None:
    module = tiny_module(architecture)
    first = module.build(backend, tmp_path / "a", "qwen-vl")
    module.build(backend, tmp_path / "b", "qwen-vl")
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    assert files and sum((tmp_path / "a" / f).stat().st_size for f in files) < 2_000_000
    for name in files:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    assert first.answer.endswith("<|im_end|>") and first.family == "qwen-vl"
