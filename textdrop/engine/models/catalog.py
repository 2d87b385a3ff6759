"""The curated OCR vision-language models textdrop can download and run.

Each :class:`ModelEntry` names a model once, with up to two builds of it:

- ``gguf`` for the llama.cpp backend (llama-cpp-python 0.3.36): a language-model GGUF and its vision projector
  (``mmproj``). An entry has one only if the vendored llama.cpp knows its projector type
  (``tools/mtmd/clip-impl.h``: ``idefics3``, ``paddleocr``, ``lightonocr``, ``deepseekocr``, ``dots_ocr``,
  ``qwen2.5vl_merger``, ``qwen3vl_merger``, ``glm4v`` for GLM-OCR, ``gemma3``) and its
  ``convert_hf_to_gguf.py`` converts the architecture.
- ``mlx`` for mlx-vlm 0.7.10: a whole hub folder (weights, config, tokenizer, processor), downloaded with
  ``allow_patterns``. An entry has one only if ``mlx_vlm/models/`` has its model type (``idefics3``,
  ``paddleocr_vl``, ``mistral3`` for LightOnOCR, ``deepseekocr``, ``dots_ocr``, ``qwen2_5_vl``, ``qwen3_vl``,
  ``glm_ocr``, ``gemma3``, ``got``).

A backend an entry has no build for is named in :attr:`ModelEntry.not_offered` with the reason (the runtime
cannot load the architecture, or nobody publishes a build), which ``models list`` and ``doctor`` print.

**Sources.** Every repository id, file name, size, licence and score carries its source: the ``source``
field of each build (repository, file names, sizes), :attr:`ModelEntry.licence_source`, and each
:class:`Score`'s ``source``; ``textdrop models info`` prints them. Hugging Face itself is not reachable from
where this catalogue was written, so facts come from public references to the hub (llama.cpp's
``tools/mtmd/tests.sh`` and ``docs/multimodal.md`` for the ``ggml-org`` repos, vendor READMEs and
documentation, download scripts and manifests of other projects that record sizes and SHA-256 sums). A fact
none of them confirms is marked *not verified* in its source. Sizes (bytes, both files or the whole folder)
are used for disk checks, memory warnings and display; the hub's own sizes are checked before a transfer.

**Defaults.** Each backend has a ``small`` and a ``quality`` default (:func:`default_entry`); ``auto`` tries
the quality default first, then the small one, then other downloaded models by published score
(:func:`ranked`; docs/adr/017). Only models under an OSI licence without use restrictions
(:data:`DEFAULT_LICENCES`) can be defaults: research-only or non-commercial licences (Qwen2.5-VL-3B's Qwen
Research License, and Nanonets-OCR2-3B, a fine-tune of it), custom licences not reviewed for commercial use
(dots.ocr) and terms with a use policy (Gemma) are listed but never picked automatically.

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
"""Prompt and post-processing families (:mod:`textdrop.engine.vlm.families`); ``generic``: local files. An
entry whose family module has not landed yet still loads: :func:`families.get` gives it ``generic``."""

BACKENDS = ("llama", "mlx")
"""``llama``: llama-cpp-python with a GGUF and its mmproj; ``mlx``: mlx-vlm with a model folder."""

KINDS = ("small", "quality")
"""The two default slots per backend (see :func:`default_entry`)."""

DEFAULT_LICENCES = frozenset({"Apache-2.0", "MIT"})
"""SPDX ids of the licences a default may have: OSI-approved, commercial use allowed, no use policy."""

MEMORY_FACTOR = 1.25
"""Memory a loaded model needs, as a multiple of its download size (weights plus KV cache, activations and the
runtime), where no measurement is published; a rule of thumb, not a measurement."""

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
        size_bytes: Size of both files together, in bytes (exact where the source gives bytes).
        revision: Branch, tag or commit to download.
        source: Where the repository, the file names and the size come from.
        memory_bytes: Resident memory while reading a page, in bytes, where a measurement is published
            (cited in ``source``); None: estimated (:attr:`memory_need`).
    """

    repo: str
    model: str
    mmproj: str
    size_bytes: int
    revision: str = "main"
    source: str = ""
    memory_bytes: int | None = None

    @property
    def files(self) -> tuple[str, str]:
        """The two file names, language model first."""
        return (self.model, self.mmproj)

    @property
    def memory_need(self) -> int:
        """Memory the loaded build needs, in bytes: the published measurement, else size × MEMORY_FACTOR."""
        return self.memory_bytes or int(self.size_bytes * MEMORY_FACTOR)


@dataclass(frozen=True)
class MlxFiles:
    """An mlx-vlm build: a hub repository folder, filtered by ``allow_patterns``.

    Attributes:
        repo: Hub repository id, e.g. ``mlx-community/Qwen3-VL-2B-Instruct-4bit``.
        size_bytes: Size of the downloaded folder, in bytes.
        revision: Branch, tag or commit to download.
        allow_patterns: Glob patterns (``fnmatch``) of the files to download.
        source: Where the repository and the size come from.
        memory_bytes: Resident memory while reading a page, in bytes, where a measurement is published
            (cited in ``source``); None: estimated (:attr:`memory_need`).
    """

    repo: str
    size_bytes: int
    revision: str = "main"
    allow_patterns: tuple[str, ...] = MLX_ALLOW_PATTERNS
    source: str = ""
    memory_bytes: int | None = None

    @property
    def memory_need(self) -> int:
        """Memory the loaded build needs, in bytes: the published measurement, else size × MEMORY_FACTOR."""
        return self.memory_bytes or int(self.size_bytes * MEMORY_FACTOR)


@dataclass(frozen=True)
class Score:
    """A published whole-benchmark score of a model.

    The two benchmarks measure different things and their numbers are not comparable with each other:
    olmOCR-Bench (https://github.com/allenai/olmocr/tree/main/olmocr/bench) is the share of about 7,000
    pass/fail unit tests on 1,400 PDF pages that the Markdown passes (0-100); OmniDocBench
    (https://github.com/opendatalab/OmniDocBench) v1.5 is ((1 − text edit distance) × 100 + table TEDS +
    formula CDM) / 3 over 1,355 pages (0-100), and its versions are not comparable with each other either.

    Attributes:
        benchmark: ``"olmOCR-Bench"`` or ``"OmniDocBench v1.5"`` (the version matters).
        value: The overall score, 0-100.
        source: Where the number is published (repository file at a commit, paper, model card).
        by: Who measured it: ``"benchmark authors"`` (reproduced in-house) or ``"model authors"``.
        setup: What was measured when it is not the bare model on whole pages, e.g. the vendor's pipeline
            with a layout model in front (textdrop sends whole pages, so expect less).
    """

    benchmark: str
    value: float
    source: str
    by: str
    setup: str = ""

    @property
    def label(self) -> str:
        """Short form for tables: ``olmOCR-Bench 83.2``."""
        return f"{self.benchmark} {self.value:g}"


@dataclass(frozen=True)
class ModelEntry:
    """One curated model and its builds.

    Attributes:
        id: Short id used on the command line and in the config file, e.g. ``granite-docling-258m``.
        title: Human-readable name.
        family: Prompt and post-processing family: a key of :mod:`textdrop.engine.vlm.families`.
        params: Parameter count as the vendor states it, e.g. ``"258M"``.
        licence: Licence of the weights: an SPDX id, or ``LicenseRef-…`` for named terms without one.
        commercial_use: Whether the licence allows commercial use without further agreement.
        page_size: Longest side in pixels the page image is resized to (source in the entry's comment).
        gguf: The llama.cpp build, or None.
        mlx: The mlx-vlm build, or None.
        defaults: Default slots this entry fills, e.g. ``("llama:small", "mlx:small")``.
        source: Model card the licence, prompt and page size come from.
        notes: Anything a user should know before choosing it.
        licence_label: Readable name of the licence (``Gemma Terms of Use``); empty: :attr:`licence` reads
            well as it is.
        licence_source: Where the licence is stated.
        scores: Published olmOCR-Bench / OmniDocBench scores, each with its source.
        not_offered: ``(backend, reason)`` for every backend without a build: why it is not offered there.
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
    licence_label: str = ""
    licence_source: str = ""
    scores: tuple[Score, ...] = ()
    not_offered: tuple[tuple[str, str], ...] = ()

    @property
    def backends(self) -> tuple[str, ...]:
        """The backends this entry has a build for, in :data:`BACKENDS` order."""
        return tuple(b for b in BACKENDS if self.files_for(b) is not None)

    @property
    def licence_name(self) -> str:
        """The licence as users read it: :attr:`licence_label`, else :attr:`licence`."""
        return self.licence_label or self.licence

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

    def why_not(self, backend: str) -> str | None:
        """Why this entry is not offered on ``backend``; None when it is (it has a build there)."""
        if self.files_for(backend) is not None:
            return None
        return dict(self.not_offered).get(backend, "no build is published for this backend")

    def score(self, benchmark: str) -> Score | None:
        """The published score on ``benchmark`` (e.g. ``"olmOCR-Bench"``), or None."""
        return next((score for score in self.scores if score.benchmark == benchmark), None)


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


# -- sources cited by several entries -----------------------------------------------------------------------

OLMOCR_README = "github.com/allenai/olmocr README.md, olmOCR-Bench table (commit f7cfe4c, 2026-03-25)"
"""The official olmOCR-Bench table. Rows without * are reproduced in-house by Ai2; * rows are reported by the
model's authors (olmocr/bench/README.md's footnote)."""

LLAMA_CPP = "llama.cpp as vendored by llama-cpp-python 0.3.36"
"""The llama.cpp source the llama backend runs: tools/mtmd/clip-impl.h (projector types),
tools/mtmd/tests.sh and docs/multimodal.md (the ggml-org repositories it tests)."""

MLX_VLM = "mlx-vlm 0.7.10 (mlx_vlm/models/)"
"""The mlx-vlm release the mlx backend runs; its ``models/`` folder lists the model types it loads."""

THIRD_PARTY_SIZES = (
    "a third-party model comparison that lists bytes and SHA-256 checked against the hub's API"
)
"""Sizes and SHA-256 sums another project checked against huggingface.co's ``/api/models/<repo>/tree/main``
(found through the GitHub search index; the file names the repositories and quantisations)."""

MLX_SIZES = "a third-party model survey that sums the hub API's blob sizes (2026-09-02)"
"""Folder sizes another project read from ``huggingface.co/api/models/<id>?blobs=true``."""


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
        gguf=GgufFiles(
            repo="ggml-org/granite-docling-258M-GGUF",
            model="granite-docling-258M-Q8_0.gguf",
            mmproj="mmproj-granite-docling-258M-f16.gguf",
            size_bytes=380_000_000,
            source=f"repo: {LLAMA_CPP}, tools/mtmd/tests.sh (granite-docling-258M-GGUF:Q8_0); file names: "
            "published download URLs of that repo; size: approximate, not verified",
        ),
        mlx=MlxFiles(
            repo="ibm-granite/granite-docling-258M-mlx",
            size_bytes=530_000_000,
            source="IBM's own MLX conversion (docling's GRANITEDOCLING_MLX spec uses it); bf16, size "
            "approximate, not verified",
        ),
        defaults=("llama:small", "mlx:small"),
        source="https://huggingface.co/ibm-granite/granite-docling-258M",
        notes="Answers in DocTags (converted to Markdown by the post-processor); prompt "
        "'Convert this page to docling.'",
        licence_source="https://huggingface.co/ibm-granite/granite-docling-258M (model card: Apache 2.0)",
        # No olmOCR-Bench or OmniDocBench overall score is published by IBM or in either benchmark's README.
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
        gguf=GgufFiles(
            repo="PaddlePaddle/PaddleOCR-VL-1.6-GGUF",
            model="PaddleOCR-VL-1.6-GGUF.gguf",
            mmproj="PaddleOCR-VL-1.6-GGUF-mmproj.gguf",
            size_bytes=1_817_539_616,
            source=f"{THIRD_PARTY_SIZES}: PaddleOCR-VL-1.6-GGUF.gguf 935,769,056 bytes (sha256 f3ae46ec…), "
            "PaddleOCR-VL-1.6-GGUF-mmproj.gguf 881,770,560 bytes (sha256 204d757d…); the same names and "
            "sizes in other projects' download manifests. 1.6 (released 2026-05) is confirmed: these files "
            "exist",
        ),
        mlx=MlxFiles(
            repo="mlx-community/PaddleOCR-VL-1.6-4bit",
            size_bytes=720_000_000,
            source=f"{MLX_SIZES}: 0.72 GB; used by several mlx-vlm projects (PaddleOCR-VL-1.5 builds also "
            "exist: mlx-community/PaddleOCR-VL-1.5-{4bit,6bit,8bit,bf16})",
        ),
        source="https://huggingface.co/PaddlePaddle/PaddleOCR-VL-1.6",
        notes="Element-level recogniser: prompts 'OCR:', 'Table Recognition:', 'Formula Recognition:'. "
        "The GGUF is BF16 (no smaller quantisation published by PaddlePaddle).",
        licence_source="https://huggingface.co/PaddlePaddle/PaddleOCR-VL-1.6 (Apache 2.0, as every "
        "PaddleOCR-VL card); not read directly here",
        scores=(
            Score(
                "OmniDocBench v1.6",
                96.34,
                "github.com/opendatalab/OmniDocBench README, v1.6_full table, as quoted in a third-party "
                "decision log of 2026-09-05 (the README itself was not reachable here: not verified)",
                "benchmark authors",
                "PaddleOCR-VL pipeline (PP-DocLayout layout model, then the VLM per region)",
            ),
        ),
    ),
    ModelEntry(
        id="glm-ocr",
        title="GLM-OCR (0.9B)",
        family="glm-ocr",
        params="0.9B",
        licence="MIT",
        commercial_use=True,
        # the official SDK renders PDF pages at 200 DPI (about 2200 px on A4, some 6144 image tokens), within
        # mlx_vlm/models/glm_ocr/processing.py's cap of max_pixels = 14*14*2*2*2*6144 (families/glm_ocr.py)
        page_size=2200,
        gguf=GgufFiles(
            repo="ggml-org/GLM-OCR-GGUF",
            model="GLM-OCR-Q8_0.gguf",
            mmproj="mmproj-GLM-OCR-Q8_0.gguf",
            size_bytes=1_434_837_056,
            source=f"repo: {LLAMA_CPP}, docs/multimodal.md (GLM-OCR, PR #19677) and several projects' "
            f"'llama-server -hf ggml-org/GLM-OCR-GGUF:Q8_0'; files and bytes: {THIRD_PARTY_SIZES}: "
            "GLM-OCR-Q8_0.gguf 950,433,408 (sha256 45bc244a…), mmproj-GLM-OCR-Q8_0.gguf 484,403,648 "
            "(sha256 9c4b58e3…)",
        ),
        mlx=MlxFiles(
            repo="mlx-community/GLM-OCR-bf16",
            size_bytes=2_200_000_000,
            source="repo: github.com/zai-org/GLM-OCR examples/mlx-deploy/README.md (commit cef4d0e); size: "
            "estimated from 0.9B parameters in bf16, not verified (the 4-bit build is 1.25 GB per "
            f"{MLX_SIZES})",
        ),
        source="https://huggingface.co/zai-org/GLM-OCR",
        notes="Prompts 'Text Recognition:', 'Table Recognition:', 'Formula Recognition:' and JSON-schema "
        "extraction; trained on regions cut by its PP-DocLayoutV3 pipeline, textdrop sends whole pages.",
        licence_source="github.com/zai-org/GLM-OCR README.md, 'License' (commit cef4d0e): the model is MIT, "
        "the code Apache-2.0",
        scores=(
            Score(
                "OmniDocBench v1.5",
                94.62,
                "github.com/zai-org/GLM-OCR README.md (commit cef4d0e)",
                "model authors",
                "GLM-OCR pipeline (PP-DocLayoutV3 layout, then the VLM per region)",
            ),
        ),
    ),
    ModelEntry(
        id="got-ocr2",
        title="GOT-OCR 2.0 (580M)",
        family="got-ocr",
        params="580M",
        licence="Apache-2.0",
        commercial_use=True,
        # GOT reads one fixed 1024 x 1024 view (mlx_vlm/models/got/processing_got.py: image_size=1024).
        page_size=1024,
        gguf=None,
        mlx=MlxFiles(
            repo="mlx-community/GOT-OCR2_0-8bit",
            size_bytes=800_000_000,
            # The tokenizer is tiktoken-based Python code (tokenization_qwen.py with qwen.tiktoken) that
            # mlx-vlm's GOT processor loads with trust_remote_code.
            allow_patterns=(*MLX_ALLOW_PATTERNS, "tokenization_*.py"),
            source="repo: mlx-community/GOT-OCR2_0-{bf16,8bit,4bit} as named in mlx-vlm's GOT pull request "
            "notes and their model cards (8-bit: output byte-identical to bf16 on the card's tests); memory: "
            "the card's measured peak, 2.06 GB; size: estimated from the card's 560.5M parameters (96.7M in "
            "bf16, the rest at 9.85 bits), not verified",
            memory_bytes=2_060_000_000,
        ),
        source="https://huggingface.co/stepfun-ai/GOT-OCR2_0",
        notes="Two modes: 'OCR: ' (plain text) and 'OCR with format: ' (Markdown/LaTeX); follows no other "
        "instruction. One 1024 px view per page: small print on a dense page is lost.",
        licence_source="mlx-community/GOT-OCR2_0-8bit model card (Apache 2.0, inherited from "
        "stepfun-ai/GOT-OCR2_0)",
        not_offered=(
            (
                "llama",
                "llama.cpp has no GOT-OCR2 vision projector (tools/mtmd/clip-impl.h) and its "
                "convert_hf_to_gguf.py does not convert the architecture",
            ),
        ),
        # olmOCR-Bench from the olmOCR README's table (the same table as deepseek-ocr's score; "GOT OCR …
        # 48.3 ± 1.1"). No OmniDocBench v1.5 score published.
        scores=(Score("olmOCR-Bench", 48.3, OLMOCR_README + " (48.3 ± 1.1)", "benchmark authors"),),
    ),
    ModelEntry(
        id="lightonocr-2-1b",
        title="LightOnOCR-2 1B",
        family="lightonocr",
        params="1B",
        licence="Apache-2.0",
        commercial_use=True,
        # Trained up to 1540 px on the longest edge (arXiv 2601.14251; the processor config says 1540).
        page_size=1540,
        gguf=GgufFiles(
            repo="ggml-org/LightOnOCR-2-1B-GGUF",
            model="LightOnOCR-2-1B-Q8_0.gguf",
            mmproj="mmproj-LightOnOCR-2-1B-Q8_0.gguf",
            size_bytes=1_090_000_000,
            source="repo and file names: other projects' download specs "
            "(huggingface.co/ggml-org/LightOnOCR-2-1B-GGUF/resolve/main/LightOnOCR-2-1B-Q8_0.gguf and "
            f"mmproj-LightOnOCR-2-1B-Q8_0.gguf); size: {THIRD_PARTY_SIZES}, 1.09 GB for the Q8_0 pair",
        ),
        mlx=MlxFiles(
            repo="mlx-community/LightOnOCR-2-1B-bf16",
            size_bytes=2_000_000_000,
            source="repo: docling's LIGHTONOCR_MLX spec (runs through mlx-vlm's mistral3 model type); size: "
            "estimated from 1B parameters in bf16, not verified",
        ),
        defaults=("llama:quality", "mlx:quality"),
        source="https://huggingface.co/lightonai/LightOnOCR-2-1B",
        notes="Needs no prompt text: the image alone asks for a transcription. Markdown with LaTeX.",
        licence_source="arXiv 2601.14251 (LightOnOCR-2 paper): checkpoints released under Apache 2.0",
        scores=(
            Score(
                "olmOCR-Bench",
                83.2,
                "arXiv 2601.14251 and the lightonai/LightOnOCR-2-1B model card (83.2 ± 0.9)",
                "model authors",
            ),
        ),
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
            source=f"repo: {LLAMA_CPP}, tools/mtmd/tests.sh (LightOnOCR-1B-1025-GGUF:Q8_0); file names "
            "follow ggml-org's naming; size approximate: not verified",
        ),
        # mlx-vlm has no LightOnOCR module; the conversion runs through its mistral3 model type.
        mlx=MlxFiles(
            repo="mlx-community/LightOnOCR-1B-1025-bf16",
            size_bytes=2_000_000_000,
            source="repo and size not verified (estimated from 1B parameters in bf16)",
        ),
        source="https://huggingface.co/lightonai/LightOnOCR-1B-1025",
        notes="Superseded by LightOnOCR-2 1B. Needs no prompt text: the image alone asks for a "
        "transcription.",
        licence_source="https://huggingface.co/lightonai/LightOnOCR-1B-1025 (model card: Apache 2.0)",
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
        gguf=GgufFiles(
            repo="ggml-org/DeepSeek-OCR-GGUF",
            model="DeepSeek-OCR-Q8_0.gguf",
            mmproj="mmproj-DeepSeek-OCR-Q8_0.gguf",
            size_bytes=3_573_996_480,
            source=f"repo: {LLAMA_CPP}, tools/mtmd/tests.sh (DeepSeek-OCR-GGUF:Q8_0); sizes 3,126,139,712 + "
            "447,856,768 bytes from a published manifest of the repo",
        ),
        mlx=MlxFiles(
            repo="mlx-community/DeepSeek-OCR-8bit",
            size_bytes=3_600_000_000,
            source="repo and size approximate, not verified",
        ),
        source="https://huggingface.co/deepseek-ai/DeepSeek-OCR",
        notes="Prompt '<image>\\n<|grounding|>Convert the document to markdown.' (or 'Free OCR.'); llama.cpp "
        "needs its deepseek-ocr chat template.",
        licence_source="https://huggingface.co/deepseek-ai/DeepSeek-OCR (model card: MIT)",
        scores=(Score("olmOCR-Bench", 75.7, OLMOCR_README + " (75.7 ± 1.0)", "benchmark authors"),),
    ),
    ModelEntry(
        id="dots-ocr",
        title="dots.ocr (3B)",
        family="dots-ocr",
        params="3B",
        licence="LicenseRef-dots.ocr",
        commercial_use=False,
        # dots.ocr renders PDFs at 200 DPI (about 2200 px on the long side of a Letter/A4 page) and accepts up
        # to MAX_PIXELS = 11,289,600 without downscaling (dots_ocr/utils/consts.py).
        page_size=2200,
        gguf=GgufFiles(
            repo="ggml-org/dots.ocr-GGUF",
            model="dots.ocr-Q8_0.gguf",
            mmproj="mmproj-dots.ocr-Q8_0.gguf",
            size_bytes=3_240_000_000,
            source=f"repo: {LLAMA_CPP}, tools/mtmd/tests.sh (dots.ocr-GGUF:Q8_0); size: {THIRD_PARTY_SIZES}, "
            "3.24 GB for the Q8_0 pair",
        ),
        mlx=MlxFiles(
            repo="mlx-community/dots.ocr-4bit",
            size_bytes=3_540_000_000,
            source=f"{MLX_SIZES}: 3.54 GB",
        ),
        source="https://huggingface.co/rednote-hilab/dots.ocr",
        notes="Custom licence agreement layered on MIT, not reviewed for commercial use: never a default. "
        "Prompt 'OCR' or its layout prompts (JSON with boxes).",
        licence_label="dots.ocr License Agreement (MIT-based)",
        licence_source="https://huggingface.co/rednote-hilab/dots.ocr (LICENSE: dots.ocr License Agreement)",
        # dots.ocr's README reports its own olmOCR-Bench and OmniDocBench numbers; neither table was
        # reachable here to copy them, and neither benchmark's README lists dots.ocr.
    ),
    ModelEntry(
        id="nanonets-ocr2-3b",
        title="Nanonets-OCR2 3B",
        family="nanonets-ocr",
        params="3B",
        licence="LicenseRef-Qwen-Research",
        commercial_use=False,
        # The model card gives no page size; Qwen2.5-VL's processor takes up to 12.8 MP. 1600 px (about 2 MP
        # for a Letter page) is textdrop's speed/accuracy trade-off, not the vendor's number.
        page_size=1600,
        gguf=GgufFiles(
            repo="mradermacher/Nanonets-OCR2-3B-GGUF",
            model="Nanonets-OCR2-3B.Q8_0.gguf",
            mmproj="Nanonets-OCR2-3B.mmproj-Q8_0.gguf",
            size_bytes=4_150_000_000,
            source="mradermacher's quantisation; names from a published download script (Q8_0 and its Q8_0 "
            "projector); size approximate, not verified",
        ),
        mlx=MlxFiles(
            repo="mlx-community/Nanonets-OCR2-3B-4bit",
            size_bytes=3_090_000_000,
            source=f"{MLX_SIZES}: 3.09 GB",
        ),
        source="https://huggingface.co/nanonets/Nanonets-OCR2-3B",
        notes="Fine-tune of Qwen2.5-VL-3B-Instruct, whose Qwen Research License forbids commercial use; the "
        "card states no licence of its own. HTML tables, LaTeX, <img>/<signature>/<watermark> tags.",
        licence_label="Qwen Research License",
        licence_source="https://huggingface.co/Qwen/Qwen2.5-VL-3B-Instruct (LICENSE: Qwen Research License)",
        scores=(Score("olmOCR-Bench", 69.5, OLMOCR_README + " (69.5 ± 1.1)", "benchmark authors"),),
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
        gguf=GgufFiles(
            repo="bartowski/allenai_olmOCR-2-7B-1025-GGUF",
            model="allenai_olmOCR-2-7B-1025-Q4_K_M.gguf",
            mmproj="mmproj-allenai_olmOCR-2-7B-1025-f16.gguf",
            size_bytes=6_037_235_968,
            source="bartowski's quantisation; names and sizes (4,683,072,672 + 1,354,163,296 bytes) from "
            "published manifests",
        ),
        mlx=MlxFiles(
            repo="mlx-community/olmOCR-2-7B-1025-mlx-4bit",
            size_bytes=5_650_000_000,
            source=f"{MLX_SIZES}: 5.65 GB",
        ),
        source="https://huggingface.co/allenai/olmOCR-2-7B-1025",
        notes="Apache-2.0 (Ai2 states it is intended for research and educational use under its Responsible "
        "Use Guidelines). Fine-tune of Qwen2.5-VL-7B (Apache-2.0); answers in YAML front matter + Markdown.",
        licence_source="https://huggingface.co/allenai/olmOCR-2-7B-1025 (model card: Apache 2.0)",
        scores=(
            Score(
                "olmOCR-Bench",
                82.4,
                OLMOCR_README + " (olmOCR v0.4.0, 82.4 ± 1.1)",
                "benchmark authors",
                "olmOCR pipeline v0.4.0 with the FP8 build (page rotation and retries)",
            ),
        ),
    ),
    ModelEntry(
        id="gemma3-4b",
        title="Gemma 3 4B Instruct",
        family="gemma3",
        params="4B",
        licence="LicenseRef-Gemma",
        commercial_use=True,
        # Gemma 3's SigLIP encoder reads one 896 x 896 view (Gemma 3 technical report; the processor resizes
        # every image to 896 x 896), so a larger page only costs resizing time.
        page_size=896,
        gguf=GgufFiles(
            repo="ggml-org/gemma-3-4b-it-GGUF",
            model="gemma-3-4b-it-Q4_K_M.gguf",
            mmproj="mmproj-model-f16.gguf",
            size_bytes=3_382_000_000,
            source=f"repo: {LLAMA_CPP}, tools/mtmd/tests.sh and docs/multimodal.md (gemma-3-4b-it-GGUF); "
            "gemma-3-4b-it-Q4_K_M.gguf 2,489,757,856 bytes (sha256 882e8d2d…) and mmproj-model-f16.gguf "
            "(851 MiB) from other projects' download manifests",
        ),
        mlx=MlxFiles(
            repo="mlx-community/gemma-3-4b-it-qat-4bit",
            size_bytes=3_030_000_000,
            source="repo and size (3.03 GB) from a third-party curated model list; Google's "
            "quantisation-aware-trained 4-bit weights",
        ),
        source="https://huggingface.co/google/gemma-3-4b-it",
        notes="General VLM, not an OCR model: follows instructions (JSON extraction, free prompts) and reads "
        "many languages, but transcribes less faithfully than the OCR models. The Gemma Terms of Use bind "
        "you to Google's Gemma Prohibited Use Policy: offered, never a default.",
        licence_label="Gemma Terms of Use",
        licence_source="https://ai.google.dev/gemma/terms (commercial use allowed, subject to the Gemma "
        "Prohibited Use Policy)",
        # Google publishes no olmOCR-Bench or OmniDocBench score for Gemma 3 4B.
    ),
    ModelEntry(
        id="qwen2.5-vl-3b",
        title="Qwen2.5-VL 3B Instruct",
        family="qwen-vl",
        params="3B",
        licence="LicenseRef-Qwen-Research",
        commercial_use=False,
        # Dynamic resolution (up to 12.8 MP by default); 1600 px is textdrop's trade-off, as for Nanonets.
        page_size=1600,
        gguf=GgufFiles(
            repo="ggml-org/Qwen2.5-VL-3B-Instruct-GGUF",
            model="Qwen2.5-VL-3B-Instruct-Q4_K_M.gguf",
            mmproj="mmproj-Qwen2.5-VL-3B-Instruct-Q8_0.gguf",
            size_bytes=2_960_000_000,
            source=f"repo: {LLAMA_CPP}, tools/mtmd/tests.sh (Qwen2.5-VL-3B-Instruct-GGUF:Q4_K_M); file names "
            "follow ggml-org's naming; size approximate, not verified",
        ),
        mlx=MlxFiles(
            repo="mlx-community/Qwen2.5-VL-3B-Instruct-4bit",
            size_bytes=3_090_000_000,
            source="repo and size approximate, not verified",
        ),
        source="https://huggingface.co/Qwen/Qwen2.5-VL-3B-Instruct",
        notes="General VLM; the 3B size is under the non-commercial Qwen Research License (7B: Apache-2.0).",
        licence_label="Qwen Research License",
        licence_source="https://huggingface.co/Qwen/Qwen2.5-VL-3B-Instruct (LICENSE: Qwen Research License)",
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
        gguf=GgufFiles(
            repo="ggml-org/Qwen3-VL-2B-Instruct-GGUF",
            model="Qwen3-VL-2B-Instruct-Q8_0.gguf",
            mmproj="mmproj-Qwen3-VL-2B-Instruct-Q8_0.gguf",
            size_bytes=2_279_480_352,
            source=f"repo: {LLAMA_CPP}, tools/mtmd/tests.sh (Qwen3-VL-2B-Instruct-GGUF:Q8_0); sizes "
            "1,834,427,296 + 445,053,056 bytes from a published manifest of the repo",
        ),
        mlx=MlxFiles(
            repo="mlx-community/Qwen3-VL-2B-Instruct-4bit",
            size_bytes=1_800_000_000,
            source="repo and size approximate, not verified",
        ),
        source="https://huggingface.co/Qwen/Qwen3-VL-2B-Instruct",
        notes="General VLM; good Markdown and LaTeX for its size.",
        licence_source="https://huggingface.co/Qwen/Qwen3-VL-2B-Instruct (model card: Apache 2.0)",
    ),
)
"""Every curated model: document-OCR models from small to large, then general VLMs."""


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


def ranked(backend: str) -> tuple[ModelEntry, ...]:
    """The entries offered on ``backend``, in the order ``auto`` tries the downloaded ones (docs/adr/017).

    The quality default, then the small default, then the others by published olmOCR-Bench score (highest
    first; the one benchmark whose table is reproduced on one harness and scores whole pages), then those
    with no such score in catalogue order.

    Raises:
        ModelError: unknown backend, or a default slot of it is empty.
    """
    preferred = [default_entry(backend, "quality"), default_entry(backend, "small")]
    others = [e for e in CATALOG if e not in preferred and e.files_for(backend) is not None]
    others.sort(key=lambda e: -score.value if (score := e.score("olmOCR-Bench")) else 0.0)
    return (*preferred, *others)


__all__ = [
    "BACKENDS",
    "BUILTIN_LANGUAGES",
    "CATALOG",
    "DEFAULT_LICENCES",
    "FAMILIES",
    "KINDS",
    "LANGUAGE_PACKS",
    "MEMORY_FACTOR",
    "MLX_ALLOW_PATTERNS",
    "GgufFiles",
    "LanguagePack",
    "LocalModel",
    "MlxFiles",
    "ModelEntry",
    "Score",
    "default_entry",
    "find_entry",
    "find_pack",
    "known_ids",
    "missing_pack_message",
    "packs_for",
    "ranked",
]


def is_apple_silicon() -> bool:
    """True on a Mac with an Apple Silicon chip (where mlx-vlm runs on the GPU through Metal)."""
    return sys.platform == "darwin" and platform.machine() == "arm64"


def default_backend() -> str:
    """The backend for models on this machine: ``mlx`` on Apple Silicon, ``llama`` everywhere else."""
    return "mlx" if is_apple_silicon() else "llama"
