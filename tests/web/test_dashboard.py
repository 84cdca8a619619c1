"""The dashboard in headless Chromium against the running engine: sign in, order, watch it
live over one WebSocket, survive a dropped socket, errors next to their field, the drawer,
cancel, the API docs."""

import json
import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest

try:
    from playwright.sync_api import expect
except ImportError:  # the fixtures skip, or fail under CI, saying how to install it
    expect = None

from harness.http import request
from harness.orders import FLOW
from tests.web import browser

pytestmark = pytest.mark.integration
browser.skip_module_without_browser()


def trail(page, order_id: str) -> list[tuple[int, str]]:
    """The (seq, status) events the row received, in the order shown."""
    items = page.locator(f'tr[data-order-id="{order_id}"] .trail li')
    return [(int(li.get_attribute("data-seq")), li.text_content()) for li in items.all()]


def row(page, order_id: str):
    return page.locator(f'tr[data-order-id="{order_id}"]')


def route_exists(engine, method: str, path: str) -> bool:
    """False when the gateway has no such route (403/404 without the API's error body)."""
    status, _, body = request(method, f"{engine.http}{path}")
    if status not in (403, 404):
        return True
    try:
        return "error" in json.loads(body)
    except ValueError:
        return False


def test_an_order_goes_live_to_confirmed(signed_in, engine):
    page = signed_in
    order_id = browser.place_order(page, "1.5")

    confirmed = row(page, order_id).locator(".chip[data-status=confirmed]")
    confirmed.wait_for(timeout=20_000)

    assert trail(page, order_id) == list(enumerate(FLOW, start=1))
    assert row(page, order_id).count() == 1
    assert "→" in row(page, order_id).locator(".outcome").text_content()  # amount out shown
    assert "confirmed" in page.locator("#blotter-log").text_content()  # spoken update
    assert page.locator("#connection").get_attribute("data-state") == "live"


def test_a_dropped_socket_resumes_from_the_last_seq_without_duplicates(signed_in):
    page = signed_in
    subscribes: list[dict] = []
    sockets: list = []

    def watch(socket):
        sockets.append(socket)
        socket.on(
            "framesent",
            lambda payload: (
                subscribes.append(json.loads(payload)) if '"subscribe"' in str(payload) else None
            ),
        )

    page.on("websocket", watch)
    page.reload()  # the key is in sessionStorage: signed in again, with frames watched
    page.get_by_role("heading", name="New order").wait_for()
    order_id = browser.place_order(page, "0.75", "SOL", "USDT")
    row(page, order_id).locator(".chip[data-status=submitted]").wait_for(timeout=20_000)
    seen = trail(page, order_id)

    page.evaluate("window.dashboard.live.socket.close()")  # as a network drop would
    row(page, order_id).locator(".chip[data-status=confirmed]").wait_for(timeout=20_000)

    assert len(sockets) == 2  # one socket at a time: the first, then its replacement
    resubscribed = [m for m in subscribes if m["orderId"] == order_id][1:]
    assert resubscribed == [{"action": "subscribe", "orderId": order_id, "since": seen[-1][0]}]
    assert trail(page, order_id) == list(enumerate(FLOW, start=1))
    ids = [r.get_attribute("data-order-id") for r in page.locator("#blotter tr").all()]
    assert len(ids) == len(set(ids))


def test_a_bad_amount_shows_the_api_error_next_to_the_field(signed_in):
    page = signed_in
    rows_before = page.locator("#blotter tr").count()
    page.get_by_label("Amount").fill("1.5.5")
    page.get_by_role("button", name="Place order").click()

    error = page.locator("#amount-error")
    error.wait_for()
    assert "decimal" in error.text_content()
    assert page.get_by_label("Amount").get_attribute("aria-invalid") == "true"
    assert page.get_by_label("Amount").evaluate("el => el === document.activeElement")
    assert page.locator("#blotter tr").count() == rows_before

    page.get_by_label("Amount").fill("2")
    page.get_by_role("button", name="Place order").click()
    page.wait_for_function(
        "n => document.querySelectorAll('#blotter tr').length > n", arg=rows_before
    )
    assert error.is_hidden()  # cleared by the next good order


def test_a_late_quote_for_an_edited_amount_brings_no_error_back(signed_in):
    """The bad amount's quote answers only after the amount was edited and an order placed.
    The page's clock is the test's, so the edited amount's own quote (300 ms after typing)
    is not asked before that: an answer for an older form must be dropped by the edit."""
    page = signed_in
    page.clock.install()
    page.reload()  # signed in again from sessionStorage, on the test's clock
    page.get_by_role("heading", name="New order").wait_for()
    page.clock.pause_at(datetime.now(UTC) + timedelta(seconds=1))
    held = []  # the bad amount's quote request, answered when the test says
    page.route("**/api/quote?*amount=1.5.5*", lambda route: held.append(route))
    page.get_by_label("Amount").fill("1.5.5")
    with page.expect_request(lambda asked: "amount=1.5.5" in asked.url):
        page.clock.run_for(400)  # the typing pauses: it is asked

    rows_before = page.locator("#blotter tr").count()
    page.get_by_label("Amount").fill("2")  # its quote waits for the clock
    page.get_by_role("button", name="Place order").click()
    expect(page.locator("#blotter tr")).to_have_count(rows_before + 1)
    with page.expect_response(lambda answer: "amount=1.5.5" in answer.url) as late:
        held[0].continue_()
    assert late.value.status == 422
    page.clock.run_for(400)  # now the edited amount's quote, answered after the late one
    expect(page.locator("#quote-figures")).to_be_visible()

    expect(page.locator("#amount-error")).to_be_hidden()
    assert page.get_by_label("Amount").get_attribute("aria-invalid") is None


def test_the_drawer_shows_history_route_and_signature(signed_in):
    page = signed_in
    order_id = browser.place_order(page, "250", "USDC", "SOL")
    row(page, order_id).locator(".chip[data-status=confirmed]").wait_for(timeout=20_000)

    row(page, order_id).get_by_role("button", name=re.compile("Details")).click()
    drawer = page.get_by_role("dialog")
    drawer.locator(".history li").nth(len(FLOW) - 1).wait_for()

    history = drawer.locator(".history li")
    assert [int(li.get_attribute("data-seq")) for li in history.all()] == [1, 2, 3, 4, 5]
    assert drawer.locator(".legs tbody tr").count() >= 1
    assert re.fullmatch(r"[1-9A-HJ-NP-Za-km-z]{87,88}", drawer.locator(".signature").text_content())
    assert drawer.locator(".split").get_attribute("aria-label").startswith("Split across venues")
    page.keyboard.press("Escape")
    assert drawer.is_hidden()


def test_cancel_an_order_before_it_is_submitted(signed_in, engine):
    if not route_exists(engine, "POST", f"/api/orders/{uuid.uuid4()}/cancel"):
        pytest.skip("POST /api/orders/{id}/cancel is not on this server")
    page = signed_in
    order_id = browser.place_order(page, "1", "SOL", "USDC")
    row(page, order_id).get_by_role("button", name=re.compile("Details")).click()
    page.get_by_role("button", name="Cancel order").click()

    row(page, order_id).locator(".chip[data-status=cancelled]").wait_for(timeout=20_000)
    assert trail(page, order_id)[-1][1] == "cancelled"


def test_without_the_cancel_route_the_drawer_says_so(signed_in, engine):
    if route_exists(engine, "POST", f"/api/orders/{uuid.uuid4()}/cancel"):
        pytest.skip("this server has POST /api/orders/{id}/cancel")
    page = signed_in
    order_id = browser.place_order(page, "1", "SOL", "USDC")
    row(page, order_id).get_by_role("button", name=re.compile("Details")).click()
    page.get_by_role("button", name="Cancel order").click()

    unavailable = "Cancelling is not available on this server."
    expect(page.locator("#drawer-error")).to_have_text(unavailable)
    expect(page.get_by_role("button", name="Cancel order")).to_be_hidden()


def test_quote_and_stats_panels_follow_what_the_server_has(signed_in, engine):
    page = signed_in
    page.get_by_label("Amount").fill("3")
    stats_note = page.locator("#stats-note")
    if not route_exists(engine, "GET", "/api/quote"):
        page.get_by_text("Quote preview is not available on this server.").wait_for()
    else:
        page.locator("#quote-figures").wait_for()
        assert "SOL" in page.locator("#quote-price").text_content()
    if not route_exists(engine, "GET", "/api/stats"):
        page.get_by_text("Execution statistics are not available on this server.").wait_for()
        assert page.get_by_label("Window").is_disabled()
    else:
        expect(stats_note).not_to_have_text("Loading…")
        assert "could not" not in stats_note.text_content()


def test_quote_preview_and_charts_render_what_the_api_answers(page, engine):
    """Quote and stats answered by the test in their documented shapes: the page shows the
    UI amounts as given, the split bar, and one labelled chart per figure group."""
    leg = {"poolId": "p", "inAmount": "1", "outAmount": "1", "fee": "0"}
    quote = {
        "inAmount": "2000000000", "inAmountUi": "2", "outAmount": "300000000",
        "outAmountUi": "300", "minOut": "297000000", "minOutUi": "297.000000",
        "priceImpactPct": "0.12", "oraclePrice": "150.1",
        "routePlan": [{**leg, "venue": "raydium", "percent": "60"},
                      {**leg, "venue": "meteora", "percent": "40"}],
    }  # fmt: skip
    none = {"p50": None, "p90": None, "p99": None}
    stats = {
        "window": "24h", "since": "2026-01-01T00:00:00Z", "orders": 42,
        "byStatus": {"confirmed": {"count": 40, "share": "0.95"},
                     "failed": {"count": 2, "share": "0.05"}},
        "failureReasons": {"price_impact_too_high": 2}, "confirmed": 40, "splitShare": "0.25",
        "venues": {"raydium": {"orders": 30, "share": "0.75"},
                   "meteora": {"orders": 20, "share": "0.5"}},
        "priceImprovementBps": {"p50": "3.5", "p90": "12", "p99": "20"},
        "realizedOverMinOutBps": none, "belowMinOut": 0,
        "submitToConfirmedS": {"p50": "2.1", "p90": "2.9", "p99": "3.4"},
    }  # fmt: skip
    page.route("**/api/quote?*", lambda route: route.fulfill(json=quote))
    page.route("**/api/stats?*", lambda route: route.fulfill(json=stats))
    browser.sign_in(page, engine.http, browser.api_key(engine.data_dir))
    page.get_by_label("Amount").fill("2")

    page.locator("#quote-figures").wait_for()
    assert page.locator("#quote-price").text_content() == "1 SOL = 150 USDC"
    assert page.locator("#quote-min").text_content() == "297.000000 USDC"
    assert page.locator("#quote-impact").text_content() == "0.12%"
    split = page.locator("#quote-split")
    assert split.get_attribute("aria-label") == "Split across venues: raydium 60%, meteora 40%"
    widths = [s.bounding_box()["width"] for s in split.locator(".segment").all()]
    assert widths[0] == pytest.approx(1.5 * widths[1], rel=0.05)

    body = page.locator("#stats-body")
    expect(body.locator("[data-figure=Failed]")).to_have_text("2")
    assert body.locator("[data-figure='Split share']").text_content() == "25%"
    captions = [c.text_content() for c in body.locator("figcaption").all()]
    assert captions == [
        "Venue share of confirmed orders", "Submit → confirmed (s)",
        "Price improvement (bps)", "Failure reasons",
    ]  # fmt: skip
    latency = body.get_by_role("img", name=re.compile("Submit"))
    spoken = "Submit → confirmed (s): p50 2.1, p90 2.9, p99 3.4"
    assert latency.get_attribute("aria-label") == spoken
    assert "price_impact_too_high 2" in body.locator(".reasons li").text_content()


def test_stats_follow_a_new_clients_orders_as_they_confirm(page, engine):
    browser.sign_in(page, engine.http, browser.new_client_key(engine, f"web-{uuid.uuid4()}"))
    body = page.locator("#stats-body")
    expect(body.locator("[data-figure=Orders]")).to_have_text("0")
    first = browser.place_order(page, "1", "SOL", "USDC")
    second = browser.place_order(page, "100", "USDC", "SOL")
    for order_id in (first, second):
        row(page, order_id).locator(".chip[data-status=confirmed]").wait_for(timeout=20_000)

    expect(body.locator("[data-figure=Confirmed]")).to_have_text("2")  # refreshed, not reloaded
    assert body.locator("[data-figure=Orders]").text_content() == "2"
    venues = body.get_by_role("img", name=re.compile("Venue share"))
    assert venues.locator("rect.bar").count() >= 1
    page.get_by_label("Window").select_option("1h")
    expect(body.locator("[data-figure=Confirmed]")).to_have_text("2")


def test_a_limit_order_far_from_the_market_stays_open_until_cancelled(signed_in):
    page = signed_in
    page.get_by_label("Order type").select_option("limit")
    page.get_by_label(re.compile("Limit price")).fill("1000000")  # USDC per SOL: never met
    page.get_by_label("Expires in (minutes)").fill("30")
    order_id = browser.place_order(page, "1", "SOL", "USDC")
    row(page, order_id).locator(".chip[data-status=open]").wait_for(timeout=20_000)

    row(page, order_id).get_by_role("button", name=re.compile("Details")).click()
    drawer = page.get_by_role("dialog")
    expect(drawer.locator(".details")).to_contain_text("1000000 USDC per SOL")
    page.get_by_role("button", name="Cancel order").click()
    row(page, order_id).locator(".chip[data-status=cancelled]").wait_for(timeout=20_000)
    assert [status for _, status in trail(page, order_id)][-2:] == ["open", "cancelled"]
    expect(page.get_by_role("button", name="Cancel order")).to_be_hidden()


def test_a_sniper_order_for_a_new_listing_waits_open_until_cancelled(signed_in, engine):
    page = signed_in
    page.get_by_label("Order type").select_option("sniper")
    expect(page.get_by_label("Buy")).to_have_value("SNIPE")  # the listing, and its quote
    expect(page.get_by_label("Sell")).to_have_value("USDC")
    expect(page.locator("#sniper-note")).to_contain_text("SNIPE")
    expect(page.locator("#limit-fields")).to_be_hidden()
    page.get_by_label(re.compile("Max price")).fill("0.02")
    expect(page.locator("#max-price-unit")).to_have_text("(USDC per SNIPE)")
    order_id = browser.place_order(page, "100", "USDC", "SNIPE")
    row(page, order_id).locator(".chip[data-status=open]").wait_for(timeout=20_000)

    key = {"Authorization": f"Bearer {browser.api_key(engine.data_dir)}"}
    status, _, body = request("GET", f"{engine.http}/api/orders/{order_id}", headers=key)
    order = json.loads(body)["order"]
    assert status == 200 and (order["type"], order["maxPrice"]) == ("sniper", "0.02")
    row(page, order_id).get_by_role("button", name=re.compile("Details")).click()
    expect(page.get_by_role("dialog").locator(".details")).to_contain_text("0.02 USDC per SNIPE")
    page.get_by_role("button", name="Cancel order").click()
    row(page, order_id).locator(".chip[data-status=cancelled]").wait_for(timeout=20_000)


def test_the_quote_preview_shows_the_real_minimum(signed_in):
    page = signed_in
    with page.expect_response(re.compile(r"/api/quote\?.*amount=0\.1")) as answer:
        page.get_by_label("Amount").fill("0.1")
    quote = answer.value.json()
    assert answer.value.status == 200
    expect(page.locator("#quote-min")).to_have_text(f"{quote['minOutUi']} USDC")
    assert re.fullmatch(r"[0-9]+\.[0-9]+", quote["minOutUi"])  # an exact decimal, shown as is


def test_api_docs_render_the_openapi_document(page, engine):
    page.goto(f"{engine.http}/api/docs")
    page.locator(".opblock-summary-path").first.wait_for(timeout=20_000)
    shown = page.locator(".opblock-summary-path").all()
    paths = {p.text_content().replace("\u200b", "") for p in shown}
    assert {"/api/orders/execute", "/api/orders/{order_id}", "/api/orders"} <= paths


def test_phone_width_keeps_everything_reachable(signed_in):
    page = signed_in
    page.set_viewport_size(browser.PHONE)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= browser.PHONE["width"]  # no sideways scrolling
    for name in ("Amount", "Sell", "Buy"):
        assert page.get_by_label(name).is_visible()
    assert page.get_by_role("button", name="Place order").is_visible()


def test_a_stop_order_far_from_the_oracle_waits_open_until_cancelled(signed_in):
    page = signed_in
    page.get_by_label("Order type").select_option("stop")
    page.get_by_label(re.compile("Trigger price")).fill("1")  # USDC per SOL: never falls to it
    page.get_by_label("Triggers when the price").select_option("below")
    order_id = browser.place_order(page, "1", "SOL", "USDC")
    row(page, order_id).locator(".chip[data-status=open]").wait_for(timeout=20_000)

    row(page, order_id).get_by_role("button", name=re.compile("Details")).click()
    expect(page.get_by_role("dialog").locator(".details")).to_contain_text("below 1 USDC per SOL")
    page.get_by_role("button", name="Cancel order").click()
    row(page, order_id).locator(".chip[data-status=cancelled]").wait_for(timeout=20_000)


def test_a_twap_shows_its_children_under_it_and_completes(signed_in):
    page = signed_in
    page.get_by_label("Order type").select_option("twap")
    page.get_by_label("Slices").fill("2")
    page.get_by_label("Every (seconds)").fill("1")
    parent_id = browser.place_order(page, "1", "SOL", "USDC")
    row(page, parent_id).locator(".chip[data-status=completed]").wait_for(timeout=60_000)
    children = page.locator(f'tr[data-parent-id="{parent_id}"]')
    expect(children).to_have_count(2)
    expect(children.locator(".chip[data-status=confirmed]")).to_have_count(2)
    assert "TWAP" in row(page, parent_id).text_content()

    row(page, parent_id).get_by_role("button", name=re.compile("Details")).click()
    drawer = page.get_by_role("dialog")
    expect(drawer.locator(".details")).to_contain_text("2 of 2 every 1 s")
    expect(drawer.locator(".details")).to_contain_text("2 confirmed")
    expect(drawer.locator("table.children tbody tr")).to_have_count(2)


def test_a_dca_outside_its_band_skips_each_cycle(signed_in):
    page = signed_in
    page.get_by_label("Order type").select_option("dca")
    page.get_by_label("Cycles").fill("2")
    page.get_by_label("Every (seconds)").fill("1")
    page.get_by_label(re.compile("Band min")).fill("1000000")  # USDC per SOL: never inside
    parent_id = browser.place_order(page, "0.5", "SOL", "USDC")
    row(page, parent_id).locator(".chip[data-status=completed]").wait_for(timeout=60_000)
    expect(page.locator(f'tr[data-parent-id="{parent_id}"]')).to_have_count(0)
    row(page, parent_id).get_by_role("button", name=re.compile("Details")).click()
    drawer = page.get_by_role("dialog")
    expect(drawer.locator(".details")).to_contain_text("2 skipped")
    expect(drawer.locator(".history")).to_contain_text("below_min_price")


def test_a_twap_body_error_shows_next_to_its_field(signed_in):
    page = signed_in
    page.get_by_label("Order type").select_option("twap")
    page.get_by_label("Slices").fill("1")
    page.get_by_label("Amount").fill("1")
    page.get_by_role("button", name="Place order").click()
    expect(page.locator("#slices-error")).not_to_be_empty()


def test_an_oco_pair_is_placed_from_the_form_as_two_linked_orders(signed_in):
    page = signed_in
    page.get_by_label("Order type").select_option("oco")
    expect(page.get_by_role("group", name="Take profit (limit)")).to_be_visible()
    expect(page.get_by_role("group", name="Stop loss")).to_be_visible()
    page.get_by_label(re.compile("Limit price")).fill("")  # the take profit's price is missing
    rows = page.locator("#blotter tr")
    before = rows.count()
    page.get_by_label("Amount").fill("1")
    page.get_by_role("button", name="Place order").click()
    expect(page.locator("#limitPrice-error")).not_to_be_empty()  # "takeProfit.limitPrice"
    assert rows.count() == before

    page.get_by_label(re.compile("Limit price")).fill("1000000")  # USDC per SOL: never met
    page.get_by_label(re.compile("Trigger price")).fill("1")  # never falls to it
    page.get_by_label("Triggers when the price").select_option("below")
    page.get_by_role("button", name="Place order").click()
    page.wait_for_function("n => document.querySelectorAll('#blotter tr').length >= n + 2",
                           arg=before)  # fmt: skip
    stop_id, take_id = (rows.nth(i).get_attribute("data-order-id") for i in (1, 0))
    for order_id in (stop_id, take_id):
        row(page, order_id).locator(".chip[data-status=open]").wait_for(timeout=20_000)
    row(page, take_id).get_by_role("button", name=re.compile("Details")).click()
    details = page.get_by_role("dialog").locator(".details")
    expect(details).to_contain_text("OCO pair of")
    expect(details).to_contain_text(stop_id)
    expect(details).to_contain_text("1000000 USDC per SOL")
