// The order drawer (a modal <dialog>): the order, its route's legs, the transaction signature,
// its full history (GET api/orders/{id}), and Cancel while the order can still be cancelled.

import { el, number, percent, shortId, splitBar, time } from "./format.js";

const CANCELLABLE = new Set(["pending", "open", "routing", "building", "working"]);

function row(term, ...value) {
  return el("div", {}, el("dt", { text: term }), el("dd", {}, ...value));
}

function legsTable(legs) {
  const head = ["Hop", "Venue", "Pool", "In", "Out", "Fee", "Min out", "Price impact"];
  return el(
    "table",
    { class: "legs" },
    el("caption", { text: "Route legs (base units)" }),
    el("thead", {}, el("tr", {}, ...head.map((h) => el("th", { scope: "col", text: h })))),
    el(
      "tbody",
      {},
      ...legs.map((leg) =>
        el(
          "tr",
          {},
          el("td", { text: String((leg.hop ?? 0) + 1) }),
          el("td", { text: leg.venue }),
          el("td", { class: "mono", text: shortId(String(leg.poolId ?? "")) }),
          el("td", { text: String(leg.inAmount) }),
          el("td", { text: String(leg.outAmount) }),
          el("td", { text: String(leg.fee ?? "") }),
          el("td", { text: String(leg.minOut) }),
          el("td", { text: percent(leg.priceImpactPct) }),
        ),
      ),
    ),
  );
}

// A parent's slices: each child order with its status and fill.
function childrenTable(children, order) {
  const head = ["Slice", "Order", "Status", `In (${order.tokenIn})`, `Out (${order.tokenOut})`];
  return el(
    "table",
    { class: "legs children" },
    el("caption", { text: "Children" }),
    el("thead", {}, el("tr", {}, ...head.map((h) => el("th", { scope: "col", text: h })))),
    el(
      "tbody",
      {},
      ...children.map((child) =>
        el(
          "tr",
          { "data-child-id": child.id },
          el("td", { text: String(child.sliceIndex + 1) }),
          el("td", { class: "mono", text: shortId(child.id) }),
          el("td", {}, el("span", { class: "chip", "data-status": child.status, text: child.status })),
          el("td", { text: number(child.amountInUi, 12) }),
          el("td", { text: child.amountOutUi ? number(child.amountOutUi, 12) : "—" }),
        ),
      ),
    ),
  );
}

function historyList(history) {
  return el(
    "ol",
    { class: "history" },
    ...history.map((entry) => {
      const payload = entry.payload || {};
      let reason = payload.reason ? ` — ${payload.reason}` : "";
      if (payload.child) reason = ` — slice ${payload.child.slice + 1} ${payload.child.status}`;
      else if (payload.skipped) reason = ` — slice ${payload.slice + 1} skipped: ${payload.skipped.reason}`;
      else if (payload.childOrderId) reason = ` — slice ${payload.slice + 1} placed`;
      return el(
        "li",
        { "data-seq": entry.seq },
        el("span", { class: "chip", "data-status": entry.status, text: entry.status }),
        ` #${entry.seq} at ${time(entry.createdAt)}${reason}`,
      );
    }),
  );
}

export class Drawer {
  constructor(api, { dialog, title, body, error, cancel, close }) {
    this.api = api;
    this.nodes = { dialog, title, body, error, cancel };
    this.orderId = null;
    this.cancelAvailable = true;
    close.addEventListener("click", () => dialog.close());
    cancel.addEventListener("click", () => this.cancel());
    dialog.addEventListener("close", () => {
      this.orderId = null;
    });
  }

  async open(orderId) {
    this.orderId = orderId;
    this.nodes.error.textContent = "";
    this.nodes.title.textContent = `Order ${shortId(orderId)}`;
    if (!this.nodes.dialog.open) this.nodes.dialog.showModal();
    await this.refresh();
  }

  // Called on each live status of the open order.
  async refresh() {
    const orderId = this.orderId;
    if (!orderId) return;
    try {
      const detail = await this.api.get(`api/orders/${encodeURIComponent(orderId)}`);
      if (orderId === this.orderId) this.render(detail);
    } catch (error) {
      this.nodes.error.textContent = error.message;
    }
  }

  render({ order, history, children, fill }) {
    const schedule = order.schedule;
    const route = order.route;
    const split = el("div", { class: "split", role: "img" });
    const parts = [
      el(
        "dl",
        { class: "details" },
        row("Status", el("span", { class: "chip", "data-status": order.status, text: order.status })),
        row("Type", order.type || "market"),
        row("Pair", `${order.tokenIn} → ${order.tokenOut}`),
        order.limitPrice ? row("Limit price", `${order.limitPrice} ${order.tokenOut} per ${order.tokenIn}`) : null,
        order.maxPrice ? row("Max price", `${order.maxPrice} ${order.tokenIn} per ${order.tokenOut}`) : null,
        order.triggerPrice
          ? row("Trigger", `${order.direction} ${order.triggerPrice} ${order.tokenOut} per ${order.tokenIn}`)
          : null,
        order.linkedOrderId ? row("OCO pair of", order.linkedOrderId) : null,
        order.parentOrderId ? row("Slice of", `${order.parentOrderId} (slice ${order.sliceIndex + 1})`) : null,
        schedule
          ? row("Schedule", `${schedule.slicesDone} of ${schedule.slices} every ${schedule.intervalSeconds} s`)
          : null,
        schedule?.minPrice || schedule?.maxPrice
          ? row("Price band", `${schedule.minPrice ?? "—"} .. ${schedule.maxPrice ?? "—"} ${order.tokenOut} per ${order.tokenIn}`)
          : null,
        fill ? row("Filled", `${number(fill.filledAmountInUi, 12)} ${order.tokenIn} → ${number(fill.filledAmountOutUi, 12)} ${order.tokenOut}`) : null,
        fill?.averagePrice ? row("Average price", number(fill.averagePrice, 10)) : null,
        fill ? row("Children", `${fill.confirmed} confirmed, ${fill.failed} failed, ${fill.skipped} skipped of ${fill.children + fill.skipped}`) : null,
        order.expiresAt ? row("Expires", new Date(order.expiresAt).toLocaleString()) : null,
        row("Amount in", `${number(order.amountInUi, 12)} ${order.tokenIn}`),
        order.amountOutUi ? row("Amount out", `${number(order.amountOutUi, 12)} ${order.tokenOut}`) : null,
        order.executedPrice ? row("Executed price", number(order.executedPrice, 10)) : null,
        row("Max slippage", `${order.slippageBps} bps`),
        route?.swapMode === "ExactOut" ? row("Swap mode", `ExactOut, at most ${route.maxIn} base units in`) : null,
        route?.legs?.length ? row("Hops", String(1 + Math.max(...route.legs.map((leg) => leg.hop ?? 0)))) : null,
        order.feeLamports ? row("Fee paid", `${order.feeLamports} lamports (${order.computeUnits} CU)`) : null,
        order.slotsToLand ? row("Landed in", `${order.slotsToLand} slot(s)`) : null,
        row("Attempts", String(order.attempts)),
        order.failureReason ? row("Failure", order.failureReason) : null,
        row("Transaction", order.txHash ? el("code", { class: "signature", text: order.txHash }) : "—"),
      ),
    ];
    if (route?.legs?.length) {
      parts.push(el("h3", { text: `Route: ${route.kind || "route"}` }), split, legsTable(route.legs));
      const first = route.legs.filter((leg) => (leg.hop ?? 0) === 0);  // the split of the input
      splitBar(split, first.map((leg) => ({ venue: leg.venue, share: leg.inAmount })));
    }
    if (children?.length) parts.push(el("h3", { text: "Slices" }), childrenTable(children, order));
    parts.push(el("h3", { text: "History" }), historyList(history));
    this.nodes.body.replaceChildren(...parts.filter(Boolean));
    this.nodes.cancel.hidden = !(this.cancelAvailable && CANCELLABLE.has(order.status));
  }

  async cancel() {
    const orderId = this.orderId;
    this.nodes.error.textContent = "";
    try {
      await this.api.post(`api/orders/${encodeURIComponent(orderId)}/cancel`);
      await this.refresh();
    } catch (error) {
      if (error.routeMissing) {
        this.cancelAvailable = false;
        this.nodes.cancel.hidden = true;
        this.nodes.error.textContent = "Cancelling is not available on this server.";
      } else {
        this.nodes.error.textContent = error.message;
      }
    }
  }
}
