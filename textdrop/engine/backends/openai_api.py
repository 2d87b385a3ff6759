"""Any OpenAI-compatible chat-completions server: Ollama, LM Studio, vLLM, llama-server.

For users who already run such a server, or whose volume outgrows one machine. The page goes to
``POST {base_url}/chat/completions`` as a PNG data URL with the model's prompt, and the answer streams
back as server-sent events. The API key is read from the environment variable named by ``api_key_env``
at load time and is sent only in the ``Authorization`` header: never written to logs, the config file or
sidecars.

Presets (``preset = "ollama"`` in the ``[openai]`` table sets ``base_url``):

============  ============================  ==============================================
preset        base_url                      start the server with
============  ============================  ==============================================
ollama        http://localhost:11434/v1     ``ollama serve``; ``ollama pull qwen2.5vl:3b``
lmstudio      http://localhost:1234/v1      LM Studio → Developer → Start server
vllm          http://localhost:8000/v1      ``vllm serve allenai/olmOCR-2-7B-1025-FP8``
llama-server  http://localhost:8080/v1      ``llama-server -m model.gguf --mmproj mmproj.gguf``
============  ============================  ==============================================
"""

from __future__ import annotations

import json
import logging
import os
import random
import time
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from textdrop.engine.errors import EngineUnavailableError, ModelError, TextdropError
from textdrop.engine.vlm import Stream, VlmEngine, guess_family, png_data_url

if TYPE_CHECKING:
    from PIL import Image

log = logging.getLogger(__name__)

PRESETS: dict[str, str] = {
    "ollama": "http://localhost:11434/v1",
    "lmstudio": "http://localhost:1234/v1",
    "vllm": "http://localhost:8000/v1",
    "llama-server": "http://localhost:8080/v1",
}
"""Each server's default OpenAI-compatible base URL (from its documentation)."""

RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})
"""HTTP statuses worth retrying: timeouts, rate limits, a server still loading the model."""


class OpenAIOptions(BaseModel):
    """The ``[openai]`` table of config.toml."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    preset: Literal["ollama", "lmstudio", "vllm", "llama-server"] | None = Field(
        None, description="Sets base_url to the server's default address."
    )
    base_url: str = Field(PRESETS["ollama"], description="The server's OpenAI-compatible API root, …/v1.")
    model: str | None = Field(None, description="The server's model name (the engine spec may name it).")
    api_key_env: str = Field(
        "TEXTDROP_API_KEY", description="Name of the environment variable that holds the API key, if any."
    )
    page_size: int = Field(1288, ge=256, le=4096, description="Longest side in pixels of the page sent.")
    connect_timeout: float = Field(5.0, gt=0, description="Seconds to wait for a connection.")
    read_timeout: float = Field(300.0, gt=0, description="Seconds to wait for the next streamed chunk.")
    retries: int = Field(2, ge=0, le=10, description="Retries of a failed request before the page fails.")
    retry_seconds: float = Field(1.0, ge=0, description="First backoff in seconds; doubles, with jitter.")

    @model_validator(mode="after")
    def _apply_preset(self) -> OpenAIOptions:
        if self.preset is not None and "base_url" not in self.model_fields_set:
            object.__setattr__(self, "base_url", PRESETS[self.preset])
        return self


class OpenAIEngine(VlmEngine):
    """A VLM served over the OpenAI chat-completions API."""

    name = "openai"
    install_hint = "It needs only httpx, which textdrop installs."
    options_model = OpenAIOptions

    def __init__(self, model: str | None = None, options: BaseModel | None = None) -> None:
        super().__init__(model, options)
        self._client: Any = None

    @classmethod
    def is_available(cls) -> bool:
        return True

    def _load_model(self) -> None:
        import httpx

        opts: OpenAIOptions = self.options
        name = self.model_ref or opts.model
        if not name:
            raise ModelError(
                "Name the server's model: --engine openai:<model> (e.g. openai:qwen2.5vl:3b), or set model "
                "in the [openai] table of the configuration file."
            )
        key = os.environ.get(opts.api_key_env)
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._client = httpx.Client(
            base_url=opts.base_url.rstrip("/"),
            headers=headers,
            timeout=httpx.Timeout(opts.read_timeout, connect=opts.connect_timeout),
        )
        try:
            response = self._client.get("/models")
        except httpx.HTTPError as exc:
            self._close_model()
            raise EngineUnavailableError(
                f"No OpenAI-compatible server answers at {opts.base_url} ({exc}). Start it, or set base_url "
                "(or preset) in the [openai] table of the configuration file."
            ) from exc
        if response.status_code in (401, 403):
            self._close_model()
            raise EngineUnavailableError(
                f"The server at {opts.base_url} refused the API key (HTTP {response.status_code}). Put the "
                f"key in the environment variable {opts.api_key_env}."
            )
        served = _model_ids(response)
        if served and name not in served:
            log.warning(
                "%s: the server lists no model %r (it serves: %s)", self.name, name, ", ".join(served)
            )
        self.model = name
        self.family = guess_family(name)
        self.page_size = opts.page_size

    def _generate(self, image: Image.Image, prompt: str, *, max_tokens: int, temperature: float) -> Stream:
        import httpx

        opts: OpenAIOptions = self.options
        body = {
            "model": self.model,
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "image_url", "image_url": {"url": png_data_url(image)}},
                        *(
                            [{"type": "text", "text": prompt}] if prompt else []
                        ),  # LightOnOCR: the image alone
                    ],
                }
            ],
            "max_tokens": max_tokens,
            "temperature": temperature,
            "stream": True,
        }
        for attempt in range(opts.retries + 1):
            last = attempt == opts.retries
            try:
                with self._client.stream("POST", "/chat/completions", json=body) as response:
                    if response.status_code in RETRY_STATUS and not last:
                        log.info("%s: HTTP %d, retrying", self.name, response.status_code)
                    elif response.status_code >= 400:
                        response.read()
                        raise TextdropError(
                            f"The server at {opts.base_url} answered HTTP {response.status_code}: "
                            f"{response.text[:300]}"
                        )
                    else:
                        return (yield from _events(response))
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.RemoteProtocolError) as exc:
                if last:
                    raise
                log.info("%s: %s, retrying", self.name, exc)
            if self.halted:
                return "stop"
            time.sleep(opts.retry_seconds * 2**attempt * random.uniform(0.5, 1.0))
        return "stop"

    def _close_model(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


def _model_ids(response: Any) -> list[str]:
    """Model ids of a ``GET /models`` answer (empty when it is not the OpenAI shape)."""
    try:
        return [item["id"] for item in response.json()["data"]]
    except (ValueError, KeyError, TypeError):
        return []


def _events(response: Any) -> Stream:
    """Text chunks of a streamed chat completion (server-sent events); returns the finish reason."""
    finish = "stop"
    for line in response.iter_lines():
        if not line.startswith("data:"):
            continue
        payload = line[5:].strip()
        if payload == "[DONE]":
            break
        event = json.loads(payload)
        if "error" in event:
            raise TextdropError(f"The server failed: {event['error']}")
        for choice in event.get("choices", []):
            if text := (choice.get("delta") or {}).get("content"):
                yield text
            finish = choice.get("finish_reason") or finish
    return finish
