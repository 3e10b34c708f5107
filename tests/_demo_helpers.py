"""What the demo's tests share: ``nncore demo`` started, a server in a thread, a real Chromium (Playwright).

The browser is Debian's ``chromium`` (``playwright install`` downloads its own, which these
machines cannot). Where there is no browser or no Playwright the browser tests skip, saying
why, unless ``NNCORE_REQUIRE_BROWSER`` is set: .ci/run sets it, so CI fails instead of
skipping them.
"""
import contextlib
import os
import shutil
import subprocess
import sys
import threading

import pytest
from _time_limit import time_limit

from nncore.demo import DemoApp, DemoServer

REQUIRE_BROWSER = "NNCORE_REQUIRE_BROWSER"
#: root needs --no-sandbox; the rest keep a Chromium on a closed network from retrying connections.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]


def start_demo(arguments, env=None, stderr=subprocess.PIPE, seconds=60):
    """(the running ``nncore demo`` process, its URL, the lines it printed before the URL).

    A demo that prints no URL within ``seconds`` is killed and fails the test.
    """
    process = subprocess.Popen([sys.executable, "-m", "nncore", "demo", *arguments], stdout=subprocess.PIPE,
                               stderr=stderr, text=True, env=env)
    printed = []
    try:
        with time_limit(seconds, "nncore demo's start"):
            for line in process.stdout:  # ends when the process does
                if "http://" in line:
                    return process, line[line.index("http://"):].split()[0], printed
                printed.append(line)
    except TimeoutError:
        process.kill()
        raise
    process.wait()
    raise AssertionError(f"nncore demo exited ({process.returncode}) without a URL: {printed}")


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
