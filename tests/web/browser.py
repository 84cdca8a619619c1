"""Headless Chromium through Playwright (sync API), and the engine it talks to.

The browser is Debian's ``/usr/bin/chromium`` (``CHROMIUM`` overrides the path): Playwright
never downloads one of its own here. Without it the browser tests skip with one line saying
how to get it, and fail instead when ``CI`` is set, so CI cannot pass without running them.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness.runtime import Runtime, engine_env

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
# Slow enough to watch: an order sits ~1.5 s in routing and ~3 s in submitted.
LATENCY = {"QUOTE_LATENCY_MS": "1500", "EXEC_LATENCY_MIN_MS": "3000", "EXEC_LATENCY_MAX_MS": "3000"}
# A token the engine's market lists at a slot far ahead (2100): sniper orders for it wait open.
LISTED = {"symbol": "SNIPE", "mint": "SnipeNew".ljust(44, "1"), "decimals": 6, "quote": "USDC",
          "slot": 10_000_000_000, "reserve": 10**12, "quote_reserve": 10**10}  # fmt: skip
# The test run's own Postgres and Redis (tests/conftest.py: the machine's or private ones).
ADMIN_URL = os.environ.get(
    "TEST_POSTGRES_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
ENGINE_REDIS_URL = (
    os.environ.get("TEST_REDIS_URL") or os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/9"
)


def missing_browser() -> str | None:
    """Why the browser tests cannot run here, or None."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright is not installed: pip install -r requirements-dev.txt"
    if not (shutil.which(CHROMIUM) or os.access(CHROMIUM, os.X_OK)):
        return f"no Chromium at {CHROMIUM}: apt-get install chromium (or set CHROMIUM=<path>)"
    return None


def skip_module_without_browser() -> None:
    """At a test module's import: one skip line for the module; under CI nothing is skipped,
    and the ``chromium`` fixture fails each test instead (the rest of the suite still runs)."""
    reason = missing_browser()
    if reason is not None and not os.environ.get("CI"):
        pytest.skip(reason, allow_module_level=True)


def fail_without_browser() -> None:
    reason = missing_browser()
    if reason is not None:
        pytest.fail(f"browser tests cannot run: {reason}", pytrace=False)


def launch(playwright):
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


def start_engine(database_url: str, data_dir: Path, **env: str) -> Runtime:
    environment = engine_env(DATABASE_URL=database_url, REDIS_URL=ENGINE_REDIS_URL, **env)
    runtime = Runtime(environment, data_dir=data_dir, log_path=data_dir / "runtime.log")
    runtime.data_dir = data_dir
    return runtime.start()


def api_key(data_dir: Path) -> str:
    """The development key the engine wrote, once it has keys; any key before that."""
    path = data_dir / "dev-api-key"
    return path.read_text().strip() if path.exists() else "test-key"


def new_client_key(runtime: Runtime, client_name: str) -> str:
    """A key for a new client of the engine's database: a client with no orders yet."""
    done = subprocess.run(
        [sys.executable, "-m", "chalicelib", "keys", "create", client_name],
        env=runtime.env,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip().splitlines()[-1]


def sign_in(page, base_url: str, key: str) -> None:
    page.goto(f"{base_url}/")
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="New order").wait_for()


def place_order(page, amount: str, token_in: str = "SOL", token_out: str = "USDC") -> str:
    """Fill the form, submit, and return the new row's order id."""
    rows = page.locator("#blotter tr")
    before = rows.count()
    page.get_by_label("Sell").select_option(token_in)
    page.get_by_label("Buy").select_option(token_out)
    page.get_by_label("Amount").fill(amount)
    page.get_by_role("button", name="Place order").click()
    page.wait_for_function("n => document.querySelectorAll('#blotter tr').length > n", arg=before)
    return rows.first.get_attribute("data-order-id")
