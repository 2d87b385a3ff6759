"""DeepSeek-OCR: SAM + CLIP vision with a DeepSeek-V2 MoE decoder (GGUF arch ``deepseek2-ocr``, projector
``deepseekocr``; mlx-vlm ``deepseekocr``).

Prompts (https://github.com/deepseek-ai/DeepSeek-OCR README "Prompts examples" and
DeepSeek-OCR-vllm/config.py): document ``<image>\\n<|grounding|>Convert the document to markdown.``, without
layouts ``<image>\\nFree OCR.``. ``<image>\\n`` marks where the image goes in DeepSeek's raw prompt format;
every textdrop backend sends the image as its own message part and the runtime places it (mlx-vlm's
``IMAGE_TOKEN_NEWLINE`` message format writes ``<image>\\n``; llama.cpp's mtmd ends a DeepSeek-OCR image
with ``\\n``, ``tools/mtmd/mtmd.cpp``), so the marker is left out. The grounding prompt answers in Markdown
interleaved with ``<|ref|>label<|/ref|><|det|>[[box]]<|/det|>`` tags; those are added tokens of its
tokenizer (``<|ref|>`` 128816 … ``<|grounding|>`` 128820 in the ``tokenizer_config.json`` that
baidu/Unlimited-OCR shares with it), so decoding keeps special tokens, and the common cleanup turns the
tags into Markdown (labels dropped, referenced text kept).

Chat template: DeepSeek-OCR has no chat roles - its ``plain`` conversation format is the prompt alone, and
llama.cpp's built-in ``deepseek-ocr`` template (``src/llama-chat.cpp``, ``LLM_CHAT_TEMPLATE_DEEPSEEK_OCR``)
concatenates the message contents. The template stored in its GGUF prints a message's content as it is,
which for the list of content parts that textdrop (and any OpenAI-style client) sends is the Python
list's ``repr`` (issue 13, finding 2). :data:`CHAT_TEMPLATE` renders the parts' text in order instead
(llama-cpp-python's ``MTMDChatHandler`` has already turned the image part into a text part holding the
media marker).
"""

from __future__ import annotations

from textdrop.engine.vlm.families import Family

CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{%- if message['content'] is string -%}{{- message['content'] -}}"
    "{%- else -%}{%- for part in message['content'] -%}"
    "{%- if part['type'] == 'text' -%}{{- part['text'] -}}{%- endif -%}"
    "{%- endfor -%}{%- endif -%}"
    "{%- endfor -%}"
)
"""The message contents concatenated, text parts in order: llama.cpp's ``deepseek-ocr`` template in Jinja."""

FAMILY = Family(
    key="deepseek-ocr",
    label="DeepSeek-OCR",
    prompts={"markdown": "<|grounding|>Convert the document to markdown.", "text": "Free OCR."},
    keep_special=True,
    chat_template=CHAT_TEMPLATE,
    page_size=1024,
    follows_instructions=False,
    hints=("deepseek-ocr",),
    sources={
        "prompt": "github.com/deepseek-ai/DeepSeek-OCR README and DeepSeek-OCR-vllm/config.py",
        "chat template": "llama.cpp src/llama-chat.cpp LLM_CHAT_TEMPLATE_DEEPSEEK_OCR ('no template')",
        "image newline": 'llama.cpp tools/mtmd/mtmd.cpp (PROJECTOR_TYPE_DEEPSEEKOCR: img_end = "\\n")',
        "grounding tokens": "tokenizer_config.json added tokens 128815-128820 (as shared by Unlimited-OCR)",
    },
)
