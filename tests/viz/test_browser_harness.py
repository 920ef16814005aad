"""The browser harness itself: it must see blocked requests, console errors and page errors."""

from __future__ import annotations

import base64
import http.server
import threading
from pathlib import Path

import pytest
from browser import find_chromium, require_chromium

# A 1x1 PNG, for "local" images that need no file.
PNG_1PX = base64.b64encode(
    bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
        "1f15c4890000000d49444154789c63f8cfc0f01f0005050201a5b1e4a30000000049454e44ae426082"
    )
).decode()


def _html(tmp_path: Path, body: str, name: str = "page.html") -> Path:
    path = tmp_path / name
    path.write_text(f"<!doctype html><html><head><meta charset='utf-8'></head><body>{body}</body>")
    return path


def test_foreign_script_and_fetch_are_blocked_and_recorded(offline_page, tmp_path):
    page, report = offline_page
    html = _html(
        tmp_path,
        """<script src="https://unpkg.com/x.js"></script>
        <script>
          window.fetchResult = fetch("https://unpkg.com/x.js?fetch")
            .then(() => "reached", (err) => "refused: " + err);
        </script>""",
    )
    offline_page.goto(html)
    assert page.evaluate("window.fetchResult").startswith("refused")
    assert "https://unpkg.com/x.js" in report.blocked
    assert "https://unpkg.com/x.js?fetch" in report.blocked
    with pytest.raises(
        AssertionError, match=r"blocked non-local request: https://unpkg\.com/x\.js"
    ):
        report.assert_clean()


def test_foreign_websocket_is_blocked(offline_page, tmp_path):
    page, report = offline_page
    html = _html(
        tmp_path,
        """<script>
          window.closed = new Promise((resolve) => {
            const ws = new WebSocket("wss://example.com/socket");
            ws.onclose = (event) => resolve(event.code);
          });
        </script>""",
    )
    offline_page.goto(html)
    assert page.evaluate("window.closed") != 1000
    assert report.blocked == ["wss://example.com/socket"]
    with pytest.raises(AssertionError, match="wss://example.com/socket"):
        report.assert_clean()


def test_console_error_is_caught(offline_page, tmp_path):
    _, report = offline_page
    offline_page.goto(_html(tmp_path, "<script>console.error('boom from console')</script>"))
    with pytest.raises(AssertionError, match="console error: boom from console"):
        report.assert_clean()
    assert report.page_errors == [] and report.blocked == []


def test_uncaught_exception_is_caught(offline_page, tmp_path):
    _, report = offline_page
    offline_page.goto(_html(tmp_path, "<script>throw new Error('boom thrown')</script>"))
    with pytest.raises(AssertionError, match=r"page error \(uncaught\): .*boom thrown"):
        report.assert_clean()
    assert report.console_errors == [] and report.blocked == []


def test_missing_local_file_is_a_failed_request(offline_page, tmp_path):
    _, report = offline_page
    offline_page.goto(_html(tmp_path, "<img src='missing.png'>"))
    with pytest.raises(AssertionError, match=r"failed request: file://.*missing\.png"):
        report.assert_clean()
    assert report.blocked == []


def test_clean_local_page_passes_and_screenshots(offline_page, tmp_path, monkeypatch):
    monkeypatch.setenv("GLAVIZ_TEST_ARTIFACTS", str(tmp_path / "artefacts"))
    page, report = offline_page
    (tmp_path / "dot.png").write_bytes(base64.b64decode(PNG_1PX))
    html = _html(
        tmp_path,
        f"""<img id="a" src="data:image/png;base64,{PNG_1PX}"><img id="b" src="dot.png">
        <script>console.log("just a log line"); document.title = "clean";</script>""",
    )
    offline_page.goto(html)
    assert page.title() == "clean"
    assert page.evaluate("document.getElementById('b').naturalWidth") == 1
    report.assert_clean()
    shot = offline_page.screenshot("clean page")
    assert shot == tmp_path / "artefacts" / "clean_page.png"
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.fixture()
def local_http_server(tmp_path):
    """A static file server on 127.0.0.1 and a free port, serving tmp_path."""

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(tmp_path), **kwargs)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_loopback_http_is_allowed(offline_page, tmp_path, local_http_server):
    page, report = offline_page
    (tmp_path / "app.js").write_text("document.title = 'served';")
    _html(tmp_path, "<script src='app.js'></script>", name="index.html")
    offline_page.goto(f"{local_http_server}/index.html")
    assert page.title() == "served"
    report.assert_clean()


def test_glaviz_chromium_is_honoured_and_a_missing_one_fails(monkeypatch):
    monkeypatch.setenv("GLAVIZ_CHROMIUM", "/nonexistent/chromium")
    assert find_chromium() == "/nonexistent/chromium"
    with pytest.raises(pytest.fail.Exception, match=r"make browser.*GLAVIZ_CHROMIUM"):
        require_chromium()
