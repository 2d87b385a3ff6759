"""The curated model catalog: consistency of every entry, defaults, look-ups."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from huggingface_hub.utils import filter_repo_objects
from rich.console import Console

from textdrop.engine.errors import ModelError
from textdrop.engine.models import catalog
from textdrop.engine.models.catalog import (
    BACKENDS,
    CATALOG,
    FAMILIES,
    KINDS,
    GgufFiles,
    MlxFiles,
    default_entry,
    find_entry,
)

REPO_ROOT = Path(__file__).resolve().parents[1]


def test_ids_are_unique_lowercase_and_usable_on_a_command_line():
    ids = [entry.id for entry in CATALOG]
    assert len(ids) == len(set(ids))
    for model_id in ids:
        assert model_id == model_id.lower()
        assert "/" not in model_id and " " not in model_id


def test_every_entry_has_a_known_family_a_backend_and_a_page_size():
    for entry in CATALOG:
        assert entry.family in FAMILIES, entry.id
        assert entry.family != "generic", f"{entry.id}: 'generic' is for local files without a family"
        assert entry.backends, f"{entry.id} has neither a GGUF nor an MLX build"
        assert 512 <= entry.page_size <= 4096, entry.id
        assert entry.title and entry.params and entry.licence
        assert entry.source.startswith("https://huggingface.co/"), entry.id


def test_gguf_builds_name_a_model_and_its_projector():
    for entry in CATALOG:
        files = entry.gguf
        if files is None:
            continue
        assert isinstance(files, GgufFiles)
        assert files.repo.count("/") == 1, entry.id
        assert files.model.endswith(".gguf") and files.mmproj.endswith(".gguf"), entry.id
        assert "mmproj" in files.mmproj.lower(), entry.id
        assert "mmproj" not in files.model.lower(), entry.id
        assert files.size_bytes > 50_000_000, entry.id
        assert entry.files_for("llama") is files


def test_mlx_builds_are_repo_folders_with_weights_and_config():
    for entry in CATALOG:
        files = entry.mlx
        if files is None:
            continue
        assert isinstance(files, MlxFiles)
        assert files.repo.count("/") == 1, entry.id
        assert "*.safetensors" in files.allow_patterns and "*.json" in files.allow_patterns, entry.id
        assert files.size_bytes > 50_000_000, entry.id
        assert entry.files_for("mlx") is files


def test_mlx_allow_patterns_keep_what_mlx_vlm_loads_and_skip_the_rest():
    repo_files = [
        "config.json",
        "generation_config.json",
        "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors",
        "model.safetensors.index.json",
        "preprocessor_config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "chat_template.jinja",
        "merges.txt",
        "tokenizer.model",
        "README.md",
        ".gitattributes",
        "assets/banner.png",
        "pytorch_model.bin",
        "modeling_custom.py",
    ]
    kept = set(filter_repo_objects(repo_files, allow_patterns=list(catalog.MLX_ALLOW_PATTERNS)))
    assert kept == set(repo_files[:11])


def test_each_backend_has_exactly_one_small_and_one_quality_default():
    for backend in BACKENDS:
        for kind in KINDS:
            slot = f"{backend}:{kind}"
            holders = [entry.id for entry in CATALOG if slot in entry.defaults]
            assert len(holders) == 1, f"{slot}: {holders}"
            entry = default_entry(backend, kind)
            assert entry.id == holders[0]
            assert backend in entry.backends, f"{slot} is {entry.id}, which has no {backend} build"
    assert default_entry("llama").id == default_entry("llama", "small").id


def test_defaults_are_well_formed_and_only_commercially_usable_models():
    for entry in CATALOG:
        for slot in entry.defaults:
            backend, _, kind = slot.partition(":")
            assert backend in BACKENDS and kind in KINDS, f"{entry.id}: bad default slot {slot!r}"
        if entry.defaults:
            assert entry.commercial_use, f"{entry.id} is a default but its licence forbids commercial use"


def test_research_licensed_models_are_marked_non_commercial():
    # Qwen2.5-VL-3B is under the Qwen Research License; Nanonets-OCR2-3B is a fine-tune of it.
    assert not find_entry("qwen2.5-vl-3b").commercial_use
    assert not find_entry("nanonets-ocr2-3b").commercial_use
    assert not find_entry("qwen2.5-vl-3b").defaults


def test_small_defaults_are_smaller_than_quality_defaults():
    for backend in BACKENDS:
        small = default_entry(backend, "small").files_for(backend)
        quality = default_entry(backend, "quality").files_for(backend)
        assert small is not None and quality is not None
        assert small.size_bytes < quality.size_bytes


def test_find_entry_is_case_insensitive():
    assert find_entry("Granite-Docling-258M").id == "granite-docling-258m"


def test_find_entry_names_the_known_ids_when_the_id_is_unknown():
    with pytest.raises(ModelError) as caught:
        find_entry("no-such-model")
    message = str(caught.value)
    assert "no-such-model" in message
    for entry in CATALOG:
        assert entry.id in message


def test_default_entry_rejects_unknown_backends_and_kinds():
    with pytest.raises(ModelError, match="backend"):
        default_entry("onnx")
    with pytest.raises(ModelError, match="kind"):
        default_entry("llama", "huge")


def test_files_for_rejects_an_unknown_backend():
    with pytest.raises(ModelError, match="Unknown backend"):
        CATALOG[0].files_for("vllm")


def test_importing_the_catalog_and_the_cli_module_does_not_import_huggingface_hub():
    code = (
        "import sys, textdrop.engine.models.catalog, textdrop.cli_models; "
        "print('huggingface_hub' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


# -- the refresh of issue 13: new entries, facts and their sources ------------------------------------------

LLAMA_CPP = Path(
    "/root/.cache/uv/sdists-v11/pypi/llama-cpp-python/0.3.36/BsIto3GtamMt6oEd/src/vendor/llama.cpp"
)
"""The llama.cpp source llama-cpp-python 0.3.36 vendors (where the machine has the sdist cached)."""


def test_the_new_models_are_offered_with_licence_and_score():
    lighton = find_entry("lightonocr-2-1b")
    assert lighton.licence == "Apache-2.0" and lighton.backends == ("llama", "mlx")
    assert lighton.score("olmOCR-Bench").value == 83.2
    glm = find_entry("glm-ocr")
    assert glm.licence == "MIT" and glm.gguf.repo == "ggml-org/GLM-OCR-GGUF" and glm.mlx is not None
    assert glm.score("OmniDocBench v1.5").value == 94.62
    gemma = find_entry("gemma3-4b")
    assert gemma.licence_name == "Gemma Terms of Use" and gemma.backends == ("llama", "mlx")
    got = find_entry("got-ocr2")
    assert got.licence == "Apache-2.0" and got.backends == ("mlx",)
    assert "tokenization_*.py" in got.mlx.allow_patterns  # its tokenizer is the repository's Python code
    assert find_entry("paddleocr-vl").gguf.repo == "PaddlePaddle/PaddleOCR-VL-1.6-GGUF"


def test_gemma_and_other_licences_with_terms_are_never_defaults():
    for entry in CATALOG:
        if entry.defaults:
            assert entry.licence in catalog.DEFAULT_LICENCES, (
                f"{entry.id}: {entry.licence} cannot be a default"
            )
    assert not find_entry("gemma3-4b").defaults


def test_every_fact_has_a_source():
    for entry in CATALOG:
        assert entry.licence_source, f"{entry.id}: where is the licence stated?"
        for backend in entry.backends:
            assert entry.files_for(backend).source, (
                f"{entry.id} ({backend}): where do repo, files, size come from?"
            )
        for score in entry.scores:
            assert score.source and score.by in ("benchmark authors", "model authors"), entry.id
            assert 0 < score.value <= 100, entry.id
            assert score.benchmark == "olmOCR-Bench" or score.benchmark.startswith("OmniDocBench v"), entry.id


def test_licence_ids_are_spdx_or_named_terms_with_a_readable_label():
    for entry in CATALOG:
        if entry.licence.startswith("LicenseRef-"):
            assert entry.licence_label, f"{entry.id}: named terms need a readable label"
        else:
            assert entry.licence in {"Apache-2.0", "MIT"}, entry.id
        assert entry.licence_name == (entry.licence_label or entry.licence)


def test_a_backend_without_a_build_says_why():
    got = find_entry("got-ocr2")
    assert got.files_for("llama") is None
    assert "projector" in got.why_not("llama")
    assert got.why_not("mlx") is None
    for entry in CATALOG:
        for backend in BACKENDS:
            assert (entry.files_for(backend) is None) == (entry.why_not(backend) is not None), entry.id
        for backend, reason in entry.not_offered:
            assert backend in BACKENDS and reason and entry.files_for(backend) is None, entry.id


def test_memory_need_is_the_measurement_or_the_rule_of_thumb():
    got = find_entry("got-ocr2").mlx
    assert got.memory_bytes == 2_060_000_000 and got.memory_need == got.memory_bytes
    granite = find_entry("granite-docling-258m").gguf
    assert granite.memory_bytes is None
    assert granite.memory_need == int(granite.size_bytes * catalog.MEMORY_FACTOR)
    for entry in CATALOG:
        for backend in entry.backends:
            files = entry.files_for(backend)
            assert files.memory_need >= files.size_bytes * 0.9, entry.id


@pytest.mark.skipif(not LLAMA_CPP.is_dir(), reason="the vendored llama.cpp source is not on this machine")
def test_llama_builds_only_for_projectors_the_vendored_llama_cpp_knows():
    names = set(
        re.findall(r'\{ PROJECTOR_TYPE_\w+,\s*"([^"]+)"', (LLAMA_CPP / "tools/mtmd/clip-impl.h").read_text())
    )
    projector = {
        "granite-docling": "idefics3",
        "paddleocr-vl": "paddleocr",
        "lightonocr": "lightonocr",
        "deepseek-ocr": "deepseekocr",
        "dots-ocr": "dots_ocr",
        "nanonets-ocr": "qwen2.5vl_merger",
        "olmocr": "qwen2.5vl_merger",
        "glm-ocr": "glm4v",
        "gemma3": "gemma3",
    }
    for entry in CATALOG:
        if entry.gguf is None:
            continue
        wanted = projector.get(entry.family) or (
            "qwen3vl_merger" if "qwen3" in entry.id else "qwen2.5vl_merger"
        )
        assert wanted in names, f"{entry.id}: llama.cpp has no {wanted} projector"
    assert not {"got", "got_ocr"} & names  # so GOT-OCR 2.0 has no llama.cpp build


@pytest.mark.skipif(importlib.util.find_spec("mlx_vlm") is None, reason="mlx-vlm is not installed")
def test_mlx_builds_only_for_model_types_the_installed_mlx_vlm_has():
    models = Path(importlib.util.find_spec("mlx_vlm").origin).parent / "models"
    model_type = {
        "granite-docling": "idefics3",
        "paddleocr-vl": "paddleocr_vl",
        "lightonocr": "mistral3",
        "deepseek-ocr": "deepseekocr",
        "dots-ocr": "dots_ocr",
        "nanonets-ocr": "qwen2_5_vl",
        "olmocr": "qwen2_5_vl",
        "glm-ocr": "glm_ocr",
        "gemma3": "gemma3",
        "got-ocr": "got",
    }
    for entry in CATALOG:
        if entry.mlx is None:
            continue
        wanted = model_type.get(entry.family) or ("qwen3_vl" if "qwen3" in entry.id else "qwen2_5_vl")
        assert (models / wanted).is_dir(), f"{entry.id}: mlx-vlm has no {wanted} model type"


def test_ranked_puts_the_defaults_first_then_the_best_published_olmocr_score():
    for backend in BACKENDS:
        order = catalog.ranked(backend)
        assert order[:2] == (default_entry(backend, "quality"), default_entry(backend, "small"))
        assert all(backend in entry.backends for entry in order)
        assert {entry.id for entry in order} == {entry.id for entry in CATALOG if backend in entry.backends}
        scores = [entry.score("olmOCR-Bench") for entry in order[2:]]
        values = [score.value for score in scores if score is not None]
        assert values == sorted(values, reverse=True) and values
        assert None not in scores[: len(values)]  # scored entries before unscored ones
    assert "got-ocr2" not in {entry.id for entry in catalog.ranked("llama")}


def test_the_quality_default_has_the_best_published_olmocr_score():
    best = max((e for e in CATALOG if e.score("olmOCR-Bench")), key=lambda e: e.score("olmOCR-Bench").value)
    for backend in BACKENDS:
        assert default_entry(backend, "quality") is best


def test_auto_takes_the_best_ranked_downloaded_model(monkeypatch: pytest.MonkeyPatch):
    from textdrop.engine import registry
    from textdrop.engine.models import download

    class Runtime:
        @staticmethod
        def is_available() -> bool:
            return True

        @staticmethod
        def accelerator() -> str:
            return "Metal"

    monkeypatch.setattr(registry, "engine_class", lambda name: Runtime)
    downloaded = {("mlx", "nanonets-ocr2-3b"), ("mlx", "olmocr-2-7b"), ("llama", "got-ocr2")}
    monkeypatch.setattr(download, "is_downloaded", lambda entry, backend: (backend, entry.id) in downloaded)
    choice = registry.choose()
    assert choice.spec == "mlx:olmocr-2-7b"  # 82.4 on olmOCR-Bench beats Nanonets' 69.5
    assert "olmocr-2-7b is downloaded: chosen" in choice.reasons[-1]


def _cli(args: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> str:
    from textdrop import cli_models
    from textdrop.cli import run
    from textdrop.engine.models import download

    monkeypatch.setattr(cli_models, "out", Console(width=3000, highlight=False, soft_wrap=True))
    monkeypatch.setattr(download, "is_downloaded", lambda entry, backend: False)
    assert run(args) == 0
    return capsys.readouterr().out


def test_models_list_shows_memory_licence_score_and_why_a_model_is_not_offered(capsys, monkeypatch):
    text = _cli(["models", "list"], capsys, monkeypatch)
    header = next(line for line in text.splitlines() if line.startswith("ID "))
    assert re.split(r"\s{2,}", header.strip()) == [
        "ID", "Size", "Memory", "Licence", "Commercial use", "Score", "Downloaded", "Default"
    ]  # fmt: skip
    rows = {cells[0]: cells for line in text.splitlines() if (cells := re.split(r"\s{2,}", line.strip()))}
    assert rows["lightonocr-2-1b"][1:6] == [
        "llama 1.1 GB · mlx 2.0 GB",
        "llama 1.4 GB · mlx 2.5 GB",
        "Apache-2.0",
        "yes",
        "olmOCR-Bench 83.2",
    ]
    assert rows["got-ocr2"][1:4] == ["mlx 800 MB", "mlx 2.1 GB", "Apache-2.0"]  # memory: the card's peak
    assert rows["gemma3-4b"][3] == "Gemma Terms of Use" and rows["glm-ocr"][5] == "OmniDocBench v1.5 94.62"
    assert "got-ocr2 on llama.cpp: llama.cpp has no GOT-OCR2 vision projector" in text


def test_models_list_json_carries_scores_memory_and_reasons(capsys, monkeypatch):
    models = {
        m["id"]: m for m in json.loads(_cli(["models", "list", "--json"], capsys, monkeypatch))["models"]
    }
    got = models["got-ocr2"]
    assert list(got["builds"]) == ["mlx"] and "projector" in got["not_offered"]["llama"]
    assert got["builds"]["mlx"]["memory_bytes"] == 2_060_000_000 and got["builds"]["mlx"]["memory_measured"]
    (score,) = models["lightonocr-2-1b"]["scores"]
    assert score["benchmark"] == "olmOCR-Bench" and score["value"] == 83.2 and "2601.14251" in score["source"]
    assert models["gemma3-4b"]["licence"] == "LicenseRef-Gemma"
    assert models["gemma3-4b"]["licence_label"] == "Gemma Terms of Use"


def test_models_info_shows_the_source_of_every_fact(capsys, monkeypatch):
    text = _cli(["models", "info", "glm-ocr"], capsys, monkeypatch)
    entry = find_entry("glm-ocr")
    for fact in (entry.licence_source, entry.gguf.source, entry.mlx.source, entry.scores[0].source):
        assert fact in text
    assert "OmniDocBench v1.5 94.62 (measured by the model authors; GLM-OCR pipeline" in text
    assert "estimated: size × 1.25" in text
    text = _cli(["models", "info", "got-ocr2"], capsys, monkeypatch)
    assert "not offered: llama.cpp has no GOT-OCR2 vision projector" in text and "(measured)" in text


def test_doctor_names_the_models_a_backend_cannot_run(capsys, monkeypatch):
    from textdrop import doctor
    from textdrop.engine.models import download

    monkeypatch.setattr(download, "is_downloaded", lambda entry, backend: entry.id == "gemma3-4b")
    data = doctor.report()
    assert {"model": "gemma3-4b", "backend": "llama", "licence": "Gemma Terms of Use"} in data["downloaded"]
    assert {(item["model"], item["backend"]) for item in data["not_offered"]} == {("got-ocr2", "llama")}
    monkeypatch.setattr(doctor, "report", lambda: data)
    monkeypatch.setattr(doctor, "Console", lambda **kwargs: Console(width=300, **kwargs))
    assert doctor.run_doctor() == 0
    text = capsys.readouterr().out
    assert "gemma3-4b  [llama]  Gemma Terms of Use" in text
    assert "got-ocr2  [llama]: llama.cpp has no GOT-OCR2 vision projector" in text
