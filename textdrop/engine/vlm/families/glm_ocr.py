"""GLM-OCR (Z.ai): a CogViT encoder with a GLM-0.5B decoder, 0.9B in all, trained on three task prompts.

The model card (https://huggingface.co/zai-org/GLM-OCR, "Prompt Limited") lists the document-parsing
prompts ``Text Recognition:``, ``Formula Recognition:`` and ``Table Recognition:``, sent after the image
(its transformers example: an image part, then ``{"type": "text", "text": "Text Recognition:"}``). The
official SDK sends the same task prompts for the regions its layout model finds
(https://github.com/zai-org/GLM-OCR, ``glmocr/config.yaml``, ``task_prompt_mapping``); textdrop sends the
whole page to the text task. The answer is Markdown (formulas in LaTeX, tables as the model writes them),
ended by ``<|user|>`` or ``<|endoftext|>``, which the common cleanup strips.

Page size: the SDK renders PDF pages at 200 dpi (``pdf_dpi: 200``, an A4 page 1654 x 2339 px) and expects
up to 6144 image tokens of 28 x 28 px (``image_expect_length: 6144``, about 2218 x 2218 px); 2200 px on the
longest side stays within that budget for any page shape.
"""

from __future__ import annotations

from textdrop.engine.vlm.families import Family

TEXT_RECOGNITION = "Text Recognition:"

FAMILY = Family(
    key="glm-ocr",
    label="GLM-OCR",
    prompts={"markdown": TEXT_RECOGNITION, "text": TEXT_RECOGNITION},
    page_size=2200,
    follows_instructions=False,
    hints=("glm-ocr", "glmocr"),
    sources={
        "prompt": "huggingface.co/zai-org/GLM-OCR (model card, 'Prompt Limited')",
        "page size": "github.com/zai-org/GLM-OCR glmocr/config.yaml (pdf_dpi 200, image_expect_length 6144)",
    },
)
