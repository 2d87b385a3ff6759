"""Qwen2.5-VL and Qwen3-VL (Alibaba): general VLMs that read documents well.

Qwen's own document-parsing cookbook prompt, "qwenvl markdown", answers with LaTeX tables and
``<!-- Image (x1, y1, x2, y2) -->`` placeholders, which is not what a Markdown sidecar wants, so the
markdown mode uses the plain instruction docling ships for Qwen2.5-VL (QWEN25_VL_3B_MLX in
https://github.com/docling-project/docling/blob/main/docling/datamodel/vlm_model_specs.py); a user who
prefers "qwenvl markdown" can pass it as a custom prompt (the cleanup drops the coordinate comments).
The text prompt is the OCR example of https://github.com/QwenLM/Qwen3-VL (README, vLLM/SGLang examples).
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
    sources={"prompt": "docling vlm_model_specs.py QWEN25_VL_3B_MLX; github.com/QwenLM/Qwen3-VL README"},
)
