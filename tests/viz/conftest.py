"""Browser fixtures: one headless Chromium per session, one offline page per test.

``offline_page`` is a :class:`browser.OfflinePage`; a test that opens a local file offline::

    def test_my_map_is_clean(offline_page, tmp_path):
        page, report = offline_page
        offline_page.goto(tmp_path / "map.html")  # a Path is opened as a file:// URL
        page.wait_for_selector(".leaflet-container")
        offline_page.screenshot()  # <artefacts>/<test id>.png
        report.assert_clean()  # no blocked / failed requests, console errors, page errors

Every request of the page is routed: file:, data:, blob:, about: and http(s)/ws(s) to
127.0.0.1/localhost/[::1] go through; anything else is aborted and recorded in
``report.blocked``. When a test using ``offline_page`` fails, a screenshot and the report are
saved to the artefact folder (``$GLAVIZ_TEST_ARTIFACTS`` or ``.cache/test-artifacts``).
"""

from __future__ import annotations

import pytest
from browser import (
    CHROMIUM_ARGS,
    HOW_TO_GET_CHROMIUM,
    OfflinePage,
    artifact_dir,
    artifact_name,
    keep_offline,
    require_chromium,
    save_screenshot,
    watch,
)

DEFAULT_TIMEOUT_MS = 30_000


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the item, so fixtures can tell a failed test at teardown."""
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"glaviz_rep_{rep.when}", rep)


@pytest.fixture(scope="session")
def glaviz_playwright():
    """The (sync) Playwright driver, started once per session."""
    from playwright.sync_api import sync_playwright

    manager = sync_playwright()
    pw = manager.start()
    try:
        yield pw
    finally:
        pw.stop()


@pytest.fixture(scope="session")
def chromium_executable(glaviz_playwright) -> str:
    """``$GLAVIZ_CHROMIUM``, ``/usr/bin/chromium`` or Playwright's Chromium; fails if none."""
    return require_chromium(glaviz_playwright)


@pytest.fixture(scope="session")
def chromium_browser(glaviz_playwright, chromium_executable):
    """One headless Chromium for the session.

    ``launch`` (not ``launch_persistent_context``) so that every test gets its own isolated
    context; Playwright starts Chromium on a fresh temporary user-data dir and deletes it on close.
    """
    try:
        browser = glaviz_playwright.chromium.launch(
            executable_path=chromium_executable, headless=True, args=CHROMIUM_ARGS
        )
    except Exception as err:  # a broken install: say what to do, do not skip
        pytest.fail(f"could not start Chromium {chromium_executable}: {err}\n{HOW_TO_GET_CHROMIUM}")
    try:
        yield browser
    finally:
        browser.close()


@pytest.fixture()
def offline_page(request, chromium_browser):
    """A new page in its own browser context that cannot reach the network (see module doc)."""
    context = chromium_browser.new_context(
        service_workers="block", viewport={"width": 1280, "height": 900}
    )
    context.set_default_timeout(DEFAULT_TIMEOUT_MS)
    page = context.new_page()
    report = watch(page)
    keep_offline(context, report)
    offline = OfflinePage(page, report, test_id=request.node.nodeid)
    try:
        yield offline
    finally:
        rep = getattr(request.node, "glaviz_rep_call", None)
        failed = artifact_dir() / artifact_name(f"{request.node.nodeid}-failed")
        if rep is not None and rep.failed and not page.is_closed():
            try:
                save_screenshot(page, failed.name)
                text = "\n".join(report.problems() + ["", "console:"] + report.console)
                failed.with_name(failed.name + ".txt").write_text(text + "\n")
            except Exception:  # the test's own failure is what matters
                pass
        elif rep is not None and rep.passed:  # no stale failure evidence next to a pass
            for suffix in (".png", ".txt"):
                failed.with_name(failed.name + suffix).unlink(missing_ok=True)
        context.close()
