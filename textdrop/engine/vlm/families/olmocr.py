"""olmOCR-2 (allenai): Qwen2.5-VL-7B fine-tuned to answer YAML front matter, then Markdown.

Prompt: ``build_no_anchoring_v4_yaml_prompt()`` in
https://github.com/allenai/olmocr/blob/main/olmocr/prompts/prompts.py, the prompt olmocr/pipeline.py sends
to olmOCR-2, *before* the image: ``build_page_query`` (olmocr/pipeline.py, allenai/olmocr commit 99b5f33)
builds the user message as ``[{"type": "text", ...}, {"type": "image_url", ...}]``. The page is rendered
at ``--target_longest_image_dim`` 1288 px. The answer's front matter holds primary_language,
is_rotation_valid, rotation_correction, is_table and is_diagram; the converter drops it (``null`` is the
answer for a page without text), and a page the model finds rotated is turned and read again
(:meth:`OlmOcr.page_turn`, as ``process_page`` does).
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
    """olmOCR: the front matter is dropped from the Markdown, and its rotation fields turn the page."""

    def convert(self, answer: str) -> str:
        return split_front_matter(answer)[1]

    def page_turn(self, answer: str) -> int:
        """``rotation_correction`` when the front matter says ``is_rotation_valid: False``.

        olmocr/pipeline.py ``process_page`` does the same: on ``not is_rotation_valid`` it adds
        ``rotation_correction`` to the page's cumulative rotation and reads the page again (not on its last
        attempt), and ``build_page_query`` turns the image with ``Image.Transpose.ROTATE_90`` for 90,
        ``ROTATE_180`` for 180 and ``ROTATE_270`` for 270.
        """
        meta = split_front_matter(answer.lstrip())[0]
        if meta.get("is_rotation_valid", "").lower() != "false":
            return 0
        try:
            turn = int(meta.get("rotation_correction", "0"))
        except ValueError:
            return 0
        return turn if turn in (90, 180, 270) else 0


FAMILY = OlmOcr(
    key="olmocr",
    label="olmOCR",
    prompts={"markdown": PAGE, "text": PAGE},
    # olmocr/pipeline.py build_page_query: the message's content is [text, image_url], text first
    text_first=True,
    page_size=1288,
    hints=("olmocr",),
    sources={
        "prompt": "olmocr/prompts/prompts.py build_no_anchoring_v4_yaml_prompt",
        "text_first": "olmocr/pipeline.py build_page_query (content: text, then image_url)",
        "page_turn": "olmocr/pipeline.py process_page (cumulative_rotation) and build_page_query",
        "page_size": "olmocr/pipeline.py --target_longest_image_dim (1288)",
    },
)
