"""The curated OCR vision-language models textdrop can download and run.

Each :class:`ModelEntry` names a model once, with up to two builds of it:

- ``gguf`` for the llama.cpp backend (llama-cpp-python 0.3.36): a language-model GGUF and its vision projector
  (``mmproj``). An entry has one only if the vendored llama.cpp knows its projector type
  (``tools/mtmd/clip-impl.h``: ``idefics3``, ``paddleocr``, ``lightonocr``, ``deepseekocr``, ``dots_ocr``,
  ``qwen2.5vl_merger``, ``qwen3vl_merger``) and its ``convert_hf_to_gguf.py`` converts the architecture.
- ``mlx`` for mlx-vlm 0.7.10: a whole hub folder (weights, config, tokenizer, processor), downloaded with
  ``allow_patterns``. An entry has one only if ``mlx_vlm/models/`` has its model type (``idefics3``,
  ``paddleocr_vl``, ``mistral3`` for LightOnOCR, ``deepseekocr``, ``dots_ocr``, ``qwen2_5_vl``, ``qwen3_vl``).

Repositories and file names come from public references (llama.cpp's own ``tools/mtmd/tests.sh`` for the
``ggml-org`` repos, download scripts and manifests for the others); sizes are approximate (bytes, both files
or the whole folder) and only used for disk checks, memory warnings and display. The hub is the authority.

**Defaults.** Each backend has a ``small`` and a ``quality`` default (:func:`default_entry`). Only models
whose licence allows commercial use can be defaults: research-only or non-commercial licences (Qwen2.5-VL-3B's
Qwen Research License, and Nanonets-OCR2-3B, a fine-tune of it), and custom licences not reviewed for
commercial use (dots.ocr), are listed but never picked automatically.

**Page size.** ``page_size`` is the longest side, in pixels, a page image is resized to before it is given
to the model; each entry's comment says where its number comes from.
"""

from __future__ import annotations

import logging
import platform
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from textdrop.engine.errors import ModelError
from textdrop.engine.vlm import families

log = logging.getLogger(__name__)

FAMILIES = families.keys()
"""Prompt and post-processing families (:mod:`textdrop.engine.vlm.families`); ``generic``: local files."""

BACKENDS = ("llama", "mlx")
"""``llama``: llama-cpp-python with a GGUF and its mmproj; ``mlx``: mlx-vlm with a model folder."""

KINDS = ("small", "quality")
"""The two default slots per backend (see :func:`default_entry`)."""

MLX_ALLOW_PATTERNS = (
    "*.json",
    "*.safetensors",
    "*.jinja",
    "*.txt",
    "*.model",
    "*.tiktoken",
)
"""What an mlx-vlm model folder needs: config, tokenizer, processor and generation JSON files, weights (and
their index), chat templates, merges/vocab text files, SentencePiece and tiktoken vocabularies. README files,
images, other formats' weights and repository Python code (mlx-vlm ships its own processors) are left out."""


@dataclass(frozen=True)
class GgufFiles:
    """A llama.cpp build: two files of one hub repository.

    Attributes:
        repo: Hub repository id, e.g. ``ggml-org/granite-docling-258M-GGUF``.
        model: File name of the language model GGUF in the repository.
        mmproj: File name of the vision projector GGUF (contains ``mmproj``).
        size_bytes: Approximate size of both files together, in bytes.
        revision: Branch, tag or commit to download.
    """

    repo: str
    model: str
    mmproj: str
    size_bytes: int
    revision: str = "main"

    @property
    def files(self) -> tuple[str, str]:
        """The two file names, language model first."""
        return (self.model, self.mmproj)


@dataclass(frozen=True)
class MlxFiles:
    """An mlx-vlm build: a hub repository folder, filtered by ``allow_patterns``.

    Attributes:
        repo: Hub repository id, e.g. ``mlx-community/Qwen3-VL-2B-Instruct-4bit``.
        size_bytes: Approximate size of the downloaded folder, in bytes.
        revision: Branch, tag or commit to download.
        allow_patterns: Glob patterns (``fnmatch``) of the files to download.
    """

    repo: str
    size_bytes: int
    revision: str = "main"
    allow_patterns: tuple[str, ...] = MLX_ALLOW_PATTERNS


@dataclass(frozen=True)
class ModelEntry:
    """One curated model and its builds.

    Attributes:
        id: Short id used on the command line and in the config file, e.g. ``granite-docling-258m``.
        title: Human-readable name.
        family: Prompt and post-processing family, one of :data:`FAMILIES`.
        params: Parameter count as the vendor states it, e.g. ``"258M"``.
        licence: Licence of the weights (SPDX id where there is one).
        commercial_use: Whether the licence allows commercial use without further agreement.
        page_size: Longest side in pixels the page image is resized to (source in the entry's comment).
        gguf: The llama.cpp build, or None.
        mlx: The mlx-vlm build, or None.
        defaults: Default slots this entry fills, e.g. ``("llama:small", "mlx:small")``.
        source: Model card the licence, prompt and page size come from.
        notes: Anything a user should know before choosing it.
    """

    id: str
    title: str
    family: str
    params: str
    licence: str
    commercial_use: bool
    page_size: int
    gguf: GgufFiles | None
    mlx: MlxFiles | None
    defaults: tuple[str, ...] = ()
    source: str = ""
    notes: str = ""

    @property
    def backends(self) -> tuple[str, ...]:
        """The backends this entry has a build for, in :data:`BACKENDS` order."""
        return tuple(b for b in BACKENDS if self.files_for(b) is not None)

    def files_for(self, backend: str) -> GgufFiles | MlxFiles | None:
        """The build for ``backend`` (``llama`` or ``mlx``), or None when there is none.

        Raises:
            ModelError: ``backend`` is not one of :data:`BACKENDS`.
        """
        if backend == "llama":
            return self.gguf
        if backend == "mlx":
            return self.mlx
        raise ModelError(f"Unknown backend {backend!r}: choose one of {', '.join(BACKENDS)}.")


@dataclass(frozen=True)
class LocalModel:
    """A model ready to load: files on this machine.

    Attributes:
        id: Catalog id, or the file or folder name for a local path.
        family: Prompt and post-processing family, one of :data:`FAMILIES`.
        backend: ``llama`` or ``mlx``.
        path: The language-model GGUF file (llama) or the model folder (mlx).
        mmproj: The vision projector GGUF (llama only; None for mlx).
        page_size: Longest side in pixels the page image is resized to.
    """

    id: str
    family: str
    backend: str
    path: Path
    mmproj: Path | None
    page_size: int


CATALOG: tuple[ModelEntry, ...] = (
    ModelEntry(
        id="granite-docling-258m",
        title="IBM Granite-Docling 258M",
        family="granite-docling",
        params="258M",
        licence="Apache-2.0",
        commercial_use=True,
        # The Idefics3 image processor of this family resizes the longest edge to size.longest_edge = 2048 and
        # then cuts 512-px tiles (max_image_size.longest_edge = 512), as in the SmolVLM/SmolDocling processor
        # configs; granite-docling keeps that Idefics3 processor.
        page_size=2048,
        # ggml-org repo from llama.cpp tools/mtmd/tests.sh ("ggml-org/granite-docling-258M-GGUF:Q8_0"); file
        # names from published download URLs of that repo (the Q8_0 model, the f16 projector).
        gguf=GgufFiles(
            repo="ggml-org/granite-docling-258M-GGUF",
            model="granite-docling-258M-Q8_0.gguf",
            mmproj="mmproj-granite-docling-258M-f16.gguf",
            size_bytes=380_000_000,
        ),
        # IBM's own MLX conversion (Docling's GRANITEDOCLING_MLX uses it); bf16, about 0.5 GB.
        mlx=MlxFiles(repo="ibm-granite/granite-docling-258M-mlx", size_bytes=530_000_000),
        defaults=("llama:small", "mlx:small"),
        source="https://huggingface.co/ibm-granite/granite-docling-258M",
        notes="Answers in DocTags (converted to Markdown by the post-processor); prompt "
        "'Convert this page to docling.'",
    ),
    ModelEntry(
        id="paddleocr-vl",
        title="PaddleOCR-VL 1.6 (0.9B)",
        family="paddleocr-vl",
        params="0.9B",
        licence="Apache-2.0",
        commercial_use=True,
        # preprocessor_config.json: max_pixels = 2,822,400 (1680 x 1680), min_pixels = 147,384; a longest side
        # of 1680 keeps every page shape within that pixel budget.
        page_size=1680,
        # PaddlePaddle's own llama.cpp package; file names and sizes (935,769,056 + 881,770,560 bytes) from
        # published manifests of PaddlePaddle/PaddleOCR-VL-1.6-GGUF.
        gguf=GgufFiles(
            repo="PaddlePaddle/PaddleOCR-VL-1.6-GGUF",
            model="PaddleOCR-VL-1.6-GGUF.gguf",
            mmproj="PaddleOCR-VL-1.6-GGUF-mmproj.gguf",
            size_bytes=1_817_539_616,
        ),
        mlx=MlxFiles(repo="mlx-community/PaddleOCR-VL-1.6-4bit", size_bytes=700_000_000),
        source="https://huggingface.co/PaddlePaddle/PaddleOCR-VL-1.6",
        notes="Element-level recogniser: prompts 'OCR:', 'Table Recognition:', 'Formula Recognition:'. "
        "The GGUF is BF16 (no smaller quantisation published by PaddlePaddle).",
    ),
    ModelEntry(
        id="lightonocr-1b",
        title="LightOnOCR 1B (1025)",
        family="lightonocr",
        params="1B",
        licence="Apache-2.0",
        commercial_use=True,
        # LightOnOCR's Pixtral-style processor caps the longest edge at 1540 px (the model card renders PDF
        # pages at 200 DPI and the processor config says 1540).
        page_size=1540,
        gguf=GgufFiles(
            repo="ggml-org/LightOnOCR-1B-1025-GGUF",
            model="LightOnOCR-1B-1025-Q8_0.gguf",
            mmproj="mmproj-LightOnOCR-1B-1025-Q8_0.gguf",
            size_bytes=1_200_000_000,
        ),
        # mlx-vlm has no LightOnOCR module; the conversion runs through its mistral3 model type.
        mlx=MlxFiles(repo="mlx-community/LightOnOCR-1B-1025-bf16", size_bytes=2_000_000_000),
        source="https://huggingface.co/lightonai/LightOnOCR-1B-1025",
        notes="Needs no prompt text: the image alone asks for a transcription.",
    ),
    ModelEntry(
        id="deepseek-ocr",
        title="DeepSeek-OCR (3B MoE)",
        family="deepseek-ocr",
        params="3B",
        licence="MIT",
        commercial_use=True,
        # The model card's "Base" mode: base_size = image_size = 1024 (one 1024 x 1024 view, 256 tokens).
        page_size=1024,
        # Sizes 3,126,139,712 + 447,856,768 bytes from a published manifest of ggml-org/DeepSeek-OCR-GGUF.
        gguf=GgufFiles(
            repo="ggml-org/DeepSeek-OCR-GGUF",
            model="DeepSeek-OCR-Q8_0.gguf",
            mmproj="mmproj-DeepSeek-OCR-Q8_0.gguf",
            size_bytes=3_573_996_480,
        ),
        mlx=MlxFiles(repo="mlx-community/DeepSeek-OCR-8bit", size_bytes=3_600_000_000),
        source="https://huggingface.co/deepseek-ai/DeepSeek-OCR",
        notes="Prompt '<image>\\n<|grounding|>Convert the document to markdown.' (or 'Free OCR.'); llama.cpp "
        "needs its deepseek-ocr chat template.",
    ),
    ModelEntry(
        id="dots-ocr",
        title="dots.ocr (3B)",
        family="dots-ocr",
        params="3B",
        licence="dots.ocr License Agreement (MIT-based)",
        commercial_use=False,
        # dots.ocr renders PDFs at 200 DPI (about 2200 px on the long side of a Letter/A4 page) and accepts up
        # to MAX_PIXELS = 11,289,600 without downscaling (dots_ocr/utils/consts.py).
        page_size=2200,
        gguf=GgufFiles(
            repo="ggml-org/dots.ocr-GGUF",
            model="dots.ocr-Q8_0.gguf",
            mmproj="mmproj-dots.ocr-Q8_0.gguf",
            size_bytes=3_200_000_000,
        ),
        mlx=MlxFiles(repo="mlx-community/dots.ocr-4bit", size_bytes=3_540_000_000),
        source="https://huggingface.co/rednote-hilab/dots.ocr",
        notes="Custom licence agreement layered on MIT, not reviewed for commercial use: never a default. "
        "Prompt 'OCR' or its layout prompts (JSON with boxes).",
    ),
    ModelEntry(
        id="nanonets-ocr2-3b",
        title="Nanonets-OCR2 3B",
        family="nanonets-ocr",
        params="3B",
        licence="Qwen Research License (inherited from Qwen2.5-VL-3B)",
        commercial_use=False,
        # The model card gives no page size; Qwen2.5-VL's processor takes up to 12.8 MP. 1600 px (about 2 MP
        # for a Letter page) is textdrop's speed/accuracy trade-off, not the vendor's number.
        page_size=1600,
        # mradermacher's quantisation; names from a published download script (Q8_0 and its Q8_0 projector).
        gguf=GgufFiles(
            repo="mradermacher/Nanonets-OCR2-3B-GGUF",
            model="Nanonets-OCR2-3B.Q8_0.gguf",
            mmproj="Nanonets-OCR2-3B.mmproj-Q8_0.gguf",
            size_bytes=4_150_000_000,
        ),
        mlx=MlxFiles(repo="mlx-community/Nanonets-OCR2-3B-4bit", size_bytes=3_100_000_000),
        source="https://huggingface.co/nanonets/Nanonets-OCR2-3B",
        notes="Fine-tune of Qwen2.5-VL-3B-Instruct, whose Qwen Research License forbids commercial use; the "
        "card states no licence of its own. HTML tables, LaTeX, <img>/<signature>/<watermark> tags.",
    ),
    ModelEntry(
        id="olmocr-2-7b",
        title="olmOCR 2 7B (1025)",
        family="olmocr",
        params="7B",
        licence="Apache-2.0",
        commercial_use=True,
        # olmOCR renders every page with target_longest_image_dim = 1288 (olmocr.data.renderpdf, model card).
        page_size=1288,
        # bartowski's quantisation; names and sizes (4,683,072,672 + 1,354,163,296 bytes) from published
        # manifests.
        gguf=GgufFiles(
            repo="bartowski/allenai_olmOCR-2-7B-1025-GGUF",
            model="allenai_olmOCR-2-7B-1025-Q4_K_M.gguf",
            mmproj="mmproj-allenai_olmOCR-2-7B-1025-f16.gguf",
            size_bytes=6_037_235_968,
        ),
        mlx=MlxFiles(repo="mlx-community/olmOCR-2-7B-1025-mlx-4bit", size_bytes=5_600_000_000),
        defaults=("llama:quality", "mlx:quality"),
        source="https://huggingface.co/allenai/olmOCR-2-7B-1025",
        notes="Apache-2.0 (Ai2 states it is intended for research and educational use under its Responsible "
        "Use Guidelines). Fine-tune of Qwen2.5-VL-7B (Apache-2.0); answers in YAML front matter + Markdown.",
    ),
    ModelEntry(
        id="qwen2.5-vl-3b",
        title="Qwen2.5-VL 3B Instruct",
        family="qwen-vl",
        params="3B",
        licence="Qwen Research License",
        commercial_use=False,
        # Dynamic resolution (up to 12.8 MP by default); 1600 px is textdrop's trade-off, as for Nanonets.
        page_size=1600,
        gguf=GgufFiles(
            repo="ggml-org/Qwen2.5-VL-3B-Instruct-GGUF",
            model="Qwen2.5-VL-3B-Instruct-Q4_K_M.gguf",
            mmproj="mmproj-Qwen2.5-VL-3B-Instruct-Q8_0.gguf",
            size_bytes=2_960_000_000,
        ),
        mlx=MlxFiles(repo="mlx-community/Qwen2.5-VL-3B-Instruct-4bit", size_bytes=3_090_000_000),
        source="https://huggingface.co/Qwen/Qwen2.5-VL-3B-Instruct",
        notes="General VLM; the 3B size is under the non-commercial Qwen Research License (7B: Apache-2.0).",
    ),
    ModelEntry(
        id="qwen3-vl-2b",
        title="Qwen3-VL 2B Instruct",
        family="qwen-vl",
        params="2B",
        licence="Apache-2.0",
        commercial_use=True,
        # Dynamic resolution (processor cap far above a page); 1600 px is textdrop's trade-off.
        page_size=1600,
        # Sizes 1,834,427,296 + 445,053,056 bytes from a published manifest of this ggml-org repo.
        gguf=GgufFiles(
            repo="ggml-org/Qwen3-VL-2B-Instruct-GGUF",
            model="Qwen3-VL-2B-Instruct-Q8_0.gguf",
            mmproj="mmproj-Qwen3-VL-2B-Instruct-Q8_0.gguf",
            size_bytes=2_279_480_352,
        ),
        mlx=MlxFiles(repo="mlx-community/Qwen3-VL-2B-Instruct-4bit", size_bytes=1_800_000_000),
        source="https://huggingface.co/Qwen/Qwen3-VL-2B-Instruct",
        notes="General VLM; good Markdown and LaTeX for its size.",
    ),
)
"""Every curated model, small ones first within each family group."""


# -- language packs for the embedded engine -----------------------------------------------------------------


_BUILTIN_CODES = (
    "zh ch chinese_cht zh-tw en ja af az bs ca cs cy da de es et eu fi fr ga gl hr hu id is it ku la lb lt "
    "lv mi ms mt nl no oc pl pt qu rm ro rs_latin sk sl sq sv sw tl tr uz vi"
)
BUILTIN_LANGUAGES: frozenset[str] = frozenset(_BUILTIN_CODES.split())
"""Language codes the embedded engine's own recogniser reads (PP-OCRv6 small in the ``rapidocr`` 3.10 wheel:
``ppocrv6_langs`` in its ``default_models.yaml``): Chinese, Japanese, English, 48 Latin-script languages."""

PACK_REPO = "monkt/paddleocr-onnx"
"""Hub repository of the packs: PaddleOCR's PP-OCRv5 mobile recognisers converted to ONNX, one folder per
script under ``languages/`` holding ``rec.onnx`` and its ``dict.txt`` (Apache-2.0, the model card's licence,
inherited from PaddleOCR). Its paths are the ones other published clients of the repository download
(``languages/{lang}/rec.onnx``, ``languages/{lang}/dict.txt``). The same models, converted by RapidAI with the
dictionary inside the ONNX file, are on ModelScope (``RapidAI/RapidOCR``, ``onnx/PP-OCRv5/rec/``), whose
SHA-256 sums the ``rapidocr`` wheel lists in ``default_models.yaml``; ModelScope does not speak the
Hugging Face hub protocol, so textdrop downloads from the hub."""


@dataclass(frozen=True)
class LanguagePack:
    """A recognition model for one script, for the embedded engine (RapidOCR).

    Attributes:
        id: Short id for ``textdrop models pull`` and ``--lang``, e.g. ``eslav``.
        title: Human-readable name.
        script: The script it reads, as warnings name it (e.g. ``Cyrillic``).
        languages: ISO 639-1 codes (PaddleOCR's own where there is none) it reads; ``--lang`` takes them.
        model: Path of the ONNX recogniser in :data:`PACK_REPO`.
        dictionary: Path of its character list (one character a line), or None when the ONNX file carries
            it in its ``character`` metadata.
        size_bytes: Approximate download size in bytes (display and the first disk check; the hub's own
            sizes are checked before the transfer).
        licence: Licence of the weights (SPDX id).
        source: Where the model and its licence are published.
        repo: Hub repository id.
        revision: Branch, tag or commit to download.
        sha256: Expected SHA-256 of the model file, checked after the download when known.
        rtl: The script is written right to left: the recogniser reads the line left to right, and the
            text is put in reading order with python-bidi (RapidOCR's ``arabic`` handling).
    """

    id: str
    title: str
    script: str
    languages: tuple[str, ...]
    model: str
    dictionary: str | None
    size_bytes: int
    licence: str = "Apache-2.0"
    source: str = ""
    repo: str = PACK_REPO
    revision: str = "main"
    sha256: str | None = None
    rtl: bool = False

    @property
    def files(self) -> tuple[str, ...]:
        """The files to download: the model, then its dictionary when it has one."""
        return (self.model,) if self.dictionary is None else (self.model, self.dictionary)


def _pack(row: tuple[str, str, str, str, str, float, str], rtl: bool = False) -> LanguagePack:
    pack_id, folder, title, script, languages, size_mb, card = row
    return LanguagePack(
        id=pack_id,
        title=title,
        script=script,
        languages=tuple(languages.split()),
        model=f"languages/{folder}/rec.onnx",
        dictionary=f"languages/{folder}/dict.txt",
        size_bytes=int(size_mb * 1_000_000),
        source=f"huggingface.co/PaddlePaddle/{card}_PP-OCRv5_mobile_rec (Apache-2.0), ONNX: {PACK_REPO}",
        rtl=rtl,
    )


# (id, folder in PACK_REPO's languages/, title, script, language codes, approximate MB, PaddleOCR model name)
# Sizes: the PP-OCRv5 mobile recognisers are about 7.5 MB (Korean, with its larger dictionary, about 13 MB);
# language lists from PaddleOCR's PP-OCRv5 multilingual documentation (the model cards in ``source``).
# fmt: off
LANGUAGE_PACKS: tuple[LanguagePack, ...] = (
    _pack(("eslav", "eslav", "East Slavic (Cyrillic)", "Cyrillic", "ru uk be", 7.6, "eslav")),
    _pack(("greek", "greek", "Greek", "Greek", "el", 7.5, "el")),
    _pack(("korean", "korean", "Korean", "Hangul", "ko", 13.4, "korean")),
    _pack(("arabic", "arabic", "Arabic script", "Arabic", "ar fa ur ug ps ku sd", 7.6, "arabic"), rtl=True),
    _pack(("devanagari", "hindi", "Devanagari", "Devanagari", "hi mr ne sa mai new gom", 7.6, "devanagari")),
    _pack(("thai", "thai", "Thai", "Thai", "th", 7.5, "th")),
    _pack(("tamil", "tamil", "Tamil", "Tamil", "ta", 7.5, "ta")),
    _pack(("telugu", "telugu", "Telugu", "Telugu", "te", 7.5, "te")),
    _pack(("latin", "latin", "Extended Latin", "Latin", "latin", 7.6, "latin")),
)
# fmt: on
"""The language packs. ``latin`` (40+ Latin-script languages) mostly overlaps the built-in recogniser; it is
chosen by its id (``--lang latin``), never for a language code."""


def find_pack(ref: str) -> LanguagePack | None:
    """The pack with id ``ref`` (case-insensitive), or None."""
    wanted = ref.strip().lower()
    return next((pack for pack in LANGUAGE_PACKS if pack.id == wanted), None)


def packs_for(languages: tuple[str, ...] | list[str]) -> tuple[bool, tuple[LanguagePack, ...]]:
    """What reads ``languages`` (codes or pack ids): whether the built-in recogniser is needed, and the packs.

    An empty list means the built-in recogniser alone.

    Raises:
        ModelError: a code that neither the built-in recogniser nor any pack reads (the message lists them).
    """
    builtin = not languages
    packs: dict[str, LanguagePack] = {}
    for language in languages:
        code = language.strip().lower()
        pack = find_pack(code) or next((p for p in LANGUAGE_PACKS if code in p.languages), None)
        if pack is not None:
            packs.setdefault(pack.id, pack)
        elif code in BUILTIN_LANGUAGES or re.split("[-_]", code)[0] in BUILTIN_LANGUAGES:
            builtin = True
        else:
            known = sorted({code for pack in LANGUAGE_PACKS for code in pack.languages} | BUILTIN_LANGUAGES)
            raise ModelError(
                f"No recogniser reads the language {language!r}. Use ISO 639-1 codes such as ru, el, ko, ar, "
                f"hi, th, en or de (all: {', '.join(known)}), or a pack id (textdrop models list)."
            )
    return builtin, tuple(packs.values())


def missing_pack_message(pack: LanguagePack, languages: tuple[str, ...] | list[str]) -> str:
    """What to say when ``pack``, needed for ``languages``, is not downloaded."""
    return (
        f"Reading {', '.join(languages)} needs the {pack.title} language pack ({pack.id}, about "
        f"{pack.size_bytes / 1e6:.0f} MB, {pack.licence}), which is not installed. Install it with: "
        f"textdrop models pull {pack.id}"
    )


def known_ids() -> tuple[str, ...]:
    """The ids of :data:`CATALOG`, in order."""
    return tuple(entry.id for entry in CATALOG)


def find_entry(model_id: str) -> ModelEntry:
    """The catalog entry with id ``model_id`` (case-insensitive).

    Raises:
        ModelError: no entry has that id; the message lists the known ids.
    """
    wanted = model_id.strip().lower()
    for entry in CATALOG:
        if entry.id == wanted:
            return entry
    raise ModelError(
        f"Unknown model {model_id!r}. Known models: {', '.join(known_ids())} (see: textdrop models list)."
    )


def default_entry(backend: str, kind: str = "small") -> ModelEntry:
    """The entry that fills the ``kind`` default slot of ``backend``.

    Args:
        backend: ``llama`` or ``mlx``.
        kind: ``small`` (fast, little memory) or ``quality`` (best results, several GB).

    Raises:
        ModelError: unknown backend or kind, or no entry fills that slot.
    """
    if backend not in BACKENDS:
        raise ModelError(f"Unknown backend {backend!r}: choose one of {', '.join(BACKENDS)}.")
    if kind not in KINDS:
        raise ModelError(f"Unknown default kind {kind!r}: choose one of {', '.join(KINDS)}.")
    slot = f"{backend}:{kind}"
    for entry in CATALOG:
        if slot in entry.defaults:
            return entry
    raise ModelError(f"No catalog model is the {kind} default for {backend}.")


__all__ = [
    "BACKENDS",
    "BUILTIN_LANGUAGES",
    "CATALOG",
    "FAMILIES",
    "KINDS",
    "LANGUAGE_PACKS",
    "MLX_ALLOW_PATTERNS",
    "GgufFiles",
    "LanguagePack",
    "LocalModel",
    "MlxFiles",
    "ModelEntry",
    "default_entry",
    "find_entry",
    "find_pack",
    "known_ids",
    "missing_pack_message",
    "packs_for",
]


def is_apple_silicon() -> bool:
    """True on a Mac with an Apple Silicon chip (where mlx-vlm runs on the GPU through Metal)."""
    return sys.platform == "darwin" and platform.machine() == "arm64"


def default_backend() -> str:
    """The backend for models on this machine: ``mlx`` on Apple Silicon, ``llama`` everywhere else."""
    return "mlx" if is_apple_silicon() else "llama"
