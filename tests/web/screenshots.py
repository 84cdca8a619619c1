"""``python -m tests.web.screenshots``: the README's screenshots of the dashboard, taken from
a real engine in headless Chromium: ``docs/dashboard-desktop.png`` (1280 px) and
``docs/dashboard-phone.png`` (390 px)."""

import sys
import tempfile
from pathlib import Path

from harness.runtime import PROJECT_DIR
from harness.servers import fresh_database
from tests.web import browser

ORDERS = [  # (amount, in, out, slippage bps): the last one fails (its price impact is too high)
    ("1.5", "SOL", "USDC", "100"),
    ("250", "USDC", "SOL", "100"),
    ("400", "JUP", "USDC", "50"),
    ("50000", "JUP", "BONK", "100"),
]


def take(page, base_url: str, key: str) -> None:
    browser.sign_in(page, base_url, key)
    for amount, token_in, token_out, bps in ORDERS:
        page.get_by_label("Max slippage (basis points)").fill(bps)
        browser.place_order(page, amount, token_in, token_out)
    page.wait_for_function(
        "n => document.querySelectorAll("
        "'#blotter tr[data-status=confirmed], #blotter tr[data-status=failed]').length === n",
        arg=len(ORDERS),
        timeout=60_000,
    )
    confirmed = len(ORDERS) - 1
    page.locator(f'#stats-body [data-figure=Confirmed]:text-is("{confirmed}")').wait_for()
    page.get_by_label("Max slippage (basis points)").fill("100")
    page.get_by_label("Sell").select_option("SOL")
    page.get_by_label("Buy").select_option("USDC")
    page.get_by_label("Amount").fill("3")  # its live quote stays on show
    page.locator('#quote-price:has-text("1 SOL =")').wait_for()
    in_flight = browser.place_order(page, "3", "SOL", "USDC")
    flying = ":is([data-status=routing], [data-status=building], [data-status=submitted])"
    page.locator(f'tr[data-order-id="{in_flight}"]{flying}').wait_for()
    page.screenshot(path=str(PROJECT_DIR / "docs" / "dashboard-desktop.png"))
    page.set_viewport_size(browser.PHONE)
    page.screenshot(path=str(PROJECT_DIR / "docs" / "dashboard-phone.png"), full_page=True)


def main() -> int:
    reason = browser.missing_browser()
    if reason:
        print(reason, file=sys.stderr)
        return 1
    from playwright.sync_api import sync_playwright

    with (
        tempfile.TemporaryDirectory() as data,
        fresh_database(browser.ADMIN_URL, "order_engine_web") as database_url,
    ):
        engine = browser.start_engine(
            database_url, Path(data), RETRY_BASE_DELAY_S="0", **browser.LATENCY
        )
        try:
            with sync_playwright() as playwright:
                chromium = browser.launch(playwright)
                page = chromium.new_page(viewport=browser.DESKTOP)
                take(page, engine.http, browser.api_key(Path(data)))
                chromium.close()
        finally:
            engine.stop()
    print("docs/dashboard-desktop.png, docs/dashboard-phone.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
