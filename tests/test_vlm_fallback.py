"""Load errors keep the runtime's reason, fallbacks are never silent, and the context fits the page.

The llama.cpp tests damage the tiny Qwen2-VL fixture (``tests/fixtures/make_tiny_models.py``): a truncated
GGUF, and an mmproj built for a text model of another width. The rest use the scripted VLM.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.fake_vlm import ScriptedVlm
from textdrop.cli import run
from textdrop.engine import recognize, registry
from textdrop.engine.documents.sidecar import read_metadata
from textdrop.engine.errors import ExitCode, ModelError, TextdropError
from textdrop.engine.registry import Choice, RecognizeOptions, create_engine
from textdrop.engine.result import OcrResult, PageResult
from textdrop.engine.vlm.guards import OUTPUT_RESERVE, context_for, prompt_tokens
from textdrop.server.service import result_body

FIXTURES = Path(__file__).parent / "fixtures"
GGUF_DIR = FIXTURES / "tiny-qwen2vl-gguf"
MODEL = GGUF_DIR / "tiny-qwen2vl-f16.gguf"
MMPROJ = GGUF_DIR / "mmproj-tiny-qwen2vl-f16.gguf"
PHOTOTEST = Path(__file__).parent.parent / "assets" / "samples" / "tess_phototest.tif"

needs_llama = pytest.mark.skipif(not registry.engine_class("llama").is_available(), reason="no llama-cpp")


@pytest.fixture
def truncated(tmp_path: Path) -> Path:
    """The tiny model cut to 100 kB (a download that stopped), with its real mmproj."""
    folder = tmp_path / "truncated"
    folder.mkdir()
    (folder / MODEL.name).write_bytes(MODEL.read_bytes()[:100_000])
    shutil.copy(MMPROJ, folder / MMPROJ.name)
    return folder


@pytest.fixture
def mismatched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The tiny model with an mmproj whose projection is 32 wide instead of the model's 64."""
    monkeypatch.syspath_prepend(str(FIXTURES))
    from tiny import qwen2_5_vl, qwen2vl

    folder = tmp_path / "mismatched"
    folder.mkdir()
    shutil.copy(MODEL, folder / MODEL.name)
    for module in (qwen2vl, qwen2_5_vl):  # the projection is as wide as the text model it was built for
        monkeypatch.setattr(module, "HIDDEN", 32)
    narrow = qwen2vl.build("llama", tmp_path / "narrow")
    assert narrow.mmproj is not None
    shutil.copy(narrow.mmproj, folder / MMPROJ.name)
    return folder


@pytest.fixture
def scripted(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[ScriptedVlm]]:
    monkeypatch.setitem(registry.BUILTIN_ENGINES, "scripted", "tests.helpers.fake_vlm:ScriptedVlm")
    ScriptedVlm.reset()
    yield ScriptedVlm
    ScriptedVlm.reset()


# -- load errors -----------------------------------------------------------------------------------------


@pytest.mark.vlm
@needs_llama
def test_truncated_gguf_error_names_the_runtimes_reason(truncated: Path) -> None:
    with pytest.raises(ModelError, match="not within the file bounds, model is corrupted or incomplete"):
        create_engine(f"llama:{truncated}").load()


@pytest.mark.vlm
@needs_llama
def test_mismatched_mmproj_fails_the_load_with_the_runtimes_reason(mismatched: Path) -> None:
    engine = create_engine(f"llama:{mismatched}")
    with pytest.raises(
        ModelError, match=r"mismatch between text model \(n_embd = 64\) and mmproj \(n_embd = 32\)"
    ):
        engine.load()  # at load, not at the first page (which would fall back)
    assert getattr(engine, "_llm", None) is None


@pytest.mark.vlm
@needs_llama
def test_explicit_engine_that_cannot_load_exits_non_zero_with_the_reason(
    truncated: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "scan.tif"
    source.write_bytes(PHOTOTEST.read_bytes())
    code = run(["ocr", str(source), "--engine", "llama", "--model", str(truncated)])
    assert code == ExitCode.MODEL
    assert "not within the file bounds" in capfd.readouterr().err
    assert not (tmp_path / "scan.tif.md").exists()  # no quiet switch to the embedded engine


@pytest.mark.vlm
@needs_llama
def test_auto_replaces_a_vlm_that_cannot_load_and_says_so_everywhere(
    truncated: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(registry, "choose", lambda: Choice(f"llama:{truncated}"))
    source = tmp_path / "scan.tif"
    source.write_bytes(PHOTOTEST.read_bytes())
    code = run(["ocr", str(source)])
    assert code == ExitCode.FALLBACK  # done, but not by the VLM
    err = capfd.readouterr().err
    assert "1 with 1 page(s) read by the embedded engine instead of the VLM" in err
    assert "page 1 was read by rapid" in err
    meta = read_metadata(tmp_path / "scan.tif.md")
    assert meta is not None and meta["engine"] == "rapid"
    [entry] = meta["fallback"]
    assert entry["page"] == 1 and entry["engine"] == "rapid"
    assert "could not be loaded" in entry["why"] and "not within the file bounds" in entry["why"]
    assert "quick brown dog" in (tmp_path / "scan.tif.md").read_text()


@pytest.mark.vlm
@needs_llama
def test_llama_context_is_sized_from_the_page_and_capped_with_flash_attention(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import llama_cpp

    from textdrop.engine.vlm import guards
    from textdrop.engine.vlm.llama_cpp import LlamaOptions
    from textdrop.engine.vlm.prompts import build_prompt

    monkeypatch.setattr(guards, "OUTPUT_RESERVE", 512)  # the tiny model's 4096 would cap the real one
    engine = create_engine(f"llama:{GGUF_DIR}", {"llama": LlamaOptions(page_size=512)})
    engine.load()
    try:
        assert engine.page_size == 512  # the user's setting over the family's
        expected = context_for(512, build_prompt(engine.family, "markdown"))
        assert engine.context == expected < 4096  # sized from the page, not a fixed 8192
        assert engine._llm.context_params.flash_attn_type == llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED
        result = recognize(PHOTOTEST, engine=engine, options=RecognizeOptions(max_tokens=16))
        assert result.fallbacks == {} and result.pages[0].engine == "llama"
    finally:
        engine.close()
    big = create_engine(f"llama:{GGUF_DIR}", {"llama": LlamaOptions(page_size=2200, flash_attn=False)})
    big.load()
    try:
        assert big.context == 4096  # the tiny model's trained context caps the 2200 px page's need
        assert big._llm.context_params.flash_attn_type == llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED
    finally:
        big.close()
    fixed = create_engine(f"llama:{GGUF_DIR}", {"llama": LlamaOptions(n_ctx=2048)})
    fixed.load()
    try:
        assert fixed.context == 2048 and fixed._llm.n_ctx() == 2048  # the user's n_ctx as set
    finally:
        fixed.close()


@pytest.mark.vlm
@pytest.mark.skipif(not registry.engine_class("mlx").is_available(), reason="no mlx-vlm")
def test_mlx_load_error_names_the_runtimes_reason(tmp_path: Path) -> None:
    folder = tmp_path / "tiny-qwen2vl-mlx"
    shutil.copytree(FIXTURES / "tiny-qwen2vl-mlx", folder)
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(ModelError, match=r"mlx-vlm cannot load .*: [A-Za-z]+Error: "):
        create_engine(f"mlx:{folder}").load()


# -- context ---------------------------------------------------------------------------------------------


def test_context_holds_a_square_page_the_prompt_and_the_answer() -> None:
    need = prompt_tokens((2200, 2200), "Read the page.") + OUTPUT_RESERVE
    assert context_for(2200, "Read the page.") == -(-need // 256) * 256
    assert context_for(2200, "Read the page.", trained=8192) == 8192  # never past the trained context


def test_a_page_that_cannot_fit_the_context_says_so(scripted: type[ScriptedVlm]) -> None:
    engine = create_engine("scripted")
    engine.load()
    engine.context = 600  # a 1024 x 768 page alone is about 1000 image tokens
    try:
        result = recognize(PHOTOTEST, engine=engine)
        [(number, reason)] = result.fallbacks.items()
        assert number == 1 and reason.startswith("rapid: the page does not fit the model's context")
        assert "the context holds 600" in reason and not scripted.calls  # no generation was tried
        with pytest.raises(TextdropError, match="does not fit the model's context"):
            recognize(PHOTOTEST, engine=engine, options=RecognizeOptions(fallback=False))
    finally:
        engine.close()


# -- where a fallback shows ------------------------------------------------------------------------------


def _result(fallback: str | None) -> OcrResult:
    page = PageResult(1, 10, 10, "a", "a", engine="rapid" if fallback else "scripted", fallback=fallback)
    return OcrResult([page, PageResult(2, 10, 10, "b", "b", engine="scripted")], engine="scripted")


def test_the_api_warns_of_each_fallback_page_and_names_its_engine() -> None:
    body = result_body(_result("rapid: the answer was empty"))
    assert body["warnings"] == ["page 1 was read by rapid: the answer was empty"]
    assert [page["engine"] for page in body["pages"]] == ["rapid", "scripted"]
    assert result_body(_result(None))["warnings"] == []


def test_cli_counts_vlm_fallback_pages_and_exits_12(
    scripted: type[ScriptedVlm], tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    scripted.scripts = [[RuntimeError("decode failed")]] * 3
    source = tmp_path / "scan.tif"
    source.write_bytes(PHOTOTEST.read_bytes())
    assert run(["ocr", str(source), "--engine", "scripted"]) == ExitCode.FALLBACK
    err = capfd.readouterr().err
    assert "page 1 was read by rapid" in err and "decode failed" in err
    meta = read_metadata(tmp_path / "scan.tif.md")
    assert meta is not None and meta["engines"] == {"rapid": [1]}
    assert meta["fallback"][0]["why"].endswith("decode failed")
    assert run(["ocr", str(source), "--engine", "scripted", "--force"]) == ExitCode.OK  # read well now
    meta = read_metadata(tmp_path / "scan.tif.md")
    assert meta is not None and "fallback" not in meta and "engines" not in meta
