"""PaddleOCR-VL (PaddlePaddle): a NaViT SigLIP encoder with ERNIE-4.5-0.3B, trained on four task prompts.

Task prompts "OCR:", "Table Recognition:", "Formula Recognition:", "Chart Recognition:"
(https://huggingface.co/PaddlePaddle/PaddleOCR-VL model card, transformers usage: PROMPTS = {"ocr": "OCR:",
…}); PaddleOCR-VL-1.5 adds "Seal Recognition:" and "Spotting:" and its chat template ends the turn with
``Assistant:\n`` instead of 1.0's ``Assistant: `` (the template travels with the model files, so nothing
here depends on the version). Without PaddleOCR's layout model in front, the whole page goes to the "OCR:"
task (plain text); a table answers in bare OTSL tokens (no ``<otsl>`` wrapper), which :mod:`.doctags` turns
into a table. The OTSL tags are added tokens of the vocabulary (ids 101308-101313, next to
``<|IMAGE_END|>``); decoding keeps special tokens (``keep_special``) so that they survive on llama.cpp
even where a GGUF marks them as control tokens.

Page size: the image processor's ``max_pixels`` is 2822400 = 1680 x 1680 (``preprocessor_config.json``;
mlx-vlm's ``PaddleOCRVLImageProcessor`` default), so 1680 px on the longest side.
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
    keep_special=True,
    page_size=1680,
    follows_instructions=False,
    hints=("paddleocr",),
    sources={
        "prompt": "huggingface.co/PaddlePaddle/PaddleOCR-VL (model card)",
        "page size": "PaddleOCR-VL preprocessor_config.json max_pixels 2822400 (mlx-vlm processing default)",
    },
)
