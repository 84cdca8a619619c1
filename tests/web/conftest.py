"""Fixtures for the browser tests: one engine (the local runtime, as a subprocess) and one
Chromium for the module, a fresh page for each test. A failed test leaves a screenshot in
``WEB_SCREENSHOTS`` (default ``.data/web-failures/``)."""

import json
import os
from pathlib import Path

import pytest
import redis

from harness.runtime import PROJECT_DIR
from harness.servers import fresh_database
from tests.services import services

services()  # the run's Postgres and Redis, which browser.ADMIN_URL and ENGINE_REDIS_URL name
from tests.web import browser  # noqa: E402

FAILURE_DIR = Path(os.environ.get("WEB_SCREENSHOTS", PROJECT_DIR / ".data" / "web-failures"))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item.failed_call = report.failed


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    """The engine on a free port, slow enough to watch each status; its data dir too."""
    browser.fail_without_browser()
    client = redis.Redis.from_url(browser.ENGINE_REDIS_URL)
    client.flushdb()
    data_dir = tmp_path_factory.mktemp("data")
    with fresh_database(browser.ADMIN_URL, "order_engine_web") as database_url:
        listings = json.dumps([browser.LISTED])
        runtime = browser.start_engine(database_url, data_dir, **browser.LATENCY, LISTINGS=listings)
        yield runtime
        assert runtime.stop() == 0, runtime.tail()
    client.flushdb()
    client.close()


@pytest.fixture(scope="module")
def chromium():
    browser.fail_without_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = browser.launch(playwright)
        yield instance
        instance.close()


@pytest.fixture
def page(chromium, request):
    """A page at 1280 px; JavaScript errors and CSP violations fail the test."""
    context = chromium.new_context(viewport=browser.DESKTOP)
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on(
        "console",
        lambda message: (
            problems.append(f"console: {message.text}")
            if "Content Security Policy" in message.text
            else None
        ),
    )
    yield page
    if getattr(request.node, "failed_call", False):
        FAILURE_DIR.mkdir(parents=True, exist_ok=True)
        path = FAILURE_DIR / f"{request.node.name}.png"
        page.screenshot(path=str(path), full_page=True)
        print(f"screenshot: {path}")
    context.close()
    assert not problems, problems


@pytest.fixture
def signed_in(page, engine):
    browser.sign_in(page, engine.http, browser.api_key(engine.data_dir))
    return page
