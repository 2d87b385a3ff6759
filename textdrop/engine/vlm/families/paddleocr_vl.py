"""PaddleOCR-VL (PaddlePaddle): a NaViT SigLIP encoder with ERNIE-4.5-0.3B, trained on four task prompts.

Task prompts "OCR:", "Table Recognition:", "Formula Recognition:", "Chart Recognition:"
(https://huggingface.co/PaddlePaddle/PaddleOCR-VL model card, transformers usage: PROMPTS = {"ocr": "OCR:",
…}). Without PaddleOCR's layout model in front, the whole page goes to the "OCR:" task (plain text); a
table answers in bare OTSL tokens (no ``<otsl>`` wrapper), which :mod:`.doctags` turns into a table.
"""

from __future__ import annotations

from textdrop.engine.vlm.families import Family
from textdrop.engine.vlm.families.doctags import OTSL_ANY, bare_otsl_to_markdown

OCR = "OCR:"


class PaddleOcrVl(Family):
    def convert(self, answer: str) -> str:
        if OTSL_ANY.search(answer) and "<otsl>" not in answer:
            return bare_otsl_to_markdown(answer)
        return answer


FAMILY = PaddleOcrVl(
    key="paddleocr-vl",
    label="PaddleOCR-VL",
    prompts={"markdown": OCR, "text": OCR},
    page_size=1680,
    follows_instructions=False,
    hints=("paddleocr",),
    sources={"prompt": "huggingface.co/PaddlePaddle/PaddleOCR-VL (model card)"},
)
