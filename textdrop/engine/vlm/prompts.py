"""The prompt sent with a page image: the family's own, a json-mode instruction, or the user's.

Each specialised OCR model was trained on one or a few exact prompts, and answers best (often: only) when it
gets that prompt back verbatim; those prompts live in the family modules
(:mod:`textdrop.engine.vlm.families`), each with its source. :func:`build_prompt` picks one by family and
*mode*:

``markdown``
    The family's own document-to-Markdown prompt (its answer markup is converted by the family).
``text``
    Plain text in reading order. Families trained on a single prompt get that prompt again; the caller
    flattens the answer with ``postprocess.clean(family, answer, "text")``.
``json``
    Key-value extraction (receipts, invoices): one JSON object and nothing else. The instruction is the same
    for every family. OCR-only families (``Family.follows_instructions`` false) were never trained to
    follow instructions and will most likely transcribe the page instead; they still get the instruction,
    and the caller says so.

An empty prompt (LightOnOCR) means: send the page image alone, without a text part.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from textdrop.engine.vlm import families
from textdrop.engine.vlm.families import Family
from textdrop.engine.vlm.postprocess import MODES

# --- languages ------------------------------------------------------------------------------------------
# The OCR-specialised families were trained on their exact prompts, so a language hint would change what
# they were trained on; only families with plain-instruction prompts (``Family.language_hint``) get one.
LANGUAGE_NAMES = {
    "ar": "Arabic", "be": "Belarusian", "de": "German", "el": "Greek", "en": "English", "es": "Spanish",
    "fa": "Persian", "fr": "French", "hi": "Hindi", "it": "Italian", "ja": "Japanese", "ko": "Korean",
    "mr": "Marathi", "ne": "Nepali", "nl": "Dutch", "pl": "Polish", "pt": "Portuguese", "ru": "Russian",
    "ta": "Tamil", "te": "Telugu", "th": "Thai", "tr": "Turkish", "uk": "Ukrainian", "ur": "Urdu",
    "vi": "Vietnamese", "zh": "Chinese",
}  # fmt: skip
"""English names of common ISO 639-1 codes, for the hint; other codes are named as given."""


def build_prompt(
    family: str | Family,
    mode: str = "markdown",
    *,
    fields: Sequence[str] | None = None,
    schema: dict | None = None,
    custom: str | None = None,
    languages: Sequence[str] = (),
) -> str:
    """Return the prompt to send with a page image.

    Args:
        family: A family or its key; an unknown key is treated as ``generic``.
        mode: One of :data:`MODES`.
        fields: json mode: the keys to extract, in order (e.g. ``["vendor", "date", "total"]``).
        schema: json mode: a JSON Schema the answer must be valid against; included compactly.
        custom: A user's own prompt. When it is not blank it replaces the built one and is returned as is
            (``fields`` and ``schema`` are then ignored); a blank one counts as not given.
        languages: Languages of the page (ISO 639-1 codes); families with ``language_hint`` are
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
    family = families.get(family)
    prompt = _json_prompt(fields, schema) if mode == "json" else family.prompts[mode]
    names = [LANGUAGE_NAMES.get(code.lower(), code) for code in languages]
    if names and family.language_hint:
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
