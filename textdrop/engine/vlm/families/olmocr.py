"""olmOCR-2 (allenai): Qwen2.5-VL-7B fine-tuned to answer YAML front matter, then Markdown.

Prompt: ``build_no_anchoring_v4_yaml_prompt()`` in
https://github.com/allenai/olmocr/blob/main/olmocr/prompts/prompts.py, the prompt olmocr/pipeline.py sends
to olmOCR-2. The answer's front matter holds primary_language, is_rotation_valid, rotation_correction,
is_table and is_diagram; the converter drops it (``null`` is the answer for a page without text).
"""

from __future__ import annotations

import re

from textdrop.engine.vlm.families import Family
from textdrop.engine.vlm.postprocess import split_front_matter

PAGE = (
    "Attached is one page of a document that you must process. "
    "Just return the plain text representation of this document as if you were reading it naturally. "
    "Convert equations to LateX and tables to HTML.\n"
    "If there are any figures or charts, label them with the following markdown syntax "
    "![Alt text describing the contents of the figure](page_startx_starty_width_height.png)\n"
    "Return your output as markdown, with a front matter section on top specifying values for the "
    "primary_language, is_rotation_valid, rotation_correction, is_table, and is_diagram parameters."
)

_FRONT_MATTER = re.compile(r"\A---\n(?:[^\n]*\n)*?(?:primary_language|is_rotation_valid):")


def strip_olmocr_front_matter(answer: str) -> str:
    """``answer`` without a leading olmOCR front matter block (unchanged when there is none)."""
    return split_front_matter(answer)[1] if _FRONT_MATTER.match(answer.lstrip()) else answer


class OlmOcr(Family):
    def convert(self, answer: str) -> str:
        return split_front_matter(answer)[1]


FAMILY = OlmOcr(
    key="olmocr",
    label="olmOCR",
    prompts={"markdown": PAGE, "text": PAGE},
    # olmocr/pipeline.py build_page_query: the message's content is [text, image_url], text first
    text_first=True,
    page_size=1288,
    hints=("olmocr",),
    sources={"prompt": "olmocr/prompts/prompts.py build_no_anchoring_v4_yaml_prompt"},
)
