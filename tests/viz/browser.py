"""Plain helpers for the browser tests: find Chromium, keep pages offline, report what went wrong.

The fixtures in ``tests/viz/conftest.py`` wire these together; tests normally need only the
``offline_page`` fixture (see there). Nothing here skips: with no browser the tests fail and say
how to get one.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEBIAN_CHROMIUM = "/usr/bin/chromium"

# Headless, and nothing of Chromium's own that talks to the network (updates, sync, field trials).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]

HOW_TO_GET_CHROMIUM = (
    "the browser tests need Chromium: run `make browser`, or (as root on Debian/Ubuntu) "
    "`apt-get install chromium`, or `.venv/bin/python -m playwright install chromium`, "
    "or set GLAVIZ_CHROMIUM to a Chromium/Chrome executable"
)

LOCAL_SCHEMES = frozenset({"file", "data", "blob", "about"})
NETWORK_SCHEMES = frozenset({"http", "https", "ws", "wss"})
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def find_chromium(playwright=None) -> str | None:
    """``$GLAVIZ_CHROMIUM``, else Debian's ``/usr/bin/chromium``, else Playwright's own download.

    ``$GLAVIZ_CHROMIUM`` is returned even when it does not exist: an explicit choice is never
    silently replaced by another browser (:func:`require_chromium` then fails and says so).
    """
    chosen = os.environ.get("GLAVIZ_CHROMIUM")
    if chosen:
        return chosen
    if os.access(DEBIAN_CHROMIUM, os.X_OK):
        return DEBIAN_CHROMIUM
    if playwright is not None:
        own = playwright.chromium.executable_path
        if own and os.access(own, os.X_OK):
            return own
    return None


def require_chromium(playwright=None) -> str:
    """The executable from :func:`find_chromium`, or fail the test saying how to get one."""
    exe = find_chromium(playwright)
    if exe is None:
        pytest.fail(f"no Chromium found; {HOW_TO_GET_CHROMIUM}", pytrace=False)
    if not os.access(exe, os.X_OK):
        pytest.fail(f"GLAVIZ_CHROMIUM={exe} is not an executable; {HOW_TO_GET_CHROMIUM}")
    return exe


def is_local_url(url: str) -> bool:
    """file:, data:, blob:, about: or http(s)/ws(s) to 127.0.0.1, localhost or [::1].

    >>> is_local_url("http://127.0.0.1:8888/lab"), is_local_url("ws://[::1]:1/api/kernels")
    (True, True)
    >>> is_local_url("data:image/png;base64,AAAA"), is_local_url("file:///tmp/map.html")
    (True, True)
    >>> is_local_url("https://unpkg.com/x.js"), is_local_url("http://localhost.evil.com/")
    (False, False)
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme in LOCAL_SCHEMES:
        return True
    if scheme in NETWORK_SCHEMES:
        try:
            return parts.hostname in LOCAL_HOSTS
        except ValueError:  # a malformed netloc is not local
            return False
    return False


def artifact_dir() -> Path:
    """Where screenshots go: ``$GLAVIZ_TEST_ARTIFACTS`` or ``<repo>/.cache/test-artifacts``."""
    path = Path(os.environ.get("GLAVIZ_TEST_ARTIFACTS") or ROOT / ".cache" / "test-artifacts")
    path.mkdir(parents=True, exist_ok=True)
    return path


def artifact_name(text: str) -> str:
    """A file-name-safe version of a test id.

    >>> artifact_name("tests/viz/test_x.py::test_map[a b]")
    'tests_viz_test_x.py_test_map_a_b'
    """
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")


def save_screenshot(page, name: str, *, full_page: bool = False) -> Path:
    """Save a PNG of ``page`` into :func:`artifact_dir`; returns its path."""
    path = artifact_dir() / f"{artifact_name(name)}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


@dataclass
class PageReport:
    """Everything that went wrong on one page: filled in by :func:`watch`, checked by tests."""

    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)  # every console message, for diagnosis
    page: object | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        return (
            f"PageReport(blocked={len(self.blocked)}, console_errors={len(self.console_errors)}, "
            f"page_errors={len(self.page_errors)}, failed_requests={len(self.failed_requests)})"
        )

    def problems(self) -> list[str]:
        """One line per problem; empty when the page is clean."""
        blocked = set(self.blocked)
        lines = [f"blocked non-local request: {url}" for url in self.blocked]
        lines += [f"console error: {text}" for text in self.console_errors]
        lines += [f"page error (uncaught): {text}" for text in self.page_errors]
        for entry in self.failed_requests:
            url = entry.split(" ", 1)[0]
            note = " (blocked above)" if url in blocked else ""
            lines.append(f"failed request: {entry}{note}")
        return lines

    def settle(self, ms: int = 250) -> None:
        """Let events already on their way (failed requests, late console lines) arrive."""
        page = self.page
        if page is not None and not page.is_closed():
            page.wait_for_timeout(ms)

    def assert_clean(self, *, settle_ms: int = 250) -> None:
        """Raise AssertionError listing every problem, if there is any."""
        self.settle(settle_ms)
        problems = self.problems()
        if problems:
            raise AssertionError(
                f"{len(problems)} browser problem(s):\n" + "\n".join(f"  - {p}" for p in problems)
            )


def watch(page) -> PageReport:
    """Record console errors, uncaught page errors and failed requests of ``page``."""
    report = PageReport(page=page)

    def on_console(msg) -> None:
        loc = msg.location or {}
        where = f" [{loc.get('url', '')}:{loc.get('lineNumber', '')}]" if loc.get("url") else ""
        report.console.append(f"{msg.type}: {msg.text}{where}")
        if msg.type == "error":
            report.console_errors.append(f"{msg.text}{where}")

    def on_page_error(error) -> None:
        stack = (getattr(error, "stack", None) or "").strip()
        report.page_errors.append(stack or str(error))

    def on_request_failed(request) -> None:
        report.failed_requests.append(f"{request.url} ({request.failure})")

    page.on("console", on_console)
    page.on("pageerror", on_page_error)
    page.on("requestfailed", on_request_failed)
    return report


def keep_offline(context, report: PageReport) -> None:
    """Route every request of ``context``: local ones go through, the rest are aborted + recorded.

    Non-local WebSockets are closed and recorded as well. Service workers must be blocked on the
    context (``service_workers="block"``), or their requests would bypass the routes.
    """

    def on_request(route) -> None:
        url = route.request.url
        if is_local_url(url):
            route.continue_()
        else:
            report.blocked.append(url)
            route.abort("blockedbyclient")

    def on_foreign_websocket(ws) -> None:
        report.blocked.append(ws.url)
        ws.close(code=1008, reason="blocked by the glaviz test harness (offline)")

    context.route("**/*", on_request)
    # Local WebSockets are not routed at all (routing one would proxy every kernel message).
    context.route_web_socket(lambda url: not is_local_url(url), on_foreign_websocket)


@dataclass
class OfflinePage:
    """What the ``offline_page`` fixture gives: a Playwright page and its :class:`PageReport`.

    Unpacks as ``page, report = offline_page``.
    """

    page: object
    report: PageReport
    test_id: str = "browser-test"

    def __iter__(self):
        return iter((self.page, self.report))

    def goto(self, target: str | os.PathLike, **kwargs):
        """Open a URL, or a local file given as a path."""
        url = Path(target).resolve().as_uri() if isinstance(target, os.PathLike) else target
        return self.page.goto(url, **kwargs)

    def screenshot(self, name: str | None = None, *, full_page: bool = False) -> Path:
        """PNG into the artefact folder, named after the test unless ``name`` is given."""
        return save_screenshot(self.page, name or self.test_id, full_page=full_page)
