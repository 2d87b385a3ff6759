"""LightOnOCR (LightOn): a Pixtral-style encoder with a Qwen3 decoder, trained on the page image alone.

LightOnOCR-1B / LightOnOCR-2-1B take no text at all and answer in Markdown
(https://huggingface.co/lightonai/LightOnOCR-1B-1025 model card: the vLLM request carries only the
image_url part; docling's LIGHTONOCR_* specs use prompt="").
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
    sources={"prompt": "huggingface.co/lightonai/LightOnOCR-1B-1025 (model card)"},
)
