"""Language packs for the embedded engine: catalogue, download from the loopback hub, choice, warnings.

No PP-OCRv5 pack can be downloaded here, and no PyPI package ships one, so the download path is tested with
a real recognition model (the one inside the ``rapidocr`` wheel) served as a pack by the loopback hub of
``tests/test_download.py``. Reading Russian needs the real East Slavic pack: that test runs only when
``TEXTDROP_ESLAV_PACK`` names a folder holding its ``rec.onnx`` and ``dict.txt``.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import onnxruntime
import pytest
from PIL import Image, ImageDraw, ImageFont

from tests.helpers.fonts import font_path
from tests.helpers.hub_server import FakeHub
from tests.test_download import hub, hub_cache  # noqa: F401 - the loopback hub and its cache
from textdrop.bench import error_rates, normalise
from textdrop.cli import run
from textdrop.engine import RecognizeOptions, recognize
from textdrop.engine.documents.sidecar import read_metadata
from textdrop.engine.errors import DownloadError, ExitCode, ModelError
from textdrop.engine.models import catalog, download
from textdrop.engine.ocr.rapid import RapidEngine

pytestmark = pytest.mark.slow

ENGLISH = ["The quick brown fox jumps over the lazy dog.", "Invoice 2231 was paid on 14 March 2026."]
KOREAN = [
    "안녕하세요, 오늘 기분이 어떠세요?",
    "서울은 대한민국의 수도입니다.",
    "한국어 문장을 읽을 수 없습니다.",
]
RUSSIAN = [
    "Съешь же ещё этих мягких французских булок,",
    "да выпей чаю. Москва является столицей России.",
    "Счёт номер 2231 оплачен четырнадцатого марта.",
]


def wheel_model() -> Path:
    import rapidocr

    return Path(rapidocr.__file__).parent / "models" / "PP-OCRv6_rec_small.onnx"


def page(path: Path, lines: list[tuple[str, str]], size: int = 34) -> Path:
    """Render ``(font file, text)`` lines, one under another, on a white page."""
    image = Image.new("RGB", (1400, 100 + 80 * len(lines)), "white")
    draw = ImageDraw.Draw(image)
    for index, (font, text) in enumerate(lines):
        draw.text((60, 50 + 80 * index), text, font=ImageFont.truetype(font_path(font), size), fill="black")
    image.save(path)
    return path


def serve_pack(hub: FakeHub, pack_id: str) -> catalog.LanguagePack:  # noqa: F811
    """Serve the pack ``pack_id`` from the loopback hub: the wheel's recogniser and its character list."""
    model = wheel_model().read_bytes()
    session = onnxruntime.InferenceSession(str(wheel_model()))
    characters = session.get_modelmeta().custom_metadata_map["character"]
    pack = catalog.find_pack(pack_id)
    hub.add_repo(pack.repo, {pack.model: model, pack.dictionary: characters.encode("utf-8") + b"\n"})
    return pack


@pytest.fixture
def served_pack(hub: FakeHub) -> catalog.LanguagePack:  # noqa: F811
    """The ``eslav`` pack, served by the loopback hub."""
    return serve_pack(hub, "eslav")


def test_models_list_shows_the_packs_with_size_and_licence(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    assert run(["models", "list"]) == 0
    out = capsys.readouterr().out
    for pack_id, script in [
        ("eslav", "Cyrillic"),
        ("greek", "Greek"),
        ("korean", "Hangul"),
        ("arabic", "Arabic"),
        ("devanagari", "Devanagari"),
        ("thai", "Thai"),
    ]:
        (row,) = [line for line in out.splitlines() if line.startswith(pack_id + " ")]
        assert script in row and "Apache-2.0" in row and " MB" in row


def test_a_missing_pack_stops_the_cli_with_the_command_that_installs_it(tmp_path, capsys):
    scan = page(tmp_path / "page.png", [("DejaVuSans.ttf", ENGLISH[0])])
    assert run(["ocr", "--lang", "ru", str(scan)]) == ExitCode.MODEL
    assert "textdrop models pull eslav" in capsys.readouterr().err
    assert not (tmp_path / "page.png.md").exists()
    assert run(["ocr", "--lang", "xx", str(scan)]) == ExitCode.MODEL
    assert "No recogniser reads the language 'xx'" in capsys.readouterr().err


def test_languages_map_to_packs_and_the_builtin_recogniser():
    assert catalog.packs_for([]) == (True, ())
    builtin, packs = catalog.packs_for(["ru", "en", "uk", "ko", "de-AT"])
    assert builtin and [pack.id for pack in packs] == ["eslav", "korean"]
    assert catalog.packs_for(["latin"]) == (False, (catalog.find_pack("latin"),))
    with pytest.raises(ModelError, match="'tlh'"):
        catalog.packs_for(["tlh"])


def test_a_pack_downloads_from_the_hub_and_reads_its_lines(served_pack, hub: FakeHub, tmp_path):  # noqa: F811
    progress: list[tuple[int, int]] = []
    model, dictionary = download.pull_pack(
        served_pack, progress=lambda done, total: progress.append((done, total))
    )
    assert model.read_bytes() == wheel_model().read_bytes() and dictionary is not None
    assert progress[-1] == (progress[-1][1], progress[-1][1]) and progress[-1][1] > 20_000_000
    assert run(["models", "pull", "eslav"]) == 0  # already there: no second transfer
    assert len(hub.gets("rec.onnx")) == 1
    scan = page(tmp_path / "page.png", [("DejaVuSans.ttf", text) for text in ENGLISH])
    result = recognize(scan, engine="rapid", options=RecognizeOptions(languages=("ru",)))
    assert result.pages[0].notes == ["lines read by: eslav 2"]  # the pack alone read the page
    cer, _ = error_rates(normalise("\n".join(ENGLISH)), normalise(result.text))
    assert cer <= 0.02
    assert download.remove_pack(served_pack) > 20_000_000
    assert download.pack_files(served_pack) is None


def test_a_pack_whose_checksum_differs_is_deleted(served_pack, monkeypatch):
    wrong = dataclasses.replace(served_pack, sha256="0" * 64)
    with pytest.raises(DownloadError, match="SHA-256 differs"):
        download.pull_pack(wrong)
    assert download.pack_files(wrong) is None
    right = dataclasses.replace(
        served_pack, sha256=__import__("hashlib").sha256(wheel_model().read_bytes()).hexdigest()
    )
    assert download.pull_pack(right)[0].is_file()


def test_offline_mode_refuses_to_download_a_pack(served_pack, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(DownloadError, match="offline mode"):
        download.pull_pack(served_pack)


class _Reader:
    """A recogniser that answers fixed ``(text, score)`` pairs, one per crop (with no character frames, so
    the spacing step leaves the texts as they are)."""

    def __init__(self, answers: list[tuple[str, float]]) -> None:
        self.answers = answers

    def __call__(self, batch: object) -> SimpleNamespace:
        return SimpleNamespace(
            txts=[a[0] for a in self.answers],
            scores=[a[1] for a in self.answers],
            word_results=[SimpleNamespace(word_cols=[], line_txt_len=0.0) for _ in self.answers],
        )


def _quads(count: int, width: int = 600, height: int = 40) -> np.ndarray:
    return np.array(
        [
            [[0, 60 * i], [width, 60 * i], [width, 60 * i + height], [0, 60 * i + height]]
            for i in range(count)
        ],
        np.float32,
    )


def test_each_line_is_read_by_the_recogniser_that_reads_it_best():
    engine = RapidEngine()
    crops = [np.zeros((40, 600, 3), np.uint8)] * 3
    builtin = _Reader([(",      ?", 0.97), ("Total 12.00 paid in cash today", 0.95), ("", 0.0)])
    eslav = _Reader(
        [("Привет, как дела у тебя сегодня?", 0.93), ("Tota1 12.00 paid in cash todav", 0.81), ("", 0.0)]
    )
    lines, unreadable, used = engine._recognize(crops, _quads(3), [("built-in", builtin), ("eslav", eslav)])
    assert [item.line.text for item in lines] == [
        "Привет, как дела у тебя сегодня?",
        "Total 12.00 paid in cash today",
    ]
    assert used == {"built-in": 1, "eslav": 1}
    assert unreadable == [2]


def test_an_unreadable_script_warns_and_names_an_installed_pack_that_reads_it(monkeypatch):
    engine = RapidEngine()
    crops = [np.zeros((40, 600, 3), np.uint8)] * 4
    monkeypatch.setattr(download, "pack_files", lambda pack: None)
    warnings = engine._warnings(crops, [0, 1], ["built-in"])
    assert warnings and "2 of 4 text lines on this page could not be read" in warnings[0]
    assert "textdrop models pull" in warnings[0]
    engine._packs["thai"] = _Reader([("สวัสดีครับ วันนี้เป็นอย่างไรบ้าง", 0.92)] * 2)
    (warning,) = engine._warnings(crops, [0, 1], ["built-in"])
    assert "they look like Thai" in warning and "--lang th" in warning
    assert engine._warnings(crops * 5, [0], ["built-in"]) == []  # one stray line in twenty: no warning


def test_a_page_in_a_script_without_a_pack_gets_a_warning_in_the_front_matter(tmp_path, capsys):
    scan = page(
        tmp_path / "mixed.png",
        [("DejaVuSans.ttf", ENGLISH[0])] + [("NotoSansCJK-Regular.ttc", text) for text in KOREAN],
    )
    assert run(["ocr", "--engine", "rapid", str(scan)]) == 0
    err = capsys.readouterr().err
    assert "3 of 4 text lines on this page could not be read" in err
    metadata = read_metadata(tmp_path / "mixed.png.md")
    assert len(metadata["warnings"]) == 1 and "could not be read" in metadata["warnings"][0]
    assert "quick brown fox" in (tmp_path / "mixed.png.md").read_text(encoding="utf-8")


@pytest.mark.skipif(
    not os.environ.get("TEXTDROP_ESLAV_PACK"),
    reason="needs the real East Slavic pack: set TEXTDROP_ESLAV_PACK to a folder with its rec.onnx and "
    "dict.txt "
    "(no PyPI package ships one, and weights cannot be downloaded here)",
)
def test_a_russian_page_is_read_with_the_real_eslav_pack(hub: FakeHub, tmp_path: Path):  # noqa: F811
    folder = Path(os.environ["TEXTDROP_ESLAV_PACK"])
    pack = catalog.find_pack("eslav")
    hub.add_repo(
        pack.repo,
        {pack.model: (folder / "rec.onnx").read_bytes(), pack.dictionary: (folder / "dict.txt").read_bytes()},
    )
    assert run(["models", "pull", "eslav", "--yes"]) == 0
    scan = page(tmp_path / "ru.png", [("DejaVuSans.ttf", text) for text in RUSSIAN])
    result = recognize(scan, engine="rapid", options=RecognizeOptions(languages=("ru", "en")))
    cer, _ = error_rates(normalise("\n".join(RUSSIAN)), normalise(result.text))
    assert cer <= 0.05


def test_a_watched_folder_reads_with_its_own_languages(tmp_path: Path):
    from tests.test_watch import Harness, folder, png, wait_until
    from textdrop.watcher.service import FolderOptions

    with pytest.raises(ValueError, match="'tlh'"):
        FolderOptions(path=tmp_path, languages=["tlh"])
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    png(inbox / "scan.png")
    harness = Harness(tmp_path)
    try:
        harness.start(folder(inbox, languages=("ru",)), engine="rapid")
        wait_until(lambda: any(e.status == "failed" for e in harness.events), what="the missing pack")
    finally:
        harness.stop()
        harness.ledger.close()
    (event,) = [e for e in harness.events if e.status == "failed"]
    assert "textdrop models pull eslav" in event.message


def test_a_right_to_left_pack_is_read_in_reading_order_or_says_what_it_needs(hub: FakeHub):  # noqa: F811
    from importlib.util import find_spec

    pack = serve_pack(hub, "arabic")
    assert pack.rtl
    download.pull_pack(pack)
    engine = RapidEngine()
    engine.load()
    if find_spec("bidi") is None:
        with pytest.raises(ModelError, match=r"pip install 'rapidocr\[rtl\]'"):
            engine._pack_reader(pack)
    else:
        assert engine._pack_reader(pack).cfg.lang_type == "arabic"
