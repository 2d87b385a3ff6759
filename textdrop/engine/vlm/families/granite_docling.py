"""granite-docling-258M (IBM; also SmolDocling): Idefics3 answering in DocTags.

Prompt: "Convert this page to docling." (https://huggingface.co/ibm-granite/granite-docling-258M model card,
and docling's DOCLING_BASE_PAGE_PROMPT in
https://github.com/docling-project/docling/blob/main/docling/datamodel/vlm_prompts.py). The DocTags
(``<doctag>``, ``<otsl>``, ``<fcel>``, ``<loc_…>`` …) are control tokens of its tokenizer, so the answer is
decoded with them kept (``keep_special``) and converted by :mod:`.doctags`.
"""

from __future__ import annotations

from textdrop.engine.vlm.families import Family
from textdrop.engine.vlm.families.doctags import doctags_to_markdown, looks_like_doctags

PAGE = "Convert this page to docling."


class GraniteDocling(Family):
    def convert(self, answer: str) -> str:
        return doctags_to_markdown(answer) if looks_like_doctags(answer) else answer


FAMILY = GraniteDocling(
    key="granite-docling",
    label="granite-docling",
    prompts={"markdown": PAGE, "text": PAGE},
    keep_special=True,
    # The Idefics3 image processor of this family resizes the longest edge to 2048 (preprocessor_config.json)
    page_size=2048,
    follows_instructions=False,
    hints=("granite-docling", "smoldocling"),
    sources={"prompt": "huggingface.co/ibm-granite/granite-docling-258M; docling vlm_prompts.py"},
)
