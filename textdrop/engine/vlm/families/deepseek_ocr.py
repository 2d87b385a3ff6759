"""DeepSeek-OCR: SAM + CLIP vision with a DeepSeek-V2 MoE decoder.

Prompts (https://github.com/deepseek-ai/DeepSeek-OCR README "Prompts examples" and
DeepSeek-OCR-vllm/config.py): document ``<image>\\n<|grounding|>Convert the document to markdown.``, without
layouts ``<image>\\nFree OCR.``. ``<image>\\n`` marks where the image goes in DeepSeek's raw prompt format;
every textdrop backend sends the image as its own message part and the runtime's chat template places it,
so the marker is left out (docling's Ollama spec leaves it out too). The grounding prompt answers in
Markdown interleaved with ``<|ref|>label<|/ref|><|det|>[[box]]<|/det|>`` tags, which the common cleanup
removes (keeping referenced text).
"""

from __future__ import annotations

from textdrop.engine.vlm.families import Family

FAMILY = Family(
    key="deepseek-ocr",
    label="DeepSeek-OCR",
    prompts={"markdown": "<|grounding|>Convert the document to markdown.", "text": "Free OCR."},
    page_size=1024,
    follows_instructions=False,
    hints=("deepseek-ocr",),
    sources={"prompt": "github.com/deepseek-ai/DeepSeek-OCR README and DeepSeek-OCR-vllm/config.py"},
)
