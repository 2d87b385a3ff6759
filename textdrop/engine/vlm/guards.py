"""The part every VLM backend shares: page preparation, prompts, guards, modes and the fallback.

A backend (llama.cpp, mlx-vlm, an OpenAI-compatible server) only loads its model and streams the text
it generates for one image and prompt (:meth:`VlmEngine._generate`). Around that, :class:`VlmEngine`
adds what desktop VLM tools lack (``docs/adr/005-vlm-engines.md``,
``docs/adr/014-vlm-guards-and-server-scale.md``):

1. **Page preparation**: the page is resized so its longest side is the size the model was trained on
   (its catalogue entry's ``page_size``), aspect ratio kept, enlarging at most :data:`MAX_UPSCALE` times.
2. **Blank pages**: told from the pixels (:func:`ink_fraction`): a page with no ink is blank, one with
   plenty is not; only a page in between (a scanned blank with speckles, a page number alone) is surveyed
   by the embedded engine's text detector. Nothing a VLM says about a blank page is kept (VLMs invent
   text there), and on a blank page no generation starts.
3. **Output budget** from the model's context and the page (:func:`output_budget`), counted on the
   stream. A page that reaches it is never cut silently: it is marked ``truncated`` (the sidecar's front
   matter lists it) with a note. A page whose image and prompt leave no room in the context for the
   shortest answer is not generated: it falls back with that reason (a runtime sizes its context with
   :func:`context_for`).
4. **Repetition loops**: the stream is watched as it arrives (:class:`~textdrop.engine.vlm.postprocess.
   RepetitionDetector`, which tells degenerate repetition from a page's repeated structure); a loop stops
   the generation and the page is retried at a higher temperature (:data:`ATTEMPT_TEMPERATURES`, as
   olmOCR does). On the last attempt the text up to where the loop began is kept.
5. **Fallback**: a page the VLM still fails on (a runtime error, an empty answer) is read by the embedded
   engine at the page's original resolution; the page records why in ``PageResult.fallback``.
6. **Modes**: Markdown (default), plain text, or JSON (key-value extraction: constrained decoding where
   the runtime offers it, then repaired, validated against the user's JSON Schema and retried once when
   invalid; still invalid, the page fails with :class:`~textdrop.engine.errors.ExtractionError`).
7. **Reasoning** (``<think>`` blocks, closed or not) never reaches the result or the streamed text.

Several pages may be read at once (:attr:`~textdrop.engine.registry.Engine.concurrency`, server
backends): every page's state is local to its call, and the embedded engine is used under a lock.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import threading
import time
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel

from textdrop.engine.errors import ExtractionError, ServerRejectedError, TextdropError
from textdrop.engine.registry import Engine, GenerationAborted, RecognizeOptions
from textdrop.engine.result import PageResult
from textdrop.engine.vlm import families
from textdrop.engine.vlm.families import Family
from textdrop.engine.vlm.postprocess import (
    RepetitionDetector,
    clean,
    markdown_to_text,
    parse_json,
    strip_reasoning,
)
from textdrop.engine.vlm.prompts import build_prompt

if TYPE_CHECKING:
    from PIL import Image

    from textdrop.engine.ocr.rapid import RapidEngine

log = logging.getLogger(__name__)

MAX_UPSCALE = 2.0
"""How much a small page (a screenshot region) may be enlarged towards the model's page size. More than
this only blurs: the glyphs gain no detail, and the image costs the VLM more tokens."""

ATTEMPT_TEMPERATURES = (0.1, 0.3, 0.8)
"""Sampling temperature of each attempt at a page: a repetition loop is retried hotter. Steps taken from
olmOCR's ``TEMPERATURE_BY_ATTEMPT`` (``olmocr/pipeline.py``: 0.1, 0.1, 0.2, 0.3, 0.5, 0.8, …), three
attempts instead of eight because a desktop user is waiting."""

TOKENS_PER_CHAR = 1.0
"""Output tokens per character the page budget allows: English prose averages 3–4 characters a token, but
Qwen2-family tokenizers split numbers into single digits, so a dense numeric table costs about one token
a character; the budget must hold that page whole."""

GLYPH_PIXELS = 5 * 10
"""The smallest glyph cell in pixels a VLM still reads at its page size (5 px wide, 10 px high). A page
cannot hold more characters than its area over this, which bounds its output budget by the page itself:
generous on purpose, since the budget only stops a runaway answer (loops are caught on the stream)."""

TOKENS_BASE = 256
"""Tokens every page may use on top of its text: front matter, table markup, a short page's answer."""

CONTEXT_DEFAULT = 32768
"""The context assumed for a model whose runtime does not report one (mlx-vlm; a server without
``max_model_len``): the Qwen2-VL and Qwen2.5-VL families' ``max_position_embeddings`` is 32768 or more."""

PATCH_PIXELS = 28 * 28
"""Image pixels per visual token after merging: Qwen2-VL and its successors use 14 px patches merged 2×2
(the Qwen2-VL paper, section 2.1); the estimate for other families is of the same order."""

CONTEXT_MARGIN = 64
"""Tokens kept free of the budget for the chat template's own tokens."""

INK_CONTRAST = 64
"""Grey levels (of 255) a pixel must differ from the page's background by to count as ink."""

INK_SURE = 0.005
"""Ink fraction from which a page surely has content (a page of text has 3–10 % ink pixels; one line of
12 pt text on a 1288 px page about 0.04 %). Pages with ink below this but above zero are surveyed."""

Stream = Generator[str, None, str]
"""What :meth:`VlmEngine._generate` returns: text chunks, then (as the generator's return value) the
finish reason, ``"stop"`` or ``"length"`` (the runtime's token limit was reached)."""

RESTART = "\x00restart\x00"
"""A chunk :meth:`VlmEngine._generate` yields (this very object) when the answer starts over (a server
backend retried a stream that broke mid-page): everything streamed before it is discarded."""


def prepare_page(image: Image.Image, page_size: int | None) -> Image.Image:
    """The page resized so its longest side is ``page_size`` pixels, aspect ratio kept.

    A larger page is reduced (Lanczos); a smaller one is enlarged by at most :data:`MAX_UPSCALE`
    (bicubic). ``page_size=None`` returns the page as it is.
    """
    if page_size is None:
        return image
    from PIL import Image

    scale = min(page_size / max(image.size), MAX_UPSCALE)
    if abs(scale - 1.0) < 0.01:
        return image
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.LANCZOS if scale < 1 else Image.Resampling.BICUBIC)


def turn_page(image: Image.Image, degrees: int) -> Image.Image:
    """``image`` turned ``degrees`` (0, 90, 180 or 270) counter-clockwise, as olmOCR turns a page it was
    told is rotated (olmocr/pipeline.py ``build_page_query``: ``Image.Transpose.ROTATE_90`` for 90 …)."""
    from PIL import Image

    turns = {90: Image.Transpose.ROTATE_90, 180: Image.Transpose.ROTATE_180, 270: Image.Transpose.ROTATE_270}
    return image.transpose(turns[degrees]) if degrees else image


def png_data_url(image: Image.Image) -> str:
    """The page as a ``data:image/png;base64,…`` URL, the form chat-completion APIs take images in
    (PNG: lossless; compression level 1, because the bytes only cross a pipe or a local socket)."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def message_content(image_url: str | None, prompt: str, family: Family) -> list[dict[str, Any]]:
    """The OpenAI-style content parts of the one user message: the image and the prompt, in the family's
    order (image first, or text first for olmOCR); an empty prompt sends the image alone (LightOnOCR).
    ``image_url`` ``None`` gives a bare ``{"type": "image"}`` part (mlx-vlm passes the image apart)."""
    image = {"type": "image_url", "image_url": {"url": image_url}} if image_url else {"type": "image"}
    parts: list[dict[str, Any]] = [image]
    if prompt:
        parts.append({"type": "text", "text": prompt})
    return parts[::-1] if family.text_first else parts


def prompt_tokens(size: tuple[int, int], prompt: str) -> int:
    """Estimated prompt tokens for a page of ``size`` (width, height in pixels) and a text ``prompt``:
    the image's visual tokens (:data:`PATCH_PIXELS` each), the prompt at 3 characters a token, and
    :data:`CONTEXT_MARGIN`."""
    return size[0] * size[1] // PATCH_PIXELS + len(prompt) // 3 + CONTEXT_MARGIN


OUTPUT_RESERVE = 4096
"""Answer tokens a context sized by :func:`context_for` keeps for the page: a dense page of prose holds
about 3,000–4,000 characters (A4, 10 pt), and Qwen2-family tokenizers spend about a token a character on
digits (:data:`TOKENS_PER_CHAR`)."""


def context_for(page_size: int, prompt: str, trained: int | None = None) -> int:
    """The context in tokens a runtime should be set up with for pages of ``page_size`` (longest side in
    pixels): a square page's image tokens and ``prompt`` (:func:`prompt_tokens`, the most any prepared
    page costs), plus :data:`OUTPUT_RESERVE`, rounded up to 256 tokens, and never more than the model's
    ``trained`` context (its ``n_ctx_train``; ``None``: not known)."""
    need = prompt_tokens((page_size, page_size), prompt) + OUTPUT_RESERVE
    need = -(-need // 256) * 256
    return min(need, trained) if trained else need


def output_budget(context: int | None, size: tuple[int, int], prompt: str) -> int:
    """Output tokens a page of ``size`` pixels may use: what the model's context leaves after the prompt,
    and no more than the page could hold (its area over :data:`GLYPH_PIXELS` characters, at
    :data:`TOKENS_PER_CHAR`, plus :data:`TOKENS_BASE`).

    Args:
        context: the model's context in tokens (``None``: :data:`CONTEXT_DEFAULT`).
        size: the prepared page's (width, height) in pixels.
        prompt: the text prompt.
    """
    room = (context or CONTEXT_DEFAULT) - prompt_tokens(size, prompt)
    page = TOKENS_BASE + round(size[0] * size[1] / GLYPH_PIXELS * TOKENS_PER_CHAR)
    return max(TOKENS_BASE, min(room, page))


def ink_fraction(image: Image.Image) -> float:
    """The fraction of ``image``'s pixels that differ from its background (its most common grey level)
    by :data:`INK_CONTRAST` or more: 0.0 for an empty page, a few hundredths for a page of text."""
    import numpy as np

    grey = np.asarray(image.convert("L"))
    background = int(np.bincount(grey.ravel(), minlength=256).argmax())
    low, high = background - INK_CONTRAST, background + INK_CONTRAST
    ink = np.count_nonzero(grey <= low) + np.count_nonzero(grey >= high)
    return ink / max(grey.size, 1)


class VlmFailure(Exception):
    """One attempt at a page failed in a way a retry or the fallback may cure (a loop, an empty answer)."""

    def __init__(self, message: str, kept: str | None = None) -> None:
        super().__init__(message)
        self.kept = kept
        """A loop's text up to where it began (``None`` for other failures)."""


class VlmEngine(Engine):
    """Base of the VLM backends. Subclasses implement :meth:`_load_model`, :meth:`_generate` and
    :meth:`_close_model`, and set :attr:`model`, :attr:`family`, :attr:`page_size` and, where the runtime
    knows it, :attr:`context` when loading.
    """

    streams: ClassVar[bool] = True

    def __init__(self, model: str | None = None, options: BaseModel | None = None) -> None:
        super().__init__()
        self.model_ref = model
        """The model as the user named it: a catalogue id, a local path, a server's model name."""
        if options is None and self.options_model is not None:
            options = self.options_model()
        self.options: Any = options
        self.family = families.GENERIC
        """The model's family key (:mod:`textdrop.engine.vlm.families`): prompt, message layout, converter."""
        self.context: int | None = None
        """The model's context in tokens as its runtime is set up (``None``: not known)."""
        self._embedded: RapidEngine | None = None
        self._embedded_lock = threading.Lock()

    @property
    def family_info(self) -> Family:
        """The :class:`~textdrop.engine.vlm.families.Family` of :attr:`family`."""
        return families.get(self.family)

    # -- what a backend implements ---------------------------------------------------------------

    def _load_model(self) -> None:
        """Load the model; set :attr:`model`, :attr:`family`, :attr:`page_size`, :attr:`context`.

        Raises:
            EngineUnavailableError, ModelError: the runtime or the model cannot be loaded.
        """
        raise NotImplementedError

    def _generate(
        self,
        image: Image.Image,
        prompt: str,
        *,
        max_tokens: int,
        temperature: float,
        json_schema: dict[str, Any] | None = None,
    ) -> Stream:
        """Stream the model's answer to ``prompt`` about ``image`` (RGB, already prepared).

        ``max_tokens`` is the page's budget (the engine also enforces it by counting chunks);
        ``json_schema``, when given, is the schema the answer must match: a runtime with constrained
        decoding uses it, others ignore it. Yields :data:`RESTART` when the answer starts over. Stops
        promptly once :attr:`halted` (between chunks at least, which the base class checks; inside a long
        prompt or image evaluation where the runtime allows it). Closing the generator early must free
        whatever the generation holds.
        """
        raise NotImplementedError

    def _close_model(self) -> None:
        """Release the model."""

    # -- Engine ----------------------------------------------------------------------------------

    def load(self) -> None:
        """Load the VLM and the embedded engine (blank-page survey, fallback). Idempotent."""
        if self._embedded is not None:
            return
        from textdrop.engine.ocr.rapid import RapidEngine

        started = time.perf_counter()
        self._load_model()
        embedded = RapidEngine()
        try:
            embedded.load()
        except BaseException:
            self._close_model()
            raise
        self._embedded = embedded
        log.info(
            "%s: %s loaded in %.1f s (family %s)",
            self.name,
            self.model,
            time.perf_counter() - started,
            self.family,
        )

    def close(self) -> None:
        """Release the VLM and the embedded engine; :meth:`load` may be called again."""
        if self._embedded is not None:
            self._embedded.close()
            self._embedded = None
            self._close_model()

    def recognize_page(
        self, image: Image.Image, options: RecognizeOptions, on_text: Callable[[str], None] | None = None
    ) -> PageResult:
        """Recognise one page with the VLM, guarded as the module docstring says.

        Args:
            image: the page, RGB, any size in pixels.
            options: mode, prompt, fields, schema, token budget, fallback.
            on_text: called with the page's text so far (reasoning left out) after every streamed chunk;
                it starts over when an attempt is retried.

        Raises:
            GenerationAborted: :meth:`abort` was called; the engine stays loaded.
            ExtractionError: JSON mode, and the answer is not valid JSON for the schema after a retry.
            TextdropError: every attempt failed and ``options.fallback`` is off.
        """
        self.load()
        started = time.perf_counter()
        page = prepare_page(image, self.page_size)
        why_blank = self._blank(page)
        if why_blank is not None:
            return self._page(page, "", started, notes=[f"blank page: {why_blank}, so no VLM text is kept"])
        return self._read(image, page, options, started, on_text)

    @property
    def halted(self) -> bool:
        """True when the generation under way should stop (:meth:`abort`, or its job was cancelled)."""
        return self.aborted

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` (a backoff), returning early once :attr:`halted`."""
        deadline = time.monotonic() + seconds
        while not self.halted and (left := deadline - time.monotonic()) > 0:
            time.sleep(min(left, 0.05))

    # -- internals -------------------------------------------------------------------------------

    def _blank(self, page: Image.Image) -> str | None:
        """Why ``page`` is blank, or ``None`` when it has content: from its pixels (:func:`ink_fraction`)
        when they are conclusive, else from the embedded detector (about 0.4 s a page on a CPU)."""
        ink = ink_fraction(page)
        if ink == 0.0:
            return "the page has no ink"
        if ink >= INK_SURE:
            return None
        assert self._embedded is not None
        with self._embedded_lock:
            try:
                lines = self._embedded.detect_lines(page)
            except Exception as exc:
                log.warning("the embedded detector failed on a page: %s", exc)
                return None
        return None if lines else "the embedded detector found no text"

    def _read(
        self,
        original: Image.Image,
        page: Image.Image,
        options: RecognizeOptions,
        started: float,
        on_text: Callable[[str], None] | None,
    ) -> PageResult:
        """The attempts at a page: retries, JSON validation, and the fallback when all fail."""
        prompt = build_prompt(
            self.family,
            options.mode,
            fields=options.fields or None,
            schema=options.json_schema,
            custom=options.prompt,
            languages=options.languages,
        )
        notes: list[str] = []
        need = prompt_tokens(page.size, prompt) + TOKENS_BASE
        if self.context is not None and need > self.context:
            notes.append(
                f"the page does not fit the model's context: its image and prompt need about {need} tokens "
                f"with the shortest answer, the context holds {self.context} (raise the backend's n_ctx, or "
                "lower its page_size)"
            )
            log.warning("%s: %s", self.name, notes[-1])
            return self._fall_back(original, options, started, notes)
        schema = None
        if options.mode == "json":
            schema = options.json_schema or _fields_schema(options.fields)
            if not options.prompt and not self.family_info.follows_instructions:
                notes.append(f"{self.family} models are trained to transcribe, not to follow instructions")
                log.warning(
                    "%s: %s; JSON extraction may fail (choose an instruction model)", self.name, notes[-1]
                )
        budget = options.max_tokens or output_budget(self.context, page.size, prompt)
        json_retried = False
        upright, turned = page, 0
        for attempt, temperature in enumerate(ATTEMPT_TEMPERATURES, start=1):
            last = attempt == len(ATTEMPT_TEMPERATURES)
            try:
                raw, cut_at = self._attempt(page, prompt, budget, temperature, schema, on_text)
            except ServerRejectedError as exc:  # the same request would be refused again
                notes.append(str(exc))
                break
            except VlmFailure as exc:
                notes.append(f"attempt at temperature {temperature}: {exc}")
                log.info("%s: %s", self.name, notes[-1])
                if last and exc.kept and exc.kept.strip() and options.mode != "json":
                    notes.append("kept the text up to where the loop began")
                    content = clean(self.family, exc.kept, options.mode)
                    return self._page(page, content, started, notes=notes, mode=options.mode)
                continue
            turn = 0 if last or options.mode == "json" else self.family_info.page_turn(raw)
            if turn:  # the model says the page is rotated: turn it and read it again (olmOCR)
                turned = (turned + turn) % 360
                page = turn_page(upright, turned)
                notes.append(f"the model found the page rotated: read again turned {turned}° anticlockwise")
                log.info("%s: %s", self.name, notes[-1])
                continue
            truncated = cut_at is not None
            if truncated:
                notes.append(f"output cut at the budget of {cut_at} tokens: the page may be incomplete")
                log.warning("%s: %s", self.name, notes[-1])
            if options.mode != "json":
                content = clean(self.family, raw, options.mode)
                return self._page(page, content, started, notes=notes, mode=options.mode, truncated=truncated)
            data, problem = _parse_checked(clean(self.family, raw, "json"), options.json_schema)
            if problem is None:
                return self._page(page, "", started, notes=notes, data=data, truncated=truncated)
            notes.append(f"invalid JSON: {problem}")
            if json_retried:
                answer = " ".join(strip_reasoning(raw).split())
                raise ExtractionError(
                    f"{self.model} gave no valid JSON for the page after 2 attempts ({problem}); its answer "
                    f"began: {answer[:120]!r}. Choose an instruction-following model, or loosen the schema."
                )
            json_retried = True  # one retry, at the next temperature
        return self._fall_back(original, options, started, notes)

    def _attempt(
        self,
        page: Image.Image,
        prompt: str,
        budget: int,
        temperature: float,
        schema: dict[str, Any] | None,
        on_text: Callable[[str], None] | None,
    ) -> tuple[str, int | None]:
        """One generation: (raw text, the budget it was cut at or ``None``).

        Streamed chunks are counted against ``budget`` (llama.cpp and mlx-vlm stream one token per chunk).

        Raises:
            VlmFailure: a loop (with the text before it), an empty answer, a runtime error.
            ServerRejectedError: the server refused the request for good.
            GenerationAborted: :meth:`abort` was called.
        """
        detector = RepetitionDetector(max_lines=max(page.size) // 8)
        parts: list[str] = []
        stream = self._generate(page, prompt, max_tokens=budget, temperature=temperature, json_schema=schema)
        cut_at = None
        try:
            while True:
                self._check_halt()
                if len(parts) >= budget:
                    cut_at = budget
                    break
                try:
                    chunk = next(stream)
                except StopIteration as stop:
                    cut_at = budget if stop.value == "length" else None
                    break
                if chunk is RESTART:  # the answer starts over: nothing streamed so far is kept
                    parts.clear()
                    detector = RepetitionDetector(max_lines=max(page.size) // 8)
                    if on_text is not None:
                        on_text("")
                    continue
                parts.append(chunk)
                if on_text is not None:
                    on_text(strip_reasoning("".join(parts), streaming=True))
                if detector.feed(chunk):
                    kept = "".join(parts)[: detector.keep_chars]
                    raise VlmFailure(f"the output looped ({detector.reason})", kept=kept)
        except (GenerationAborted, VlmFailure, ServerRejectedError):
            raise
        except Exception as exc:
            self._check_halt()
            log.warning("%s: generation failed: %s", self.name, exc, exc_info=log.isEnabledFor(logging.DEBUG))
            raise VlmFailure(f"the runtime failed: {exc}") from exc
        finally:
            stream.close()
        self._check_halt()
        raw = "".join(parts)
        if not strip_reasoning(raw).strip():
            raise VlmFailure("the answer was empty")
        return raw, cut_at

    def _check_halt(self) -> None:
        if self.aborted:
            raise GenerationAborted(f"{self.name}: stopped by request")

    def _fall_back(
        self, original: Image.Image, options: RecognizeOptions, started: float, notes: list[str]
    ) -> PageResult:
        """The page read by the embedded engine at its original resolution (not the VLM's page size)."""
        reason = notes[-1] if notes else "the VLM failed"
        if not options.fallback:
            raise TextdropError(
                f"{self.model} could not read a page ({reason}). Retry with another model, or turn "
                "recognize.fallback on to read such pages with the embedded engine."
            )
        assert self._embedded is not None
        log.warning("%s: page read by the embedded engine instead: %s", self.name, reason)
        with self._embedded_lock:
            result = self._embedded.recognize_page(original, options)
        result.fallback = f"{self._embedded.name}: {reason}"
        result.engine = self._embedded.name
        result.notes = [*notes, *result.notes]
        result.seconds = time.perf_counter() - started
        return result

    def _page(
        self,
        page: Image.Image,
        content: str,
        started: float,
        *,
        notes: list[str],
        mode: str = "markdown",
        data: Any = None,
        truncated: bool = False,
    ) -> PageResult:
        if data is not None:
            text = json.dumps(data, indent=2, ensure_ascii=False)
            markdown = f"```json\n{text}\n```"
        elif mode == "text":
            markdown = text = content
        else:
            markdown, text = content, markdown_to_text(content)
        return PageResult(
            number=1,
            width=page.width,
            height=page.height,
            markdown=markdown,
            text=text,
            data=data,
            notes=notes,
            truncated=truncated,
            seconds=time.perf_counter() - started,
        )


def _fields_schema(fields: tuple[str, ...]) -> dict[str, Any]:
    """A JSON Schema for an object with these keys (any values): what constrained decoding is given when
    the user named fields but no schema; ``{"type": "object"}`` without fields."""
    schema: dict[str, Any] = {"type": "object"}
    if fields:
        schema["properties"] = {name: {} for name in fields}
        schema["required"] = list(fields)
    return schema


def _parse_checked(text: str, schema: dict[str, Any] | None) -> tuple[Any, str | None]:
    """(the parsed JSON, None), or (None, why it is not acceptable) against ``schema`` when given."""
    try:
        data = parse_json(text)
    except ValueError as exc:
        return None, str(exc)
    if schema is not None:
        import jsonschema

        error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(schema).iter_errors(data))
        if error is not None:
            where = "/".join(str(p) for p in error.absolute_path) or "the object"
            return None, f"{where}: {error.message}"
    return data, None
