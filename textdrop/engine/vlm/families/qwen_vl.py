"""Qwen2.5-VL and Qwen3-VL (Alibaba): general VLMs that read documents well.

Qwen's own document-parsing cookbook prompt, "qwenvl markdown", answers with LaTeX tables and
``<!-- Image (x1, y1, x2, y2) -->`` placeholders, which is not what a Markdown sidecar wants, so the
markdown mode uses the plain instruction docling ships for Qwen2.5-VL (QWEN25_VL_3B_MLX in
https://github.com/docling-project/docling/blob/main/docling/datamodel/vlm_model_specs.py); a user who
prefers "qwenvl markdown" can pass it as a custom prompt (the cleanup drops the coordinate comments).
The text prompt is the OCR example of https://github.com/QwenLM/Qwen3-VL (README, vLLM/SGLang examples).

Message layout: the image, then the text (the model cards' and cookbooks' examples). The chat templates
stored in the GGUFs render that right: Qwen2.5-VL's adds the default system turn "You are a helpful
assistant.", Qwen3-VL's adds none (tests/fixtures/tiny/qwen2_5_vl.py and qwen3_vl.py copy both).

Page size: 1600 px on the longest side. Neither processor shrinks it (Qwen2.5-VL's ``max_pixels`` is
12845056, Qwen3-VL's ``longest_edge`` 16777216 pixels: their preprocessor_config.json); an A4 page of
1600 x 1131 px costs about 2280 image tokens on Qwen2.5-VL (28 px per token side: patch 14, merge 2) and
1750 on Qwen3-VL (32 px: patch 16, merge 2), above the 256-1280 tokens the Qwen3-VL README gives as an
example budget for photos, because small print needs the pixels.
"""

from __future__ import annotations

from textdrop.engine.vlm.families import Family
from textdrop.engine.vlm.families.generic import MARKDOWN

FAMILY = Family(
    key="qwen-vl",
    label="Qwen-VL",
    prompts={"markdown": MARKDOWN, "text": "Read all the text in the image."},
    page_size=1600,
    language_hint=True,
    hints=("qwen",),
    sources={
        "prompt": "docling vlm_model_specs.py QWEN25_VL_3B_MLX; github.com/QwenLM/Qwen3-VL README",
        "layout": "huggingface.co/Qwen/Qwen2.5-VL-3B-Instruct and Qwen/Qwen3-VL-2B-Instruct model cards",
        "page_size": "preprocessor_config.json of both (max_pixels, size.longest_edge); Qwen3-VL README",
    },
)
