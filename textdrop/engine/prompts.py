"""Per-family prompts for the OCR vision-language models textdrop runs.

Each specialised OCR model was trained on one or a few exact prompts, and answers best (often: only) when it
gets that prompt back verbatim, so the prompts below are copied from each model's card, repository or
reference pipeline (the source is cited next to each). :func:`build_prompt` picks one by *family* (the key
the catalog stores for a model, see :data:`FAMILIES`) and *mode*:

``markdown``
    The family's own document-to-Markdown prompt. Some families answer in another markup that
    :mod:`textdrop.engine.postprocess` turns into Markdown: granite-docling (DocTags), dots.ocr (layout
    JSON), olmOCR (Markdown behind YAML front matter).
``text``
    Plain text in reading order. Families trained on a single prompt get that prompt again; the caller
    flattens the answer with ``postprocess.clean(family, answer, "text")``.
``json``
    Key-value extraction (receipts, invoices): one JSON object and nothing else. The instruction is the same
    for every family. The specialised OCR-only models (granite-docling, paddleocr-vl, lightonocr,
    deepseek-ocr) were never trained to follow instructions and will most likely transcribe the page
    instead; they still get the instruction, and the caller decides whether to offer json mode for them
    (see :data:`INSTRUCTION_FOLLOWING`).

An empty prompt (LightOnOCR) means: send the page image alone, without a text part.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from textdrop.engine.catalog import FAMILIES

"""Model families: the keys that select a prompt here and a post-processor in ``postprocess``."""

MODES = ("markdown", "text", "json")

INSTRUCTION_FOLLOWING = frozenset(FAMILIES) - {
    "granite-docling",
    "paddleocr-vl",
    "lightonocr",
    "deepseek-ocr",
}
"""Families that follow a free instruction such as the json-mode one (general VLMs and OCR models that were
fine-tuned from one without losing that ability)."""

# --- granite-docling ------------------------------------------------------------------------------------
# The one page prompt of granite-docling-258M (and SmolDocling); the answer is DocTags.
# https://huggingface.co/ibm-granite/granite-docling-258M (model card, "Convert this page to docling.") and
# docling's own spec: https://github.com/docling-project/docling/blob/main/docling/datamodel/vlm_prompts.py
# (DOCLING_BASE_PAGE_PROMPT), used by GRANITEDOCLING_* in docling/datamodel/vlm_model_specs.py.
GRANITE_DOCLING_PAGE = "Convert this page to docling."

# --- PaddleOCR-VL ---------------------------------------------------------------------------------------
# Task prompts of PaddleOCR-VL-0.9B: "OCR:", "Table Recognition:", "Formula Recognition:",
# "Chart Recognition:". https://huggingface.co/PaddlePaddle/PaddleOCR-VL (model card, transformers usage:
# PROMPTS = {"ocr": "OCR:", "table": "Table Recognition:", ...}).
# Without PaddleOCR's layout model in front, the whole page goes to the "OCR:" task (plain text; a table
# crop answers in bare OTSL tokens, which postprocess turns into a table).
PADDLEOCR_VL_OCR = "OCR:"

# --- LightOnOCR -----------------------------------------------------------------------------------------
# LightOnOCR-1B / LightOnOCR-2-1B take the page image with no text at all and answer in Markdown.
# https://huggingface.co/lightonai/LightOnOCR-1B-1025 (model card: the vLLM request carries only the
# image_url part) and docling's spec LIGHTONOCR_* (prompt="") in docling/datamodel/vlm_model_specs.py.
LIGHTONOCR_PAGE = ""

# --- DeepSeek-OCR ---------------------------------------------------------------------------------------
# https://github.com/deepseek-ai/DeepSeek-OCR (README "Prompts examples" and DeepSeek-OCR-vllm/config.py):
#   document: <image>\n<|grounding|>Convert the document to markdown.
#   without layouts: <image>\nFree OCR.
# "<image>\n" marks where the image goes in DeepSeek's raw prompt format. Every textdrop backend sends the
# image as its own message part and the runtime's chat template places it, so the marker is left out
# (docling's Ollama spec leaves it out too); a literal "<image>" would only reach the model as text. The
# grounding prompt answers in Markdown interleaved with <|ref|>label<|/ref|><|det|>[[box]]<|/det|> tags.
DEEPSEEK_OCR_MARKDOWN = "<|grounding|>Convert the document to markdown."
DEEPSEEK_OCR_FREE = "Free OCR."

# --- dots.ocr -------------------------------------------------------------------------------------------
# https://github.com/rednote-hilab/dots.ocr/blob/master/dots_ocr/utils/prompts.py
# prompt_layout_all_en: one JSON list of layout cells {bbox, category, text}; Table text is HTML, Formula
# LaTeX, everything else Markdown; Picture cells have no text. Copied verbatim (trailing newline included).
DOTS_OCR_LAYOUT = """Please output the layout information from the PDF image, including each layout element's bbox, its category, and the corresponding text content within the bbox.

1. Bbox format: [x1, y1, x2, y2]

2. Layout Categories: The possible categories are ['Caption', 'Footnote', 'Formula', 'List-item', 'Page-footer', 'Page-header', 'Picture', 'Section-header', 'Table', 'Text', 'Title'].

3. Text Extraction & Formatting Rules:
    - Picture: For the 'Picture' category, the text field should be omitted.
    - Formula: Format its text as LaTeX.
    - Table: Format its text as HTML.
    - All Others (Text, Title, etc.): Format their text as Markdown.

4. Constraints:
    - The output text must be the original text from the image, with no translation.
    - All layout elements must be sorted according to human reading order.

5. Final Output: The entire output must be a single JSON object.
"""  # noqa: E501
# prompt_ocr (same file): "parse ocr text except the Page-header and Page-footer".
DOTS_OCR_TEXT = "Extract the text content from this image."

# --- Nanonets-OCR2 --------------------------------------------------------------------------------------
# https://huggingface.co/nanonets/Nanonets-OCR2-3B (model card; the same prompt as Nanonets-OCR-s) and
# docling's spec NANONETS_OCR2_TRANSFORMERS in docling/datamodel/vlm_model_specs.py.
NANONETS_OCR = (
    "Extract the text from the above document as if you were reading it naturally. "
    "Return the tables in html format. Return the equations in LaTeX representation. "
    "If there is an image in the document and image caption is not present, add a "
    "small description of the image inside the <img></img> tag; otherwise, add the "
    "image caption inside <img></img>. Watermarks should be wrapped in brackets. "
    "Ex: <watermark>OFFICIAL COPY</watermark>. Page numbers should be wrapped in "
    "brackets. Ex: <page_number>14</page_number> or <page_number>9/22</page_number>. "
    "Prefer using ☐ and ☑ for check boxes."
)

# --- olmOCR-2 -------------------------------------------------------------------------------------------
# https://github.com/allenai/olmocr/blob/main/olmocr/prompts/prompts.py build_no_anchoring_v4_yaml_prompt(),
# the prompt olmocr/pipeline.py sends to olmOCR-2. The answer starts with YAML front matter
# (primary_language, is_rotation_valid, rotation_correction, is_table, is_diagram), then the Markdown.
OLMOCR_PAGE = (
    "Attached is one page of a document that you must process. "
    "Just return the plain text representation of this document as if you were reading it naturally. "
    "Convert equations to LateX and tables to HTML.\n"
    "If there are any figures or charts, label them with the following markdown syntax "
    "![Alt text describing the contents of the figure](page_startx_starty_width_height.png)\n"
    "Return your output as markdown, with a front matter section on top specifying values for the "
    "primary_language, is_rotation_valid, rotation_correction, is_table, and is_diagram parameters."
)

# --- Qwen2.5-VL / Qwen3-VL ------------------------------------------------------------------------------
# Qwen's own document-parsing cookbook prompt, "qwenvl markdown", answers with LaTeX tables and
# <!-- Image (x1, y1, x2, y2) --> placeholders, which is not what a Markdown sidecar wants, so the
# markdown mode uses the plain instruction docling ships for Qwen2.5-VL (QWEN25_VL_3B_MLX in
# https://github.com/docling-project/docling/blob/main/docling/datamodel/vlm_model_specs.py); a user who
# prefers "qwenvl markdown" can pass it as ``custom`` (postprocess drops the coordinate comments).
# The text prompt is the OCR example of https://github.com/QwenLM/Qwen3-VL (README, vLLM/SGLang examples).
QWEN_VL_MARKDOWN = "Convert this page to markdown. Do not miss any text and only output the bare markdown!"
QWEN_VL_TEXT = "Read all the text in the image."

# --- generic --------------------------------------------------------------------------------------------
# Any other VLM. The Markdown instruction is the one docling uses across general VLMs (Granite Vision,
# Pixtral, Gemma 3, Qwen2.5-VL in docling/datamodel/vlm_model_specs.py); the text one is textdrop's own.
GENERIC_MARKDOWN = QWEN_VL_MARKDOWN
GENERIC_TEXT = (
    "Transcribe all the text in this image as plain text, in natural reading order. "
    "Output only the text, without any commentary."
)

# --- languages ------------------------------------------------------------------------------------------
# The OCR-specialised families were trained on their exact prompts (above), so a language hint would change
# what they were trained on; only the general VLMs, whose prompts are plain instructions, get one.
LANGUAGE_HINT_FAMILIES = frozenset({"qwen-vl", "generic"})
LANGUAGE_NAMES = {
    "ar": "Arabic", "be": "Belarusian", "de": "German", "el": "Greek", "en": "English", "es": "Spanish",
    "fa": "Persian", "fr": "French", "hi": "Hindi", "it": "Italian", "ja": "Japanese", "ko": "Korean",
    "mr": "Marathi", "ne": "Nepali", "nl": "Dutch", "pl": "Polish", "pt": "Portuguese", "ru": "Russian",
    "ta": "Tamil", "te": "Telugu", "th": "Thai", "tr": "Turkish", "uk": "Ukrainian", "ur": "Urdu",
    "vi": "Vietnamese", "zh": "Chinese",
}  # fmt: skip
"""English names of common ISO 639-1 codes, for the hint; other codes are named as given."""

_PROMPTS: dict[str, dict[str, str]] = {
    "granite-docling": {"markdown": GRANITE_DOCLING_PAGE, "text": GRANITE_DOCLING_PAGE},
    "paddleocr-vl": {"markdown": PADDLEOCR_VL_OCR, "text": PADDLEOCR_VL_OCR},
    "lightonocr": {"markdown": LIGHTONOCR_PAGE, "text": LIGHTONOCR_PAGE},
    "deepseek-ocr": {"markdown": DEEPSEEK_OCR_MARKDOWN, "text": DEEPSEEK_OCR_FREE},
    "dots-ocr": {"markdown": DOTS_OCR_LAYOUT, "text": DOTS_OCR_TEXT},
    "nanonets-ocr": {"markdown": NANONETS_OCR, "text": NANONETS_OCR},
    "olmocr": {"markdown": OLMOCR_PAGE, "text": OLMOCR_PAGE},
    "qwen-vl": {"markdown": QWEN_VL_MARKDOWN, "text": QWEN_VL_TEXT},
    "generic": {"markdown": GENERIC_MARKDOWN, "text": GENERIC_TEXT},
}


def normalize_family(family: str | None) -> str:
    """Return ``family`` as one of :data:`FAMILIES` (case and spaces ignored; unknown → ``generic``)."""
    key = (family or "").strip().lower()
    return key if key in _PROMPTS else "generic"


def build_prompt(
    family: str,
    mode: str = "markdown",
    *,
    fields: Sequence[str] | None = None,
    schema: dict | None = None,
    custom: str | None = None,
    languages: Sequence[str] = (),
) -> str:
    """Return the prompt to send with a page image.

    Args:
        family: One of :data:`FAMILIES`; anything else is treated as ``generic``.
        mode: One of :data:`MODES`.
        fields: json mode: the keys to extract, in order (e.g. ``["vendor", "date", "total"]``).
        schema: json mode: a JSON Schema the answer must be valid against; included compactly.
        custom: A user's own prompt. When it is not blank it replaces the built one and is returned as is
            (``fields`` and ``schema`` are then ignored); a blank one counts as not given.
        languages: Languages of the page (ISO 639-1 codes); families in :data:`LANGUAGE_HINT_FAMILIES` are
            told them ("The page is in Russian and English."), the others get their trained prompt unchanged.

    Returns:
        The prompt text; ``""`` means the image goes alone (LightOnOCR is trained without a prompt).

    Raises:
        ValueError: ``mode`` is not one of :data:`MODES`.
    """
    if mode not in MODES:
        raise ValueError(f"unknown prompt mode {mode!r}; expected one of {', '.join(MODES)}")
    if custom is not None and custom.strip():
        return custom
    prompt = _json_prompt(fields, schema) if mode == "json" else _PROMPTS[normalize_family(family)][mode]
    names = [LANGUAGE_NAMES.get(code.lower(), code) for code in languages]
    if names and normalize_family(family) in LANGUAGE_HINT_FAMILIES:
        listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
        prompt += f" The page is in {listed}."
    return prompt


def _json_prompt(fields: Sequence[str] | None, schema: dict | None) -> str:
    keys = list(dict.fromkeys(str(f).strip() for f in fields or () if str(f).strip()))
    parts = [
        "Extract the information in this document image (for example a receipt or an invoice) "
        "as a single JSON object."
    ]
    if keys:
        parts.append(
            "Use exactly these keys: "
            + ", ".join(json.dumps(k, ensure_ascii=False) for k in keys)
            + ". Use null for a value the document does not show."
        )
    if schema is not None:
        compact = json.dumps(schema, ensure_ascii=False, separators=(",", ":"))
        parts.append(f"The object must be valid against this JSON Schema: {compact}")
    if not keys and schema is None:
        parts.append(
            "Use the document's own labels as keys and its values as values; put repeated items "
            "(such as the line items of a receipt) in an array of objects."
        )
    parts.append("Copy values exactly as printed and do not invent any.")
    parts.append("Answer with the JSON object only: no explanation and no Markdown code fence.")
    return " ".join(parts)
