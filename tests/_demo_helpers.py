"""What the demo's tests share: a server running in a thread, and a real Chromium driven by Playwright.

The browser is Debian's ``chromium`` (``playwright install`` downloads its own, which these
machines cannot). Where there is no browser or no Playwright the browser tests skip, saying
why, unless ``NNCORE_REQUIRE_BROWSER`` is set: .ci/run sets it, so CI fails instead of
skipping them.
"""
import contextlib
import os
import shutil
import threading

import pytest

from nncore.demo import DemoApp, DemoServer

REQUIRE_BROWSER = "NNCORE_REQUIRE_BROWSER"
#: root needs --no-sandbox; the rest keep a Chromium on a closed network from retrying connections.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]


@contextlib.contextmanager
def running_server(model, **app_options):
    """A DemoServer for ``model`` on a free port of 127.0.0.1, serving from a thread until the block ends."""
    server = DemoServer(DemoApp(model, **app_options), port=0)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def chromium_path():
    """The browser's executable; skips the test (fails it under NNCORE_REQUIRE_BROWSER) where there is none."""
    reason = None
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        reason = "Playwright is not installed (pip install playwright)"
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if reason is None and executable is None:
        reason = "no chromium on PATH (Debian: apt-get install chromium)"
    if reason is not None:
        if os.environ.get(REQUIRE_BROWSER):
            pytest.fail(f"{reason}, and {REQUIRE_BROWSER} is set: the browser tests must run here")
        pytest.skip(reason)
    return executable


@contextlib.contextmanager
def chromium():
    """A headless Chromium (Playwright's Browser) for the block."""
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def open_page(browser, url, **context_options):
    """A new page showing the demo at ``url``, once its model has loaded."""
    page = browser.new_context(viewport={"width": 1280, "height": 800}, **context_options).new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(url)
    page.evaluate("() => window.nncoreDemo.ready.then(() => true)")
    assert not errors, errors
    return page
