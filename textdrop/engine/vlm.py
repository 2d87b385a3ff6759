"""The part every VLM backend shares: page preparation, prompts, guards, modes and the fallback.

A backend (llama.cpp, mlx-vlm, an OpenAI-compatible server) only loads its model and streams the text
it generates for one image and prompt (:meth:`VlmEngine._generate`). Around that, :class:`VlmEngine`
adds what desktop VLM tools lack (``docs/adr/005-vlm-engines.md``):

1. **Page preparation**: the page is resized so its longest side is the size the model was trained on
   (its catalogue entry's ``page_size``), aspect ratio kept, enlarging at most :data:`MAX_UPSCALE` times.
2. **Blank pages**: the embedded engine's text detector surveys the page in a thread of its own while the
   VLM starts (on a GPU machine the two run side by side). When it finds no text, the generation is
   stopped (llama.cpp: inside its decode) and nothing the VLM said is kept: VLMs invent text on blank
   pages.
3. **Output-token cap** scaled to the text the survey found (:func:`token_cap`), counted on the stream.
4. **Repetition loops**: the stream is watched as it arrives; a loop stops the generation and the page is
   retried at a higher temperature (:data:`ATTEMPT_TEMPERATURES`, as olmOCR does), then given up.
5. **Fallback**: a page the VLM still fails on is read by the embedded engine; the page records why in
   ``PageResult.fallback`` and the sidecar's front matter says so.
6. **Modes**: Markdown (default), plain text, or JSON (key-value extraction, validated against the
   user's JSON Schema and retried once when invalid).
"""

from __future__ import annotations

import base64
import concurrent.futures
import io
import json
import logging
import threading
import time
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel

from textdrop.engine.backends.base import Engine, GenerationAborted, RecognizeOptions
from textdrop.engine.errors import TextdropError
from textdrop.engine.postprocess import RepetitionDetector, clean, markdown_to_text, parse_json
from textdrop.engine.prompts import INSTRUCTION_FOLLOWING, build_prompt
from textdrop.engine.result import PageResult

if TYPE_CHECKING:
    from PIL import Image

    from textdrop.engine.backends.rapid import RapidEngine

log = logging.getLogger(__name__)

MAX_UPSCALE = 2.0
"""How much a small page (a screenshot region) may be enlarged towards the model's page size. More than
this only blurs: the glyphs gain no detail, and the image costs the VLM more tokens."""

ATTEMPT_TEMPERATURES = (0.1, 0.3, 0.8)
"""Sampling temperature of each attempt at a page: a repetition loop is retried hotter. Steps taken from
olmOCR's ``TEMPERATURE_BY_ATTEMPT`` (``olmocr/pipeline.py``: 0.1, 0.1, 0.2, 0.3, 0.5, 0.8, …), three
attempts instead of eight because a desktop user is waiting."""

TOKENS_PER_CHAR = 0.6
"""Output tokens per character of page text: BPE vocabularies average 3–4 characters of English per
token; Markdown markup, numbers and other scripts cost more, so the cap assumes about 1.7."""

GLYPH_ASPECT = 0.5
"""A Latin glyph is about half as wide as its line is high; a line box ``w``×``h`` holds ≈ ``2w/h`` chars."""

TOKENS_BASE = 256
"""Tokens every page may use on top of its text: front matter, table markup, a short page's answer."""

TOKENS_MAX = 8192
"""The cap never exceeds this (a dense A4 page is ≈ 4000 characters; olmOCR allows 8000 tokens)."""

Stream = Generator[str, None, str]
"""What :meth:`VlmEngine._generate` returns: text chunks, then (as the generator's return value) the
finish reason, ``"stop"`` or ``"length"`` (the token cap was reached)."""

FAMILY_HINTS = (
    ("granite-docling", "granite-docling"),
    ("paddleocr", "paddleocr-vl"),
    ("lightonocr", "lightonocr"),
    ("deepseek-ocr", "deepseek-ocr"),
    ("dots.ocr", "dots-ocr"),
    ("dots-ocr", "dots-ocr"),
    ("nanonets", "nanonets-ocr"),
    ("olmocr", "olmocr"),
    ("qwen", "qwen-vl"),
)
"""Substrings of a model's name (a local file, a server's model) → its prompt and post-processing family."""


def guess_family(name: str) -> str:
    """The family whose prompt and post-processor suit a model named ``name`` (``"generic"`` if none)."""
    lowered = name.lower().replace("_", "-")
    return next((family for hint, family in FAMILY_HINTS if hint in lowered), "generic")


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


def png_data_url(image: Image.Image) -> str:
    """The page as a ``data:image/png;base64,…`` URL, the form chat-completion APIs take images in
    (PNG: lossless; compression level 1, because the bytes only cross a pipe or a local socket)."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def token_cap(lines: list[tuple[int, int]]) -> int:
    """Output-token cap for a page whose detected text lines have these ``(long, short)`` sides in pixels.

    ``TOKENS_BASE + TOKENS_PER_CHAR × characters``, with characters estimated from each line's aspect
    ratio (:data:`GLYPH_ASPECT`), at most :data:`TOKENS_MAX`.
    """
    chars = sum(long / max(short, 1) / GLYPH_ASPECT for long, short in lines)
    return min(TOKENS_MAX, TOKENS_BASE + round(TOKENS_PER_CHAR * chars))


class VlmFailure(Exception):
    """One attempt at a page failed in a way a retry or the fallback may cure (a loop, an empty answer)."""


class BlankPage(Exception):
    """The embedded detector found no text on the page: whatever the VLM says about it is not kept."""


def _cap_from(survey: concurrent.futures.Future[list[tuple[int, int]]]) -> int:
    """The token cap for a finished survey (:data:`TOKENS_MAX` when the detector failed)."""
    if survey.exception() is not None:
        log.warning("the embedded detector failed on a page: %s", survey.exception())
        return TOKENS_MAX
    return token_cap(survey.result())


class VlmEngine(Engine):
    """Base of the VLM backends. Subclasses implement :meth:`_load_model`, :meth:`_generate` and
    :meth:`_close_model`, and set :attr:`model`, :attr:`family` and :attr:`page_size` when loading.
    """

    streams: ClassVar[bool] = True

    def __init__(self, model: str | None = None, options: BaseModel | None = None) -> None:
        super().__init__()
        self.model_ref = model
        """The model as the user named it: a catalogue id, a local path, a server's model name."""
        if options is None and self.options_model is not None:
            options = self.options_model()
        self.options: Any = options
        self.family = "generic"
        """Prompt and post-processing family (:data:`textdrop.engine.catalog.FAMILIES`)."""
        self._embedded: RapidEngine | None = None
        self._surveyor: concurrent.futures.ThreadPoolExecutor | None = None
        self._blank = threading.Event()

    # -- what a backend implements ---------------------------------------------------------------

    def _load_model(self) -> None:
        """Load the model; set :attr:`model`, :attr:`family`, :attr:`page_size`.

        Raises:
            EngineUnavailableError, ModelError: the runtime or the model cannot be loaded.
        """
        raise NotImplementedError

    def _generate(self, image: Image.Image, prompt: str, *, max_tokens: int, temperature: float) -> Stream:
        """Stream the model's answer to ``prompt`` about ``image`` (RGB, already prepared).

        ``max_tokens`` is the runtime's own limit; the engine enforces the page's cap by counting chunks.
        Stops promptly once :attr:`halted` (between chunks at least, which the base class checks; inside a
        long prompt or image evaluation where the runtime allows it). Closing the generator early must free
        whatever the generation holds.
        """
        raise NotImplementedError

    def _close_model(self) -> None:
        """Release the model."""

    # -- Engine ----------------------------------------------------------------------------------

    def load(self) -> None:
        """Load the VLM and the embedded engine (blank-page check, token cap, fallback). Idempotent."""
        if self._embedded is not None:
            return
        from textdrop.engine.backends.rapid import RapidEngine

        started = time.perf_counter()
        self._load_model()
        embedded = RapidEngine()
        try:
            embedded.load()
        except BaseException:
            self._close_model()
            raise
        self._embedded = embedded
        self._surveyor = concurrent.futures.ThreadPoolExecutor(
            1, thread_name_prefix=f"textdrop-{self.name}-survey"
        )
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
            assert self._surveyor is not None
            self._surveyor.shutdown()
            self._surveyor = None
            self._embedded.close()
            self._embedded = None
            self._close_model()

    def recognize_page(
        self, image: Image.Image, options: RecognizeOptions, on_text: Callable[[str], None] | None = None
    ) -> PageResult:
        """Recognise one page with the VLM, guarded as the module docstring says.

        Args:
            image: the page, RGB, any size in pixels.
            options: mode, prompt, fields, schema, token cap, fallback.
            on_text: called with the page's raw text so far after every streamed chunk; it starts over
                when an attempt is retried.

        Raises:
            GenerationAborted: :meth:`abort` was called; the engine stays loaded.
            TextdropError: every attempt failed and ``options.fallback`` is off.
        """
        self.load()
        assert self._embedded is not None and self._surveyor is not None
        started = time.perf_counter()
        page = prepare_page(image, self.page_size)
        self._blank.clear()
        survey = self._surveyor.submit(self._embedded.detect_lines, page)
        survey.add_done_callback(self._on_survey)
        try:
            return self._read(page, options, survey, started, on_text)
        except BlankPage:
            notes = ["blank page: the embedded detector found no text, so no VLM text was kept"]
            return self._page(page, "", started, notes=notes)
        finally:
            concurrent.futures.wait([survey])  # the embedded engine is free again for the next use

    @property
    def halted(self) -> bool:
        """True when the generation under way should stop: :meth:`abort`, or the page is blank."""
        return self.aborted or self._blank.is_set()

    # -- internals -------------------------------------------------------------------------------

    def _on_survey(self, survey: concurrent.futures.Future[list[tuple[int, int]]]) -> None:
        if not survey.cancelled() and survey.exception() is None and not survey.result():
            self._blank.set()

    def _read(
        self,
        page: Image.Image,
        options: RecognizeOptions,
        survey: concurrent.futures.Future[list[tuple[int, int]]],
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
        if options.mode == "json" and not options.prompt and self.family not in INSTRUCTION_FOLLOWING:
            notes.append(f"{self.family} models are trained to transcribe, not to follow instructions")
            log.warning(
                "%s: %s; JSON extraction may fail (choose an instruction model)", self.name, notes[-1]
            )
        json_retried = False
        for temperature in ATTEMPT_TEMPERATURES:
            try:
                raw, cut_at = self._attempt(page, prompt, survey, options.max_tokens, temperature, on_text)
            except VlmFailure as exc:
                notes.append(f"attempt at temperature {temperature}: {exc}")
                log.info("%s: %s", self.name, notes[-1])
                continue
            if cut_at is not None:
                notes.append(f"output cut at the cap of {cut_at} tokens")
            if options.mode != "json":
                content = clean(self.family, raw, options.mode)
                return self._page(page, content, started, notes=notes, mode=options.mode)
            data, problem = _parse_checked(clean(self.family, raw, "json"), options.json_schema)
            if problem is None:
                return self._page(page, "", started, notes=notes, data=data)
            notes.append(f"invalid JSON: {problem}")
            if json_retried:
                return self._page(page, raw, started, notes=notes, mode="text")
            json_retried = True  # one retry, at the next temperature
        concurrent.futures.wait([survey])
        return self._fall_back(page, options, started, notes)

    def _attempt(
        self,
        page: Image.Image,
        prompt: str,
        survey: concurrent.futures.Future[list[tuple[int, int]]],
        max_tokens: int | None,
        temperature: float,
        on_text: Callable[[str], None] | None,
    ) -> tuple[str, int | None]:
        """One generation: (raw text, the token cap it was cut at or ``None``).

        The token cap is ``max_tokens`` when given, else :func:`token_cap` of the survey once it is in;
        streamed chunks are counted against it (llama.cpp and mlx-vlm stream one token per chunk).

        Raises:
            VlmFailure: a loop, an empty answer, a runtime error.
            BlankPage: the survey found no text on the page.
            GenerationAborted: :meth:`abort` was called.
        """
        detector = RepetitionDetector()
        parts: list[str] = []
        cap = max_tokens
        stream = self._generate(page, prompt, max_tokens=max_tokens or TOKENS_MAX, temperature=temperature)
        cut_at = None
        try:
            while True:
                self._check_halt()
                if cap is None and survey.done():
                    cap = _cap_from(survey)
                if cap is not None and len(parts) >= cap:
                    cut_at = cap
                    break
                try:
                    chunk = next(stream)
                except StopIteration as stop:
                    cut_at = (cap or TOKENS_MAX) if stop.value == "length" else None
                    break
                parts.append(chunk)
                if on_text is not None:
                    on_text("".join(parts))
                if detector.feed(chunk):
                    raise VlmFailure(f"the output looped after {sum(map(len, parts))} characters")
        except (GenerationAborted, VlmFailure, BlankPage):
            raise
        except Exception as exc:
            self._check_halt()
            log.warning("%s: generation failed: %s", self.name, exc, exc_info=log.isEnabledFor(logging.DEBUG))
            raise VlmFailure(f"the runtime failed: {exc}") from exc
        finally:
            stream.close()
        concurrent.futures.wait([survey])  # a blank page's answer is never kept, however fast it came
        self._check_halt()
        if cap is None and len(parts) > (cap := _cap_from(survey)):  # it came faster than the survey
            del parts[cap:]
            cut_at = cap
        raw = "".join(parts)
        if not raw.strip():
            raise VlmFailure("the answer was empty")
        return raw, cut_at

    def _check_halt(self) -> None:
        if self.aborted:
            raise GenerationAborted(f"{self.name}: stopped by request")
        if self._blank.is_set():
            raise BlankPage

    def _fall_back(
        self, page: Image.Image, options: RecognizeOptions, started: float, notes: list[str]
    ) -> PageResult:
        reason = notes[-1] if notes else "the VLM failed"
        if not options.fallback:
            raise TextdropError(
                f"{self.model} could not read a page ({reason}). Retry with another model, or turn "
                "recognize.fallback on to read such pages with the embedded engine."
            )
        assert self._embedded is not None
        log.warning("%s: page read by the embedded engine instead: %s", self.name, reason)
        result = self._embedded.recognize_page(page, options)
        result.fallback = f"{self._embedded.name}: {reason}"
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
            seconds=time.perf_counter() - started,
        )


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
