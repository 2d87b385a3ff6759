"""Nanonets-OCR2 (Nanonets): Qwen2.5-VL fine-tuned for document-to-Markdown with HTML tables.

Prompt: https://huggingface.co/nanonets/Nanonets-OCR2-3B (model card; the same prompt as Nanonets-OCR-s)
and docling's spec NANONETS_OCR2_TRANSFORMERS in docling/datamodel/vlm_model_specs.py. The model card's
example sends the system turn "You are a helpful assistant." (Qwen2.5-VL's default, which the stored chat
template adds) and the image before the text. The answer is Markdown with HTML tables and ``<img>``,
``<watermark>``, ``<page_number>`` tags, which stay as they are (HTML is valid Markdown).
"""

from __future__ import annotations

from textdrop.engine.vlm.families import Family

PAGE = (
    "Extract the text from the above document as if you were reading it naturally. "
    "Return the tables in html format. Return the equations in LaTeX representation. "
    "If there is an image in the document and image caption is not present, add a "
    "small description of the image inside the <img></img> tag; otherwise, add the "
    "image caption inside <img></img>. Watermarks should be wrapped in brackets. "
    "Ex: <watermark>OFFICIAL COPY</watermark>. Page numbers should be wrapped in "
    "brackets. Ex: <page_number>14</page_number> or <page_number>9/22</page_number>. "
    "Prefer using ☐ and ☑ for check boxes."
)

FAMILY = Family(
    key="nanonets-ocr",
    label="Nanonets-OCR",
    prompts={"markdown": PAGE, "text": PAGE},
    page_size=1600,
    hints=("nanonets",),
    sources={
        "prompt": "huggingface.co/nanonets/Nanonets-OCR2-3B (model card)",
        "layout": "huggingface.co/nanonets/Nanonets-OCR2-3B (model card: system turn, image, then text)",
    },
)
