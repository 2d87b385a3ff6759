"""Gemma 3 (Google; 4B and larger instruct models): a general VLM that answers in plain Markdown.

Prompt: the instruction docling gives its general VLMs, Gemma 3 among them (``GEMMA3_12B_MLX`` and
``GEMMA3_27B_MLX`` in https://github.com/docling-project/docling/blob/main/docling/datamodel/vlm_model_specs.py),
shared with :mod:`.generic`. It follows instructions (json mode, a user's prompt, the page's languages).

Message layout: image first, then the text, as Google's model card shows it
(https://huggingface.co/google/gemma-3-4b-it, "Running with the pipeline API": ``{"type": "image"}``
before ``{"type": "text"}``); the chat template writes ``<start_of_image>`` where the image part is.

Page size: both runtimes squash the page to the SigLIP encoder's fixed 896 x 896 pixels (llama.cpp's
fixed-size preprocessor for ``PROJECTOR_TYPE_GEMMA3``, ``clip.vision.image_size`` 896; the
``Gemma3ImageProcessor`` ``size`` 896 x 896 without pan-and-scan), so a larger page only costs time.

Licence: Gemma Terms of Use (https://ai.google.dev/gemma/terms), not an OSI licence; the catalogue shows
it and never makes Gemma 3 a default.
"""

from __future__ import annotations

from textdrop.engine.vlm.families import Family
from textdrop.engine.vlm.families.generic import MARKDOWN, TEXT

FAMILY = Family(
    key="gemma3",
    label="Gemma 3",
    prompts={"markdown": MARKDOWN, "text": TEXT},
    page_size=896,
    follows_instructions=True,
    language_hint=True,
    hints=("gemma-3", "gemma3"),
    sources={
        "prompt": "docling/datamodel/vlm_model_specs.py (GEMMA3_12B_MLX, GEMMA3_27B_MLX)",
        "message layout": "huggingface.co/google/gemma-3-4b-it model card (image, then text)",
        "page size": "llama.cpp tools/mtmd/clip.cpp (PROJECTOR_TYPE_GEMMA3, fixed-size preprocessing); "
        "Gemma3ImageProcessor size 896 x 896",
        "licence": "https://ai.google.dev/gemma/terms",
    },
)
