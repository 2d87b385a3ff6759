"""Any other VLM: a general model, or a model served under a name that names no family.

The Markdown instruction is the one docling uses across general VLMs (Granite Vision, Pixtral, Gemma 3,
Qwen2.5-VL in https://github.com/docling-project/docling/blob/main/docling/datamodel/vlm_model_specs.py);
the text one is textdrop's own. Because nothing is known of the model, the converter recognises the
markups of the OCR families (an olmOCR or granite-docling fine-tune served under another name).
"""

from __future__ import annotations

from textdrop.engine.vlm.families import GENERIC, Family
from textdrop.engine.vlm.families.doctags import doctags_to_markdown, looks_like_doctags
from textdrop.engine.vlm.families.olmocr import strip_olmocr_front_matter

MARKDOWN = "Convert this page to markdown. Do not miss any text and only output the bare markdown!"
TEXT = (
    "Transcribe all the text in this image as plain text, in natural reading order. "
    "Output only the text, without any commentary."
)


class Generic(Family):
    def convert(self, answer: str) -> str:
        answer = strip_olmocr_front_matter(answer)
        return doctags_to_markdown(answer) if looks_like_doctags(answer) else answer


FAMILY = Generic(
    key=GENERIC,
    label="VLM",
    prompts={"markdown": MARKDOWN, "text": TEXT},
    language_hint=True,
    sources={"prompt": "docling/datamodel/vlm_model_specs.py (general VLM specs)"},
)
