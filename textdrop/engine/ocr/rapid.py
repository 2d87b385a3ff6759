"""The embedded default engine: RapidOCR's PP-OCR detector and recogniser on onnxruntime (CPU).

The ONNX models (PP-OCRv6 small det/rec, PP-OCR mobile direction classifier) ship inside the
``rapidocr`` wheel, so nothing is downloaded at run time. textdrop drives RapidOCR's stages itself
instead of calling its all-in-one pipeline, for three reasons measured on ``shared/eval/dev``
(see ``docs/adr/002-embedded-engine-pipeline.md``):

- **Page orientation**: a page scanned sideways is detected from the shape of its line boxes and an
  upside-down page from a vote of the direction classifier over its lines; the page is then read
  upright. RapidOCR's own pipeline finds no text on such a page.
- **No per-line direction classifier**: deciding 0/180 per line flips some long lines into garbage,
  so the classifier only votes for the whole page.
- **Memory**: detection runs on the page scaled to at most :data:`DET_MAX_SIDE` pixels (the detector's
  activations dominate peak memory), recognition crops the lines from the full-resolution page.

The lines are then put in reading order through the regions of a layout model
(:mod:`textdrop.engine.ocr.layout_model`, :mod:`textdrop.engine.ocr.regions`); ``RecognizeOptions.layout =
False`` orders them by their geometry alone
(:mod:`textdrop.engine.ocr.layout`). See ``docs/adr/010-layout.md``.
- **Language packs**: with ``languages`` chosen, every line is read by each recogniser they need (the
  built-in one, PP-OCRv5 packs from :data:`~.catalog.LANGUAGE_PACKS`) and keeps the reading
  that is plausible (:func:`_plausible`) with the highest confidence. Lines the detector found that no
  recogniser reads become a page warning naming the likely script (``docs/adr/011-scripts-and-pdf.md``).
"""

from __future__ import annotations

import itertools
import logging
import time
from importlib.util import find_spec
from typing import TYPE_CHECKING, Any

import numpy as np

from textdrop.engine.errors import EngineUnavailableError, ModelError
from textdrop.engine.models.catalog import LANGUAGE_PACKS, LanguagePack, missing_pack_message, packs_for
from textdrop.engine.models.memory import release_memory
from textdrop.engine.ocr.layout import WordGaps, compose, join_rows, split_at_gutters
from textdrop.engine.ocr.layout_model import LayoutModel
from textdrop.engine.ocr.regions import compose_regions
from textdrop.engine.ocr.spacing import respace_reading
from textdrop.engine.registry import Engine, RecognizeOptions
from textdrop.engine.result import Line, PageResult

if TYPE_CHECKING:
    from PIL import Image

log = logging.getLogger(__name__)

DET_MAX_SIDE = 1280
"""Longest side in pixels of the image the text detector sees. Measured on shared/eval/dev (mean CER of
the whole pipeline / detector's own peak memory): 2000 px, RapidOCR's default: 0.095 / 800 MB;
1600 px: 0.095 / 480 MB; 1280 px: 0.094 / 420 MB."""

DET_MAX_UPSCALE = 1.5
"""How much the detector may enlarge a small image. RapidOCR enlarges every image until its short side is
736 px (``Det.limit_side_len``): a 320×96 screenshot crop became 2453×736, took 500 MB and 0.6 s, and its
text, now 7× its size, was not found at all. Pages (short side 491 px or more) are not affected. 1.5
rather than 2: a 600×200 screen capture of receipt text reads the same lines in 0.31 s instead of 0.42 s,
and shared/eval/dev is unchanged (mean CER 0.093, WER 0.188)."""

REC_BATCH = 2
"""Line crops the recogniser reads at once (RapidOCR's default: 6). Measured on a 1800x2699 table page
and on 40 small crops: peak RSS 690 → 476 MB and 368 → 243 MB, time within noise."""

REC_MAX_SIDE = 4000
"""Longest side in pixels of the page that line crops are taken from (larger pages are scaled down)."""

DET_BOX_THRESH = 0.4
"""Lowest mean probability of the detector's map inside a box for the box to count as a text line
(RapidOCR's default ``Det.box_thresh``: 0.5). Faint print (a fax header, a thermal receipt's quantities)
scores 0.4-0.5; what it lets through that is not text is dropped by :data:`MIN_SCORE`. Measured on
shared/eval/dev: mean CER 0.0907 → 0.0889, better on four items (a faxed cover sheet 0.290 → 0.259, two
receipts), worse on none; 0.3 gave 0.0897."""

MIN_SCORE = 0.5
"""Lines the recogniser scores below this are dropped (RapidOCR's default ``text_score``)."""

ORIENTATION_SAMPLE = 24
"""How many of the largest line crops the direction classifier sees to vote on an upside-down page."""

ELONGATED = 1.5
"""A box whose long side is at least this many times its short side counts as a line in that direction."""

SESSION_CONFIG = {"session.intra_op.allow_spinning": "0"}
"""onnxruntime session settings of the detector and the recognisers, on top of RapidOCR's own. By default
onnxruntime's intra-op threads busy-wait for work between operators; on a machine whose cores are busy with
other programs the spinning threads take CPU time from the thread doing the work, and a small capture is a
long chain of small operators. Measured on the shared 2-core machine, default thread count, same text read:
the engine on a 600×200 capture (medians of 15, both variants interleaved in one process) 470 → 270 ms at
load 4-5, 211 → 192 ms at load 3.5 (one thread instead: 375-410 ms and 233 ms); whole pages (medians of 5,
load 9-10) 6.7 → 2.9 s and 10.5 → 8.2 s. An idle machine with many cores was not measured here."""

LAYOUT_MIN_SIDE = 480
"""Images whose short side is below this many pixels (screen captures of a few lines) are ordered by
their lines alone: the layout model sees every image at 608×800 and finds no page layout in a strip, and
a capture must come back within a quarter of a second (``benchmarks/capture.py``)."""
MIN_DENSITY = 0.3
"""Fewest non-space characters per unit of a line box's aspect ratio (long side / short side) for a reading
to be plausible. Printed text has about 1 (CJK, Hangul) to 2.5 (Latin) per unit; a recogniser that lacks the
script answers with spaces and punctuation (a Russian line read by the built-in model: ",     ?" at
confidence 0.96, density 0.15)."""

UNREADABLE_SCORE = 0.6
"""A line whose best reading scores below this, or is implausible, counts as unreadable. Readings of scripts
the recogniser lacks scored 0.55-0.57 (Thai, Devanagari on rendered pages); real Latin lines score 0.8-1."""

UNREADABLE_SHARE = 0.2
"""A page warns when at least this share of its detected lines is unreadable (a lone signature or stamp on a
full page does not)."""

PROBE_LINES = 8
"""Unreadable lines each installed, unchosen pack is tried on to name the script in the warning."""

PROBE_SCORE = 0.8
"""Mean confidence from which a probing pack counts as reading the unreadable lines."""


RTL_PACKS = {pack.id for pack in LANGUAGE_PACKS if pack.rtl}
"""Packs whose readings RapidOCR reorders for display, so their characters no longer follow their CTC frames
and their spaces are left as read (:func:`~textdrop.engine.ocr.spacing.respace`)."""


class RapidEngine(Engine):
    """RapidOCR 3.10 (PP-OCRv6) on onnxruntime, CPU only; boxes and confidences per line."""

    name = "rapid"
    install_hint = "Install it with: pip install 'rapidocr==3.10.*' onnxruntime"

    def __init__(self, model: str | None = None, options: Any = None) -> None:
        super().__init__(model, options)
        self._ocr: Any = None
        self._layout = LayoutModel()
        self._packs: dict[str, Any] = {}  # pack id -> its loaded TextRecognizer

    @classmethod
    def is_available(cls) -> bool:
        """True when ``rapidocr`` and ``onnxruntime`` are importable."""
        return find_spec("rapidocr") is not None and find_spec("onnxruntime") is not None

    def load(self) -> None:
        """Create the ONNX sessions for detector, classifier and recogniser (about 0.8 s, 200 MB)."""
        if self._ocr is not None:
            return
        try:
            from rapidocr import RapidOCR

            self._ocr = RapidOCR(
                params={
                    "Global.log_level": "error",
                    "Global.use_cls": False,
                    "Det.box_thresh": DET_BOX_THRESH,
                    "Rec.rec_batch_num": REC_BATCH,
                }
            )
            self._ocr._load_det_model()
            self._det_min_side = self._ocr.text_det.limit_side_len
            self._ocr._load_cls_model()
            self._ocr._load_rec_model()
            _reopen(self._ocr.text_det)
            _reopen(self._ocr.text_rec)
        except Exception as exc:  # onnxruntime and model errors vary by platform
            self._ocr = None
            raise EngineUnavailableError(
                f"The embedded engine failed to load: {exc}. {self.install_hint}."
            ) from exc

    def close(self) -> None:
        """Drop the ONNX sessions."""
        self._ocr = None
        self._layout = LayoutModel()
        self._packs = {}

    def recognize_page(self, image: Image.Image, options: RecognizeOptions) -> PageResult:
        """Recognise one RGB page; see the module docstring for the pipeline."""
        self.load()
        started = time.perf_counter()
        bgr = np.ascontiguousarray(np.asarray(image.convert("RGB"))[:, :, ::-1])
        scale = min(1.0, REC_MAX_SIDE / max(bgr.shape[:2]))
        if scale < 1.0:
            import cv2

            bgr = cv2.resize(bgr, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        quads = self._detect(bgr)
        release_memory()  # the detector's activations are the largest allocation of the page
        rotation = 0
        if options.detect_orientation and len(quads) and _is_sideways(quads):
            bgr, quads = _rotate(bgr, quads, 90)
            rotation = 90
        readers = self._readers(options.languages)
        crops = [_crop(bgr, quad) for quad in quads]
        if options.detect_orientation and crops and self._is_upside_down(crops):
            bgr, quads = _rotate(bgr, quads, 180)
            crops = [_crop(bgr, quad) for quad in quads]
            rotation = (rotation + 180) % 360
        read, unreadable, used = self._recognize(crops, quads, readers)
        lines = split_at_gutters(read) if options.layout else [item.line for item in read]
        warnings = self._warnings(crops, unreadable, [name for name, _ in readers])
        height, width = bgr.shape[:2]
        use_layout = options.layout and len(quads) > 0 and min(height, width) >= LAYOUT_MIN_SIDE
        if use_layout and lines:
            regions = self._layout.detect(bgr)
            gray = np.ascontiguousarray(bgr[:, :, 1])  # the green channel: gray enough to find rules
            ordered, markdown, text = compose_regions(lines, regions, gray)
        else:
            ordered, markdown, text = compose(lines, width, height)
        return PageResult(
            number=1,
            width=width,
            height=height,
            rotation=rotation,
            layout="regions" if use_layout else "lines" if options.layout else "off",
            lines=ordered,
            markdown=markdown,
            text=text,
            seconds=time.perf_counter() - started,
            notes=[f"lines read by: {', '.join(f'{name} {count}' for name, count in used.items())}"]
            if [name for name, _ in readers] != ["built-in"]
            else [],
            warnings=warnings,
        )

    def detect_lines(self, image: Image.Image) -> list[tuple[int, int]]:
        """Sizes ``(long side, short side)`` in pixels of the text lines the detector finds on ``image``.

        The detector alone (no recognition): about a tenth of :meth:`recognize_page`'s time. VLM engines
        use it to skip blank pages and to scale their output-token cap to the page.
        """
        self.load()
        quads = self._detect(np.ascontiguousarray(np.asarray(image.convert("RGB"))[:, :, ::-1]))
        top, left = _sides(quads)
        return [(round(max(a, b)), round(min(a, b))) for a, b in zip(top, left, strict=True)]

    def _detect(self, bgr: np.ndarray) -> np.ndarray:
        """Line quadrilaterals, shape (N, 4, 2) float32, in pixels of ``bgr``; (0, 4, 2) when none."""
        from rapidocr.utils.process_img import (
            apply_vertical_padding,
            map_boxes_to_original,
            resize_image_within_bounds,
        )

        cfg = self._ocr.cfg.Global
        small, ratio_h, ratio_w = resize_image_within_bounds(bgr, cfg.min_side_len, DET_MAX_SIDE)
        record: dict[str, Any] = {"preprocess": {"ratio_h": ratio_h, "ratio_w": ratio_w}}
        small, record = apply_vertical_padding(small, record, cfg.width_height_ratio, cfg.min_height)
        detector = self._ocr.text_det  # its preprocessing is built from this attribute on every call
        detector.limit_side_len = min(self._det_min_side, round(min(small.shape[:2]) * DET_MAX_UPSCALE))
        found = detector(small)
        if found.boxes is None or len(found.boxes) == 0:
            return np.zeros((0, 4, 2), np.float32)
        return map_boxes_to_original(found.boxes.astype(np.float32), record, *bgr.shape[:2])

    def _is_upside_down(self, crops: list[np.ndarray]) -> bool:
        """Vote of the 0/180 direction classifier over the largest wide crops, weighted by score."""
        wide = [c for c in crops if c.shape[1] >= ELONGATED * c.shape[0]]
        wide.sort(key=lambda c: c.shape[0] * c.shape[1], reverse=True)
        if not wide:
            return False
        votes = self._ocr.text_cls(wide[:ORIENTATION_SAMPLE]).cls_res
        flipped = sum(score for label, score in votes if label == "180")
        upright = sum(score for label, score in votes if label == "0")
        return flipped > upright

    def _readers(self, languages: tuple[str, ...]) -> list[tuple[str, Any]]:
        """``(name, recogniser)`` for ``languages``: ``built-in`` first when needed, then each pack.

        Raises:
            ModelError: a language no recogniser reads, or a pack that is not downloaded (the message
                says which ``textdrop models pull`` installs it).
        """
        builtin, packs = packs_for(languages)
        readers = [("built-in", self._ocr.text_rec)] if builtin else []
        for pack in packs:
            reader = self._pack_reader(pack)
            if reader is None:
                raise ModelError(missing_pack_message(pack, languages))
            readers.append((pack.id, reader))
        return readers

    def _pack_reader(self, pack: LanguagePack) -> Any:
        """The loaded recogniser of a downloaded pack (cached), or None when it is not downloaded."""
        if pack.id in self._packs:
            return self._packs[pack.id]
        from textdrop.engine.models.download import pack_files

        files = pack_files(pack)
        if files is None:
            return None
        from rapidocr.ch_ppocr_rec import TextRecognizer

        config = self._ocr.cfg.Rec.copy()
        config.model_path, config.rec_keys_path = str(files[0]), str(files[1]) if files[1] else None
        if pack.rtl:
            config.lang_type = "arabic"  # RapidOCR then puts each line in reading order with python-bidi
        try:
            reader = TextRecognizer(config)
            _reopen(reader)
        except ModuleNotFoundError as exc:
            raise ModelError(
                f"The {pack.id} language pack reads right-to-left text, which needs python-bidi to come out "
                "in reading order. Install it with: pip install 'rapidocr[rtl]'"
            ) from exc
        except Exception as exc:  # a damaged download, an incompatible model
            raise ModelError(
                f"The {pack.id} language pack in {files[0].parent} cannot be loaded ({exc}); remove and "
                f"download it again: textdrop models rm {pack.id} && textdrop models pull {pack.id}"
            ) from exc
        self._packs[pack.id] = reader
        return reader

    def _recognize(
        self, crops: list[np.ndarray], quads: np.ndarray, readers: list[tuple[str, Any]]
    ) -> tuple[list[WordGaps], list[int], dict[str, int]]:
        """Read each crop with every reader and keep, per line, the plausible reading with the best score.

        Returns:
            The lines kept (empty, implausible and low-scoring ones dropped; boxes axis-aligned ints) with
            the gaps between their words, the indices of the unreadable crops, and how many kept lines each
            reader read.
        """
        used = dict.fromkeys((name for name, _ in readers), 0)
        if not crops:
            return [], [], used
        from rapidocr.ch_ppocr_rec import TextRecInput

        readings = []
        for name, reader in readers:
            found = reader(TextRecInput(img=crops, return_word_box=name not in RTL_PACKS))
            texts = [text.strip() for text in found.txts]
            words: list[Any] = [None] * len(texts)
            if name not in RTL_PACKS:
                words = list(found.word_results)
                texts = [respace_reading(*reading) for reading in zip(texts, crops, words, strict=True)]
            readings.append(
                [(t, float(score), name, w) for t, score, w in zip(texts, found.scores, words, strict=True)]
            )
        lines, unreadable = [], []
        for index, quad in enumerate(quads):
            aspect = _aspect(quad)
            text, score, name, word = max(
                (options[index] for options in readings), key=lambda r: (_plausible(r[0], aspect), r[1])
            )
            plausible = _plausible(text, aspect)
            if not plausible or score < UNREADABLE_SCORE:
                unreadable.append(index)
            if not text or not plausible or score < MIN_SCORE:
                continue
            used[name] += 1
            x0, y0 = np.floor(quad.min(axis=0)).astype(int)
            x1, y1 = np.ceil(quad.max(axis=0)).astype(int)
            line = Line(text, (int(x0), int(y0), int(x1), int(y1)), round(score, 4))
            lines.append(WordGaps(line, _word_gaps(text, quad, word)))
        return lines, unreadable, used

    def _warnings(self, crops: list[np.ndarray], unreadable: list[int], chosen: list[str]) -> list[str]:
        """The page's warning when too many detected lines are unreadable, naming the likely script: the
        installed pack, not chosen, that reads a sample of them (:data:`PROBE_LINES`) best."""
        if not unreadable or len(unreadable) < UNREADABLE_SHARE * len(crops):
            return []
        sample = sorted(unreadable, key=lambda i: -crops[i].shape[0] * crops[i].shape[1])[:PROBE_LINES]
        best: tuple[float, LanguagePack] | None = None
        for pack in LANGUAGE_PACKS:
            if pack.id in chosen:
                continue
            reader = self._pack_reader(pack)
            if reader is None:
                continue
            from rapidocr.ch_ppocr_rec import TextRecInput

            found = reader(TextRecInput(img=[crops[i] for i in sample]))
            scores = [
                score if _plausible(text.strip(), _aspect_of(crops[i])) else 0.0
                for i, text, score in zip(sample, found.txts, found.scores, strict=True)
            ]
            mean = sum(scores) / len(scores)
            if mean >= PROBE_SCORE and (best is None or mean > best[0]):
                best = (mean, pack)
        lost = f"{len(unreadable)} of {len(crops)} text lines on this page could not be read"
        if best is not None:
            pack = best[1]
            return [
                f"{lost}: they look like {pack.script} ({pack.title}); read them with --lang "
                f"{pack.languages[0]} (or add '{pack.languages[0]}' to languages in Settings)"
            ]
        return [
            f"{lost}: their script is one no installed recogniser reads. Install its language pack "
            f"(textdrop models pull ID; packs: {', '.join(p.id for p in LANGUAGE_PACKS)}) and choose its "
            "language with --lang or in Settings"
        ]


def _reopen(stage: Any) -> None:
    """Open a RapidOCR stage's onnxruntime session again with :data:`SESSION_CONFIG` added to its options.

    RapidOCR builds its sessions from a fixed set of options (threads, memory arena) and takes a session of
    one's own only through a config object that cannot hold one, so the model is loaded a second time (det
    and rec: about 0.25 s on top of the engine's load, on the worker thread after the tray shows its icon).
    A session whose model path onnxruntime does not expose is left as it is.

    Args:
        stage: a RapidOCR ``TextDetector`` or ``TextRecognizer``; its ``session.session`` is replaced.
    """
    import onnxruntime

    session = stage.session.session
    path = getattr(session, "_model_path", None)  # what the session was loaded from (onnxruntime 1.x)
    if path is None:
        log.debug("onnxruntime does not say where %s was loaded from: kept as it is", type(stage).__name__)
        return
    options = session.get_session_options()
    for key, value in SESSION_CONFIG.items():
        options.add_session_config_entry(key, value)
    stage.session.session = onnxruntime.InferenceSession(path, options, providers=session.get_providers())


def _word_gaps(text: str, quad: np.ndarray, word: Any) -> list[tuple[int, float, float]]:
    """The blanks between the words of a line, as ``(characters before it, left x, right x)`` in page
    pixels; empty for a slanted or vertical line, or a reading without CTC frames (right-to-left packs).

    The x positions come from the CTC frame where each word's last and next word's first character fired
    (RapidOCR's ``WordInfo``: ``word_cols``, over ``line_txt_len`` frames across the crop).
    """
    if word is None or not word.word_cols or word.line_txt_len <= 0:
        return []
    (left, top), (right, top_right) = quad[0], quad[1]
    if abs(top_right - top) > 0.1 * max(right - left, 1) or right <= left:
        return []
    chars = [column for columns in word.word_cols for column in columns]
    if len(chars) != sum(1 for char in text if not char.isspace()):
        return []
    scale = (right - left) / word.line_txt_len
    gaps, before = [], 0
    for current, following in itertools.pairwise(word.word_cols):
        before += len(current)
        if current and following:
            gaps.append((before, float(left + (current[-1] + 1) * scale), float(left + following[0] * scale)))
    return gaps


def _aspect(quad: np.ndarray) -> float:
    """Long side over short side of a line quad (at least 1)."""
    top, left = np.linalg.norm(quad[1] - quad[0]), np.linalg.norm(quad[3] - quad[0])
    return float(max(top, left) / max(min(top, left), 1.0))


def _aspect_of(crop: np.ndarray) -> float:
    height, width = crop.shape[:2]
    return max(height, width) / max(min(height, width), 1)


def _plausible(text: str, aspect: float) -> bool:
    """Whether a reading has enough characters for its box (:data:`MIN_DENSITY`)."""
    return sum(1 for char in text if not char.isspace()) >= MIN_DENSITY * aspect


def _sides(quads: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lengths of the top edge and the left edge of each quad, in pixels."""
    top = np.linalg.norm(quads[:, 1] - quads[:, 0], axis=1)
    left = np.linalg.norm(quads[:, 3] - quads[:, 0], axis=1)
    return top, left


def _is_sideways(quads: np.ndarray) -> bool:
    """True when most text (by length) runs vertically: the page is rotated by 90 or 270 degrees."""
    top, left = _sides(quads)
    vertical = left[left >= ELONGATED * top].sum()
    horizontal = top[top >= ELONGATED * left].sum()
    return bool(vertical > horizontal)


def _rotate(bgr: np.ndarray, quads: np.ndarray, degrees: int) -> tuple[np.ndarray, np.ndarray]:
    """Rotate the page clockwise by 90 or 180 degrees and map the quads along (re-ordered TL, TR, BR, BL)."""
    import cv2

    height, width = bgr.shape[:2]
    x, y = quads[..., 0], quads[..., 1]
    if degrees == 90:
        rotated, points = cv2.rotate(bgr, cv2.ROTATE_90_CLOCKWISE), np.stack([height - y, x], axis=-1)
    else:
        rotated, points = cv2.rotate(bgr, cv2.ROTATE_180), np.stack([width - x, height - y], axis=-1)
    return rotated, _order_corners(points.astype(np.float32))


def _order_corners(quads: np.ndarray) -> np.ndarray:
    """Re-order each quad's corners as top-left, top-right, bottom-right, bottom-left."""
    total, diff = quads.sum(axis=2), quads[..., 1] - quads[..., 0]
    rows = np.arange(len(quads))
    return np.stack(
        [
            quads[rows, total.argmin(axis=1)],
            quads[rows, diff.argmin(axis=1)],
            quads[rows, total.argmax(axis=1)],
            quads[rows, diff.argmax(axis=1)],
        ],
        axis=1,
    )


def _crop(bgr: np.ndarray, quad: np.ndarray) -> np.ndarray:
    from rapidocr.utils.process_img import get_rotate_crop_image

    return get_rotate_crop_image(bgr, quad.copy())


def load_raw() -> Any:
    """RapidOCR's own all-in-one pipeline with its defaults (the baseline of ``textdrop bench``)."""
    from rapidocr import RapidOCR

    return RapidOCR(params={"Global.log_level": "error"})


def read_raw(raw: Any, path: str) -> str:
    """Run :func:`load_raw`'s pipeline on an image file; its lines joined row by row."""
    found = raw(path)
    if not found.txts:
        return ""
    lines = []
    for quad, text in zip(found.boxes, found.txts, strict=True):
        x0, y0 = quad.min(axis=0)
        x1, y1 = quad.max(axis=0)
        lines.append(Line(text, (int(x0), int(y0), int(x1), int(y1)), 1.0))
    return join_rows(lines)
