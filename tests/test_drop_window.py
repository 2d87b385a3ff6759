"""The drop window and the result view, on the Xvfb display, with the real job queue and fake engines."""

from __future__ import annotations

import functools
import http.server
import itertools
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import ClassVar

import pytest
from PIL import Image
from PySide6.QtCore import QMimeData, QPointF, Qt, QTimer, QUrl
from PySide6.QtGui import QColor, QDesktopServices, QDragEnterEvent, QDropEvent, QGuiApplication, QImage
from PySide6.QtWidgets import QApplication

from tests.helpers.display import screenshots_dir
from tests.helpers.fake_engines import FakeEngine, SlowEngine, fake_text
from textdrop.desktop.bridge import JobBridge
from textdrop.desktop.drop_window import HINT, DownloadRefused, DropWindow, JobRow, download
from textdrop.desktop.result_view import ResultView
from textdrop.engine import registry
from textdrop.engine.documents.sidecar import read_metadata
from textdrop.engine.jobs import JobQueue
from textdrop.engine.registry import RecognizeOptions
from textdrop.engine.result import Line, OcrResult, PageResult

pytestmark = pytest.mark.gui

SAMPLE = Path(__file__).parent.parent / "assets" / "samples" / "tess_phototest.tif"
SAMPLE_SIZE = (640, 480)
WAIT_MS = 15_000


class StreamingEngine(FakeEngine):
    """A fake VLM: streams ``# Partial`` for a page, waits for :attr:`gate`, then returns the full text."""

    name = "streaming"
    streams = True
    gate: ClassVar[threading.Event] = threading.Event()

    def recognize_page(self, image, options: RecognizeOptions, on_text: Callable[[str], None] | None = None):
        if on_text is not None:
            on_text("# Partial")
        type(self).gate.wait(5)
        page = super().recognize_page(image, options)
        page.markdown = page.text = "# Partial\n\nand the rest"
        return page


@pytest.fixture
def engines(fake_engine: type[FakeEngine], monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Register ``slow`` and ``streaming`` next to ``fake``."""
    monkeypatch.setitem(registry.BUILTIN_ENGINES, "slow", "tests.helpers.fake_engines:SlowEngine")
    monkeypatch.setitem(registry.BUILTIN_ENGINES, "streaming", "tests.test_drop_window:StreamingEngine")
    SlowEngine.reset()
    StreamingEngine.gate = threading.Event()
    yield
    StreamingEngine.gate.set()
    if SlowEngine.gate is not None:
        SlowEngine.gate.set()
    SlowEngine.reset()


@pytest.fixture
def make_window(qtbot, engines: None) -> Iterator[Callable[..., tuple[DropWindow, list]]]:
    """``make_window(engine="fake")`` → a shown DropWindow on a real queue, and the on_result calls."""
    queues: list[JobQueue] = []
    windows: list[DropWindow] = []

    def make(engine: str = "fake", **kwargs) -> tuple[DropWindow, list]:
        queue = JobQueue(engine).start()
        queues.append(queue)
        results: list[tuple[OcrResult, Path | None]] = []
        window = DropWindow(
            JobBridge(queue), on_result=lambda r, p, _sidecar: results.append((r, p)), **kwargs
        )
        qtbot.addWidget(window)
        window.show()
        qtbot.waitExposed(window)
        windows.append(window)
        return window, results

    yield make
    for window in windows:
        window.wait_for_tasks(10_000)
    for queue in queues:
        queue.stop(grace=10)


def drop(window: DropWindow, mime: QMimeData) -> bool:
    """Deliver a drag-enter and a drop of ``mime`` as Qt does; True when the enter was accepted."""
    center = QPointF(window.rect().center())
    actions = Qt.DropAction.CopyAction
    enter = QDragEnterEvent(center, actions, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(window, enter)
    if not enter.isAccepted():
        return False
    event = QDropEvent(center, actions, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(window, event)
    return True


def file_mime(*paths: Path) -> QMimeData:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path)) for path in paths])
    return mime


def wait_finished(qtbot, rows: list[JobRow], timeout: int = WAIT_MS) -> None:
    qtbot.waitUntil(lambda: all(row.finished for row in rows), timeout=timeout)


def tiff(path: Path, pages: int, size: tuple[int, int] = (60, 40)) -> Path:
    images = [Image.new("RGB", size, "white") for _ in range(pages)]
    images[0].save(path, save_all=True, append_images=images[1:])
    return path


def test_dropped_files_get_sidecars_and_results(make_window, qtbot, tmp_path: Path) -> None:
    window, results = make_window()
    assert window.windowTitle() == "textdrop"
    assert window.hint_label.isVisible() and window.hint_label.text() == HINT
    first, second = tmp_path / "scan one.tif", tmp_path / "scan_two.tif"
    shutil.copy(SAMPLE, first)
    shutil.copy(SAMPLE, second)
    pdf = tmp_path / "letter.pdf"
    Image.new("RGB", (300, 200), "white").save(pdf)

    assert drop(window, file_mime(first, second, pdf))
    assert len(window.rows) == 3
    assert not window.hint_label.isVisible()
    wait_finished(qtbot, window.rows)

    assert [row.state for row in window.rows] == ["done"] * 3
    expected = fake_text(*SAMPLE_SIZE)
    for source in (first, second):
        sidecar = source.with_name(source.name + ".md")
        assert sidecar.is_file()
        assert expected in sidecar.read_text(encoding="utf-8")
        assert read_metadata(sidecar)["source"] == source.name
    pdf_sidecar = tmp_path / "letter.pdf.md"
    assert "fake page" in pdf_sidecar.read_text(encoding="utf-8")
    assert [row.sidecar for row in window.rows] == [
        first.with_name("scan one.tif.md"),
        second.with_name("scan_two.tif.md"),
        pdf_sidecar,
    ]
    qtbot.waitUntil(lambda: len(results) == 3)
    assert sorted(str(path) for _, path in results) == sorted(str(p) for p in (first, second, pdf))
    assert all(result.markdown.startswith("fake page") for result, _ in results)
    assert "sidecar" in window.rows[0].status
    # the result view shows the result that finished last (sidecars are written in a pool, in any order)
    assert window.result_view.isVisible()
    assert window.result_view.result is results[-1][0]
    assert "fake page" in window.result_view.text_view.toPlainText()
    assert window.result_view.open_button.isEnabled()
    # Show brings back an earlier row's result
    qtbot.mouseClick(window.rows[0].show_button, Qt.MouseButton.LeftButton)
    assert window.result_view.sidecar == first.with_name("scan one.tif.md")
    window.resize(900, 640)
    qtbot.wait(100)
    assert window.grab().save(str(screenshots_dir(tmp_path) / "drop_window.png"))
    # Clear finished empties the list and brings the hint back
    qtbot.mouseClick(window.clear_button, Qt.MouseButton.LeftButton)
    assert window.rows == [] and window.hint_label.isVisible()


def test_folders_are_ignored_with_a_message(make_window, qtbot, tmp_path: Path) -> None:
    window, _ = make_window()
    folder = tmp_path / "Scans"
    folder.mkdir()
    image = tmp_path / "page.png"
    Image.new("RGB", (50, 30), "white").save(image)

    assert drop(window, file_mime(folder, image))
    assert "Folders are not read" in window.message and "Scans" in window.message
    assert [row.path for row in window.rows] == [image]
    wait_finished(qtbot, window.rows)
    assert window.rows[0].state == "done"
    assert not list(folder.iterdir())

    assert drop(window, file_mime(folder))
    assert len(window.rows) == 1  # nothing new queued
    assert "Folders are not read" in window.message


def test_text_without_a_link_is_not_accepted(make_window) -> None:
    window, _ = make_window()
    mime = QMimeData()
    mime.setText("just some words")
    assert not drop(window, mime)
    assert window.rows == []


def test_dropped_image_data_has_no_sidecar(make_window, qtbot, tmp_path: Path) -> None:
    window, results = make_window()
    image = QImage(120, 80, QImage.Format.Format_RGB32)
    image.fill(QColor("white"))
    mime = QMimeData()
    mime.setImageData(image)

    assert drop(window, mime)
    assert len(window.rows) == 1
    row = window.rows[0]
    assert row.path is None and "120×80" in row.label
    wait_finished(qtbot, [row])
    assert row.state == "done" and row.sidecar is None
    qtbot.waitUntil(lambda: len(results) == 1)
    result, path = results[0]
    assert path is None and result.source is None
    assert result.markdown == fake_text(120, 80)
    assert not window.result_view.open_button.isEnabled()
    assert not window.result_view.reveal_button.isEnabled()
    assert list(tmp_path.iterdir()) == []


def test_pasted_image_with_ctrl_v(make_window, qtbot) -> None:
    window, results = make_window()
    clipboard = QGuiApplication.clipboard()
    clipboard.clear()
    qtbot.mouseClick(window.paste_button, Qt.MouseButton.LeftButton)
    assert "clipboard" in window.message and window.rows == []

    image = QImage(90, 60, QImage.Format.Format_RGB32)
    image.fill(QColor("white"))
    clipboard.setImage(image)
    qtbot.keyClick(window, Qt.Key.Key_V, Qt.KeyboardModifier.ControlModifier)
    assert len(window.rows) == 1 and window.rows[0].label.startswith("Pasted image")
    wait_finished(qtbot, window.rows)
    qtbot.waitUntil(lambda: len(results) == 1)
    assert results[0][0].markdown == fake_text(90, 60)
    assert results[0][1] is None
    assert window.message == ""


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def web(tmp_path: Path) -> Iterator[str]:
    """A local web server on 127.0.0.1 serving an image, a PDF and an HTML page; yields its base URL."""
    root = tmp_path / "web"
    root.mkdir()
    Image.new("RGB", (70, 50), "white").save(root / "picture.png")
    (root / "page.html").write_text("<html><body>not an image</body></html>", encoding="utf-8")
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="test-web", daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(5)


def test_dropped_image_link_is_downloaded_and_read(make_window, qtbot, web: str) -> None:
    window, results = make_window()
    mime = QMimeData()
    mime.setUrls([QUrl(f"{web}/picture.png")])

    assert drop(window, mime)
    row = window.rows[0]
    assert row.label == "picture.png" and row.path is None
    wait_finished(qtbot, [row])
    assert row.state == "done", row.status
    qtbot.waitUntil(lambda: len(results) == 1)
    assert results[0][0].markdown == fake_text(70, 50)
    assert results[0][1] is None


def test_browser_image_drag_uses_the_data_not_the_link(make_window, qtbot) -> None:
    window, results = make_window()
    image = QImage(64, 48, QImage.Format.Format_RGB32)
    image.fill(QColor("white"))
    mime = QMimeData()
    mime.setImageData(image)
    mime.setUrls([QUrl("http://127.0.0.1:9/never-fetched.png")])

    assert drop(window, mime)
    assert len(window.rows) == 1 and window.rows[0].label.startswith("Dropped image")
    wait_finished(qtbot, window.rows)
    qtbot.waitUntil(lambda: len(results) == 1)
    assert results[0][0].markdown == fake_text(64, 48)


def test_dropped_html_link_is_refused(make_window, qtbot, web: str) -> None:
    window, results = make_window()
    mime = QMimeData()
    mime.setText(f"{web}/page.html")  # a link dragged as plain text

    assert drop(window, mime)
    row = window.rows[0]
    wait_finished(qtbot, [row])
    assert row.state == "failed"
    assert "text/html" in row.error and "not an image or a PDF" in row.error
    assert "text/html" in row.status
    assert row.job_id is None  # never reached the job queue
    qtbot.wait(50)
    assert results == []


def test_download_refuses_what_is_too_large_or_missing(web: str) -> None:
    assert download(f"{web}/picture.png").startswith(b"\x89PNG")
    with pytest.raises(DownloadRefused, match="larger than"):
        download(f"{web}/picture.png", limit=10)
    with pytest.raises(DownloadRefused, match="404"):
        download(f"{web}/missing.png")


def test_failing_job_shows_its_error_and_others_go_on(make_window, qtbot, tmp_path: Path) -> None:
    window, results = make_window()
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"this is not an image")
    good = tmp_path / "good.png"
    Image.new("RGB", (40, 30), "white").save(good)

    assert drop(window, file_mime(bad, good))
    wait_finished(qtbot, window.rows)
    broken, fine = window.rows
    assert broken.state == "failed" and broken.error
    assert broken.status == broken.error and "broken.png" in broken.error
    assert "#b3261e" in broken.status_label.styleSheet()
    assert not broken.cancel_button.isVisible() and not broken.show_button.isVisible()
    assert not (tmp_path / "broken.png.md").exists()
    assert fine.state == "done" and (tmp_path / "good.png.md").is_file()
    qtbot.waitUntil(lambda: len(results) == 1)
    assert results[0][1] == good

    again = tmp_path / "again.png"
    Image.new("RGB", (41, 30), "white").save(again)
    assert drop(window, file_mime(again))
    wait_finished(qtbot, window.rows)
    assert window.rows[-1].state == "done"
    assert window.grab().save(str(screenshots_dir(tmp_path) / "drop_window_failed.png"))


def test_sidecar_that_cannot_be_written_is_shown_on_its_row(make_window, qtbot, tmp_path: Path) -> None:
    window, results = make_window(template="{stem}.md")  # no {ext}: write_sidecar refuses it
    image = tmp_path / "page.png"
    Image.new("RGB", (40, 30), "white").save(image)
    assert drop(window, file_mime(image))
    wait_finished(qtbot, window.rows)
    row = window.rows[0]
    assert row.state == "done" and row.sidecar is None
    assert "sidecar was not written" in row.error and "{ext}" in row.status
    qtbot.waitUntil(lambda: len(results) == 1)  # the result still reaches the tray
    assert results[0][1] == image


def test_gui_stays_responsive_while_the_slow_engine_runs(make_window, qtbot, tmp_path: Path) -> None:
    SlowEngine.delay = 0.4
    window, _ = make_window("slow")
    source = tiff(tmp_path / "four.tif", 4)
    statuses: list[str] = []
    window.bridge.progress.connect(lambda job_id, done, total: statuses.append(window.rows[0].status))
    ticks: list[float] = []
    heartbeat = QTimer()
    heartbeat.setInterval(10)
    heartbeat.timeout.connect(lambda: ticks.append(time.monotonic()))
    heartbeat.start()
    try:
        started = time.monotonic()
        assert drop(window, file_mime(source))
        wait_finished(qtbot, window.rows)
        elapsed = time.monotonic() - started
    finally:
        heartbeat.stop()
    assert window.rows[0].state == "done"
    assert elapsed >= 1.6  # four pages of 0.4 s ran…
    assert len(ticks) >= 40  # …while the GUI thread kept ticking: never blocked for a page
    gaps = [later - earlier for earlier, later in itertools.pairwise(ticks)]
    assert max(gaps) < 0.3
    assert "Reading page 2 of 4…" in statuses and "Reading page 4 of 4…" in statuses
    assert len(SlowEngine.pages) == 4


def test_cancel_stops_a_running_job(make_window, qtbot, tmp_path: Path) -> None:
    SlowEngine.gate = gate = threading.Event()
    SlowEngine.delay = 0.0
    window, results = make_window("slow")
    source = tiff(tmp_path / "three.tif", 3)
    assert drop(window, file_mime(source))
    row = window.rows[0]
    qtbot.waitUntil(lambda: row.state == "reading")
    assert row.cancel_button.isVisible()
    qtbot.mouseClick(row.cancel_button, Qt.MouseButton.LeftButton)
    gate.set()
    qtbot.waitUntil(lambda: row.state == "cancelled")
    assert row.status == "Cancelled" and not row.cancel_button.isVisible()
    assert window.bridge.queue.stop(grace=10)  # the worker ended: no page is still being read
    assert len(SlowEngine.pages) < 3
    assert not (tmp_path / "three.tif.md").exists()
    assert results == []


def test_a_queued_row_looks_queued(make_window, qtbot, tmp_path: Path) -> None:
    SlowEngine.gate = gate = threading.Event()
    SlowEngine.delay = 0.0
    window, _results = make_window("slow")
    first, second = tiff(tmp_path / "one.tif", 1), tiff(tmp_path / "two.tif", 1)
    reading, queued = window.submit_files([first, second])
    qtbot.waitUntil(lambda: reading.state == "reading")
    assert queued.state == "queued" and queued.status == "Queued"
    assert reading.progress.maximum() == 0  # a busy bar: something is happening
    assert (queued.progress.minimum(), queued.progress.maximum(), queued.progress.value()) == (0, 1, 0)
    assert "placeholder-text" in queued.status_label.styleSheet()  # grey, unlike the row being read
    assert "placeholder-text" not in reading.status_label.styleSheet()
    gate.set()
    qtbot.waitUntil(lambda: queued.finished, timeout=10_000)


def test_the_window_fits_a_small_screen(make_window, qtbot) -> None:
    from PySide6.QtGui import QGuiApplication

    from textdrop.desktop.drop_window import FRAME_ALLOWANCE

    window, _results = make_window()
    small = min(QGuiApplication.screens(), key=lambda screen: screen.availableGeometry().height())
    area = small.availableGeometry()  # 1024×768 on the test display; a 1366×768 laptop has the same height
    window.fit_screen(small)
    assert window.width() + FRAME_ALLOWANCE[0] <= area.width()
    assert window.height() + FRAME_ALLOWANCE[1] <= area.height()
    assert window.height() >= window.minimumSizeHint().height()


def test_streamed_text_shows_before_the_result(make_window, qtbot, tmp_path: Path) -> None:
    window, _ = make_window("streaming")
    image = tmp_path / "page.png"
    Image.new("RGB", (40, 30), "white").save(image)
    assert drop(window, file_mime(image))
    view = window.result_view
    qtbot.waitUntil(lambda: "Partial" in view.markdown_view.toPlainText())
    assert view.isVisible() and view.result is None
    assert view.text_view.toPlainText() == "# Partial"
    StreamingEngine.gate.set()
    wait_finished(qtbot, window.rows)
    qtbot.waitUntil(lambda: view.result is not None)
    assert "and the rest" in view.text_view.toPlainText()


# -- the result view ----------------------------------------------------------------------------------

MARKDOWN = """\
# Invoice 2024-117

**Acme Paper Supplies** · 12 Mill Road, Leeds

| Item | Qty | Price |
| --- | ---: | ---: |
| A4 paper, 80 g | 10 | 42.00 |
| Toner cartridge | 2 | 118.50 |
| **Total** | | **160.50** |

Payment terms:

- 30 days net
- Bank transfer to GB29 NWBK 6016 1331 9268 19
- Quote the invoice number
"""


def sample_result() -> OcrResult:
    second = "## Notes\n\n1. Delivered on 3 May\n2. Signed by *J. Smith*"
    pages = [
        PageResult(1, 1240, 1754, MARKDOWN, MARKDOWN, [Line("Invoice", (0, 0, 10, 10), 0.9)]),
        PageResult(2, 1240, 1754, second, second),
    ]
    return OcrResult(pages, engine="llama", model="granite-docling-258m", source="invoice.pdf", seconds=4.23)


def test_result_view_streams_then_shows_the_result(qtbot, tmp_path: Path, monkeypatch) -> None:
    copied: list[str] = []
    view = ResultView(copy=copied.append)
    qtbot.addWidget(view)
    view.show()
    assert not view.copy_button.isEnabled() and not view.open_button.isEnabled()

    view.set_streaming_text(1, "# Invoice\n\nAcme Pa")
    qtbot.waitUntil(lambda: "Acme Pa" in view.text_view.toPlainText())
    assert "Invoice" in view.markdown_view.toPlainText() and "#" not in view.markdown_view.toPlainText()
    view.set_streaming_text(2, "## Notes")
    qtbot.waitUntil(lambda: "<!-- page 2 -->" in view.text_view.toPlainText())
    assert view.copy_button.isEnabled() and not view.reveal_button.isEnabled()
    assert view.result is None

    result = sample_result()
    sidecar = tmp_path / "invoice.pdf.md"
    sidecar.write_text("---\ntextdrop: x\n---\n", encoding="utf-8")
    view.set_result(result, sidecar)
    assert view.text_view.toPlainText() == result.markdown
    rendered = view.markdown_view.toPlainText()
    assert "Toner cartridge" in rendered and "| ---" not in rendered  # a real table, not pipes
    status = view.status_label.text()
    for part in ("invoice.pdf", "engine llama", "model granite-docling-258m", "2 pages", "4.2 s"):
        assert part in status
    assert view.open_button.isEnabled() and view.reveal_button.isEnabled()
    assert view.text_view.isReadOnly()

    with qtbot.waitSignal(view.copied) as signal:
        qtbot.mouseClick(view.copy_button, Qt.MouseButton.LeftButton)
    assert copied == [result.markdown] and signal.args == [result.markdown]

    opened: list[QUrl] = []
    monkeypatch.setattr(QDesktopServices, "openUrl", lambda url: opened.append(url) or True)
    qtbot.mouseClick(view.open_button, Qt.MouseButton.LeftButton)
    qtbot.mouseClick(view.reveal_button, Qt.MouseButton.LeftButton)
    assert [url.toLocalFile() for url in opened] == [str(sidecar), str(tmp_path)]

    view.resize(980, 620)
    qtbot.wait(100)
    assert view.grab().save(str(screenshots_dir(tmp_path) / "result_view.png"))

    view.set_result(result, None)
    assert not view.open_button.isEnabled() and not view.reveal_button.isEnabled()
    view.set_streaming_text(1, "new document")  # a new stream replaces the old result
    assert view.result is None
    qtbot.waitUntil(lambda: view.text_view.toPlainText() == "new document")


def test_result_view_says_when_the_desktop_cannot_open_the_sidecar(
    qtbot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    view = ResultView()
    qtbot.addWidget(view)
    sidecar = tmp_path / "scan.png.md"
    sidecar.write_text("text", encoding="utf-8")
    view.set_result(sample_result(), sidecar)
    monkeypatch.setattr(QDesktopServices, "openUrl", lambda url: False)  # no opener on this desktop
    assert not view.open_sidecar()
    assert (
        view.status_label.text() == f"No application opens .md files here; open {sidecar} in a text editor."
    )
    qtbot.mouseClick(view.reveal_button, Qt.MouseButton.LeftButton)
    assert view.status_label.text() == f"No file manager answered; the sidecar is in {tmp_path}."
    assert "color" in view.status_label.styleSheet()


def test_result_view_copies_through_qt_by_default(qtbot) -> None:
    view = ResultView()
    qtbot.addWidget(view)
    view.set_result(sample_result())
    QGuiApplication.clipboard().clear()
    view.copy()
    assert QGuiApplication.clipboard().text() == sample_result().markdown


def test_drop_enter_accepts_files_images_and_links(make_window) -> None:
    window, _ = make_window()
    mime = QMimeData()
    mime.setUrls([QUrl("https://example.org/a.png")])
    center = QPointF(10, 10)
    enter = QDragEnterEvent(
        center, Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    )
    QApplication.sendEvent(window, enter)
    assert enter.isAccepted()
    assert "highlight" in window.drop_area.styleSheet()
