"""Any OpenAI-compatible chat-completions server: Ollama, LM Studio, vLLM, SGLang, llama-server.

For users who already run such a server, or whose volume outgrows one machine. The page goes to
``POST {base_url}/chat/completions`` as a PNG data URL with the model's prompt, and the answer streams
back as server-sent events. The API key is read from the environment variable named by ``api_key_env``
at load time and is sent only in the ``Authorization`` header: never written to logs, the config file or
sidecars.

Scale (``docs/adr/014-vlm-guards-and-server-scale.md``): ``concurrency`` pages are in flight per
endpoint (a server batches them), and ``endpoints`` lists more servers serving the same model: each
request goes to the least busy endpoint that has a free slot; an endpoint that fails to connect or breaks
a stream is skipped for a while (:data:`SKIP_SECONDS`, doubling) and the page is retried elsewhere.

Requests: a retry after a stream broke mid-page starts the page afresh (the engine discards what was
streamed, :data:`~textdrop.engine.vlm.guards.RESTART`); a 4xx answer other than 408/429 is final and ends the
page with the server's own message; 429 and 5xx answers are retried after ``Retry-After`` when the server
sends one, else after an exponential backoff, capped at ``retry_max_seconds``. ``max_tokens`` is sent only
when the server reports its context (vLLM's ``max_model_len`` in ``GET /models``), sized so prompt plus
answer fit; otherwise the engine stops the stream at the page's budget itself.

Presets (``preset = "ollama"`` in the ``[openai]`` table sets ``base_url``):

============  ============================  ==============================================
preset        base_url                      start the server with
============  ============================  ==============================================
ollama        http://localhost:11434/v1     ``ollama serve``; ``ollama pull qwen2.5vl:3b``
lmstudio      http://localhost:1234/v1      LM Studio → Developer → Start server
vllm          http://localhost:8000/v1      ``vllm serve allenai/olmOCR-2-7B-1025-FP8``
sglang        http://localhost:30000/v1     ``python -m sglang.launch_server --model-path …``
llama-server  http://localhost:8080/v1      ``llama-server -m model.gguf --mmproj mmproj.gguf``
============  ============================  ==============================================
"""

from __future__ import annotations

import email.utils
import json
import logging
import os
import random
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from textdrop.engine.errors import EngineUnavailableError, ModelError, ServerRejectedError, TextdropError
from textdrop.engine.vlm import families
from textdrop.engine.vlm.guards import (
    RESTART,
    Stream,
    VlmEngine,
    message_content,
    png_data_url,
    prompt_tokens,
)

if TYPE_CHECKING:
    from PIL import Image

log = logging.getLogger(__name__)

PRESETS: dict[str, str] = {
    "ollama": "http://localhost:11434/v1",
    "lmstudio": "http://localhost:1234/v1",
    "vllm": "http://localhost:8000/v1",
    "sglang": "http://localhost:30000/v1",
    "llama-server": "http://localhost:8080/v1",
}
"""Each server's default OpenAI-compatible base URL (from its documentation)."""

RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})
"""HTTP statuses worth retrying: timeouts, rate limits, a server still loading the model or overloaded.
Any other status of 400 or more is final (400 bad request, 404 unknown model, 413 too large, 422 invalid)."""

SKIP_SECONDS = 2.0
"""How long an endpoint that failed (no connection, a broken stream, a 5xx) is skipped; doubles with each
failure in a row, up to :data:`SKIP_MAX_SECONDS`."""

SKIP_MAX_SECONDS = 60.0


class OpenAIOptions(BaseModel):
    """The ``[openai]`` table of config.toml."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    preset: Literal["ollama", "lmstudio", "vllm", "sglang", "llama-server"] | None = Field(
        None, description="Sets base_url to the server's default address."
    )
    base_url: str = Field(PRESETS["ollama"], description="The server's OpenAI-compatible API root, …/v1.")
    endpoints: tuple[str, ...] = Field(
        (),
        description="More servers serving the same model (…/v1 roots), used together with base_url: "
        "each page goes to the least busy one; one that fails is skipped for a while.",
    )
    model: str | None = Field(None, description="The server's model name (the engine spec may name it).")
    api_key_env: str = Field(
        "TEXTDROP_API_KEY", description="Name of the environment variable that holds the API key, if any."
    )
    page_size: int | None = Field(
        None,
        ge=256,
        le=4096,
        description="Longest side in pixels of the page sent (default: the model family's own size).",
    )
    concurrency: int = Field(
        8,
        ge=1,
        le=256,
        description="Pages in flight per endpoint (a server batches them; 1 for a server with one slot).",
    )
    connect_timeout: float = Field(5.0, gt=0, description="Seconds to wait for a connection.")
    read_timeout: float = Field(300.0, gt=0, description="Seconds to wait for the next streamed chunk.")
    retries: int = Field(2, ge=0, le=10, description="Retries of a failed request before the page fails.")
    retry_seconds: float = Field(1.0, ge=0, description="First backoff in seconds; doubles, with jitter.")
    retry_max_seconds: float = Field(
        30.0, ge=0, description="Longest wait before a retry, also when the server's Retry-After asks more."
    )

    @model_validator(mode="after")
    def _apply_preset(self) -> OpenAIOptions:
        if self.preset is not None and "base_url" not in self.model_fields_set:
            object.__setattr__(self, "base_url", PRESETS[self.preset])
        return self


@dataclass(eq=False)
class Endpoint:
    """One server: its client, the requests in flight there, and when it may be used again after failing."""

    url: str
    client: Any
    context: int | None = None
    """The server's context in tokens when it reports one (vLLM: ``max_model_len``), else ``None``."""
    busy: int = 0
    failures: int = 0
    skip_until: float = 0.0


class EndpointPool:
    """Least-busy dispatch of requests over endpoints, ``concurrency`` in flight on each.

    Thread-safe: every page thread :meth:`acquire`\\ s an endpoint for one request and :meth:`release`\\ s it.
    """

    def __init__(self, endpoints: list[Endpoint], concurrency: int) -> None:
        self.endpoints = endpoints
        self.concurrency = concurrency
        self._cond = threading.Condition()

    def acquire(self, halted: Any = lambda: False) -> Endpoint | None:
        """The least busy endpoint with a free slot that is not being skipped, waiting for one as needed.

        When every endpoint with a free slot is being skipped, the one whose pause ends first is used
        (the caller's own backoff paces the retry): there is nowhere else to go. Returns ``None`` once
        ``halted()`` is true.
        """
        with self._cond:
            while not halted():
                now = time.monotonic()
                free = [e for e in self.endpoints if e.busy < self.concurrency]
                if free:
                    ready = [e for e in free if e.skip_until <= now]
                    endpoint = (
                        min(ready, key=lambda e: (e.busy, e.failures))
                        if ready
                        else min(free, key=lambda e: e.skip_until)
                    )
                    endpoint.busy += 1
                    return endpoint
                self._cond.wait(0.2)
        return None

    def release(self, endpoint: Endpoint, *, failed: bool = False) -> None:
        """Give the slot back; a failed endpoint is skipped for :data:`SKIP_SECONDS` (doubling)."""
        with self._cond:
            endpoint.busy -= 1
            if failed:
                endpoint.failures += 1
                pause = min(SKIP_MAX_SECONDS, SKIP_SECONDS * 2 ** (endpoint.failures - 1))
                endpoint.skip_until = time.monotonic() + pause
                log.info("openai: %s failed; skipped for %.0f s", endpoint.url, pause)
            else:
                endpoint.failures = 0
            self._cond.notify_all()

    def close(self) -> None:
        for endpoint in self.endpoints:
            endpoint.client.close()


class StreamBroken(Exception):
    """The event stream ended before the server said it was done (no ``[DONE]``, no finish reason)."""


class OpenAIEngine(VlmEngine):
    """A VLM served over the OpenAI chat-completions API, on one or several endpoints."""

    name = "openai"
    install_hint = "It needs only httpx, which textdrop installs."
    options_model = OpenAIOptions

    def __init__(self, model: str | None = None, options: BaseModel | None = None) -> None:
        super().__init__(model, options)
        self._pool: EndpointPool | None = None
        opts: OpenAIOptions = self.options
        self.concurrency = opts.concurrency * len(_urls(opts))

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
        timeout = httpx.Timeout(opts.read_timeout, connect=opts.connect_timeout)
        limits = httpx.Limits(max_connections=opts.concurrency, max_keepalive_connections=opts.concurrency)
        endpoints, problems = [], []
        for url in _urls(opts):
            client = httpx.Client(base_url=url, headers=headers, timeout=timeout, limits=limits)
            endpoint = Endpoint(url, client)
            endpoints.append(endpoint)
            try:
                response = client.get("/models")
            except httpx.HTTPError as exc:
                problems.append(f"{url} ({exc})")
                endpoint.skip_until = time.monotonic() + SKIP_SECONDS
                continue
            if response.status_code in (401, 403):
                for each in endpoints:
                    each.client.close()
                raise EngineUnavailableError(
                    f"The server at {url} refused the API key (HTTP {response.status_code}). Put the "
                    f"key in the environment variable {opts.api_key_env}."
                )
            served = _served_models(response)
            if served and name not in served:
                listed = ", ".join(served)
                log.warning("%s: %s lists no model %r (it serves: %s)", self.name, url, name, listed)
            endpoint.context = served.get(name)
        if len(problems) == len(endpoints):
            for endpoint in endpoints:
                endpoint.client.close()
            raise EngineUnavailableError(
                f"No OpenAI-compatible server answers at {', '.join(problems)}. Start it, or set base_url "
                "(or preset) in the [openai] table of the configuration file."
            )
        for problem in problems:
            log.warning("%s: no answer from %s; it is skipped for now", self.name, problem)
        self._pool = EndpointPool(endpoints, opts.concurrency)
        contexts = [e.context for e in endpoints if e.context]
        self.context = min(contexts) if contexts else None
        self.model = name
        family = families.guess(name)
        self.family = family.key
        self.page_size = opts.page_size or family.page_size

    def _generate(
        self,
        image: Image.Image,
        prompt: str,
        *,
        max_tokens: int,
        temperature: float,
        json_schema: dict[str, Any] | None = None,
    ) -> Stream:
        import httpx

        opts: OpenAIOptions = self.options
        assert self._pool is not None
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [
                {
                    "role": "user",
                    "content": message_content(png_data_url(image), prompt, self.family_info),
                }
            ],
            "temperature": temperature,
            "stream": True,
        }
        if json_schema is not None:  # constrained decoding: vLLM, SGLang, llama-server, LM Studio, Ollama
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "page", "schema": json_schema},
            }
        prompt_size = prompt_tokens(image.size, prompt)
        streamed = False
        failure = "no endpoint was free"
        for attempt in range(opts.retries + 1):
            last = attempt == opts.retries
            endpoint = self._pool.acquire(lambda: self.halted)
            if endpoint is None:
                return "stop"
            failed, delay = True, None
            if endpoint.context is not None:  # vLLM refuses prompt + max_tokens beyond its context
                body["max_tokens"] = max(1, min(max_tokens, endpoint.context - prompt_size))
            else:
                body.pop("max_tokens", None)
            try:
                with endpoint.client.stream("POST", "/chat/completions", json=body) as response:
                    if response.status_code >= 400:
                        response.read()
                        failure = (
                            f"the server at {endpoint.url} answered HTTP {response.status_code}: "
                            f"{_server_message(response)}"
                        )
                        if response.status_code not in RETRY_STATUS:
                            failed = False  # the endpoint works; the request is wrong
                            raise ServerRejectedError(failure[0].upper() + failure[1:] + ".")
                        failed = response.status_code >= 500
                        delay = _retry_after(response.headers.get("Retry-After"))
                    else:
                        if streamed:
                            yield RESTART  # the page starts afresh: nothing of the broken stream is kept
                        events = _events(response)
                        while True:
                            try:
                                chunk = next(events)
                            except StopIteration as stop:
                                failed = False
                                return stop.value
                            streamed = True
                            yield chunk
            except (httpx.TransportError, StreamBroken) as exc:
                failure = f"{endpoint.url}: {exc or type(exc).__name__}"
            except GeneratorExit:  # the engine stopped reading (the budget, a loop, an abort)
                failed = False
                raise
            finally:
                self._pool.release(endpoint, failed=failed)
            if last or self.halted:
                break
            wait = delay if delay is not None else opts.retry_seconds * 2**attempt * random.uniform(0.5, 1.0)
            log.info("%s: %s; retrying in %.1f s", self.name, failure, min(wait, opts.retry_max_seconds))
            self.sleep(min(wait, opts.retry_max_seconds))
        if self.halted:
            return "stop"
        raise TextdropError(f"The request failed after {opts.retries + 1} attempts: {failure}.")

    def _close_model(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None


def _urls(opts: OpenAIOptions) -> list[str]:
    """The endpoints' base URLs: ``base_url`` first, then ``endpoints``, without repeats or a final slash."""
    return list(dict.fromkeys(url.rstrip("/") for url in (opts.base_url, *opts.endpoints)))


def _served_models(response: Any) -> dict[str, int | None]:
    """Model id → context in tokens (``max_model_len``, vLLM; ``None`` when not reported) of a
    ``GET /models`` answer (empty when it is not the OpenAI shape)."""
    try:
        return {item["id"]: item.get("max_model_len") for item in response.json()["data"]}
    except (ValueError, KeyError, TypeError, AttributeError):
        return {}


def _server_message(response: Any) -> str:
    """The server's own reason for an error answer: OpenAI's and vLLM's ``{"error": {"message"}}``,
    Ollama's ``{"error": "…"}``, FastAPI's ``{"detail": …}``, or the body's text (300 characters at most)."""
    try:
        data = response.json()
    except ValueError:
        return response.text.strip()[:300] or response.reason_phrase
    if isinstance(data, dict):
        error = data.get("error", data.get("detail", data.get("message")))
        if isinstance(error, dict):
            error = error.get("message", error)
        if error:
            return str(error)[:300]
    return response.text.strip()[:300]


def _retry_after(value: str | None) -> float | None:
    """Seconds a ``Retry-After`` header asks to wait (delta-seconds or an HTTP date), ``None`` if absent."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _events(response: Any) -> Stream:
    """Text chunks of a streamed chat completion (server-sent events); returns the finish reason.

    Raises:
        StreamBroken: the stream ended without ``[DONE]`` or a finish reason, or with a torn event.
        TextdropError: the server reported an error inside the stream.
    """
    finish = None
    for line in response.iter_lines():
        if not line.startswith("data:"):
            continue
        payload = line[5:].strip()
        if payload == "[DONE]":
            return finish or "stop"
        try:
            event = json.loads(payload)
        except ValueError as exc:
            raise StreamBroken(f"a torn event: {payload[:60]!r}") from exc
        if "error" in event:
            raise TextdropError(f"The server failed: {event['error']}")
        for choice in event.get("choices", []):
            if text := (choice.get("delta") or {}).get("content"):
                yield text
            finish = choice.get("finish_reason") or finish
    if finish is None:
        raise StreamBroken("the stream ended before the answer did")
    return finish
