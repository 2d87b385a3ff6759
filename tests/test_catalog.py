"""The curated model catalog: consistency of every entry, defaults, look-ups."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from huggingface_hub.utils import filter_repo_objects

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
