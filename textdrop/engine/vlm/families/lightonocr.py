"""LightOnOCR (LightOn): a Pixtral-style encoder with a Qwen3 decoder, trained on the page image alone.

LightOnOCR-1B / LightOnOCR-2-1B take no text at all and answer in Markdown
(https://huggingface.co/lightonai/LightOnOCR-1B-1025 model card: the vLLM request carries only the
image_url part; vLLM's ``examples/offline_inference/vision_language.py``, ``run_lightonocr``, renders
``<|im_start|>system<|im_end|>\\n<|im_start|>user\\n<|image_pad|><|im_end|>\\n<|im_start|>assistant\\n``;
docling's LIGHTONOCR_* specs use prompt=""). The answer ends with ``<|im_end|>`` and has no other control
tokens, so the default decoding and converter fit.

Page size: the model cards render PDF pages so that the longest side is 1540 px (``render_pdf_page(...,
max_resolution=1540)``; the processor's ``longest_edge`` is 1540, and llama.cpp's ``lightonocr`` projector
resizes to the same edge).
"""

from __future__ import annotations

from textdrop.engine.vlm.families import Family

FAMILY = Family(
    key="lightonocr",
    label="LightOnOCR",
    prompts={"markdown": "", "text": ""},
    page_size=1540,
    follows_instructions=False,
    hints=("lightonocr",),
    sources={
        "prompt": "huggingface.co/lightonai/LightOnOCR-1B-1025 (model card); vllm run_lightonocr",
        "page size": "huggingface.co/lightonai/LightOnOCR-2-1B (model card, max_resolution=1540)",
    },
)
