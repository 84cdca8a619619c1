// The order table: one row per order, a status chip, the statuses received in order, and a
// spoken line (role=log) for each change.

import { el, number, shortId, time } from "./format.js";

// A parent's kind (TWAP, DCA), or a child's slice of it.
function kindTag(order) {
  if (order.parentOrderId) return el("span", { class: "tag", text: ` slice ${Number(order.sliceIndex) + 1}` });
  if (order.type === "twap" || order.type === "dca") return el("span", { class: "tag", text: ` ${order.type.toUpperCase()}` });
  return "";
}

// What a parent's working event says: a slice placed or skipped, a child's end.
function sliceNote(event) {
  if (event.child) return `: slice ${event.child.slice + 1} ${event.child.status}`;
  if (event.skipped) return `: slice ${event.slice + 1} skipped (${event.skipped.reason})`;
  if (event.childOrderId) return `: slice ${event.slice + 1} placed`;
  return "";
}

export class Blotter {
  constructor({ body, empty, log, onOpen }) {
    this.body = body;
    this.empty = empty;
    this.log = log;
    this.onOpen = onOpen;
    this.rows = new Map(); // orderId -> { row, order }
  }

  clear() {
    this.rows.clear();
    this.body.replaceChildren();
    this.empty.hidden = false;
  }

  // An order from the API (list or POST): a row, newest on top unless `append`.
  add(order, { append = false } = {}) {
    if (this.rows.has(order.id)) return;
    const chip = el("span", { class: "chip" });
    const trail = el("ol", { class: "trail", "aria-label": "statuses received" });
    const outcome = el("span", { class: "outcome" });
    const details = el("button", {
      type: "button",
      class: "link",
      text: "Details",
      "aria-label": `Details of order ${shortId(order.id)}`,
      onclick: () => this.onOpen(order.id),
    });
    const amount = order.amountInUi == null ? `${order.amountIn} base units` : number(order.amountInUi);
    const row = el(
      "tr",
      { "data-order-id": order.id, ...(order.parentOrderId ? { "data-parent-id": order.parentOrderId } : {}) },
      el("td", { class: "col-time", text: time(order.createdAt) }),
      el("td", { class: "col-pair" }, `${order.tokenIn} → ${order.tokenOut}`, kindTag(order)),
      el("td", {}, el("span", { text: `${amount} ${order.tokenIn}` }), outcome),
      el("td", {}, chip),
      el("td", { class: "col-trail" }, trail),
      el("td", {}, details),
    );
    const entry = { row, order, chip, trail, outcome };
    this.rows.set(order.id, entry);
    this.setStatus(entry, order.status, order.failureReason);
    if (order.amountOutUi) this.setOutcome(entry, order.amountOutUi);
    const parent = order.parentOrderId && this.rows.get(order.parentOrderId);
    if (parent && !append) parent.row.after(row); // a slice right under its parent
    else if (append) this.body.append(row);
    else this.body.prepend(row);
    this.empty.hidden = true;
  }

  // One status event from the WebSocket (already deduplicated by seq).
  update(event) {
    const entry = this.rows.get(event.orderId);
    if (!entry) return;
    entry.trail.append(
      el("li", { "data-seq": event.seq, "data-status": event.status, text: event.status }),
    );
    this.setStatus(entry, event.status, event.reason);
    if (event.amountOutUi) this.setOutcome(entry, event.amountOutUi);
    const { tokenIn, tokenOut } = entry.order;
    const reason = event.reason ? `: ${event.reason}` : sliceNote(event);
    this.log.append(
      el("p", { text: `Order ${shortId(event.orderId)} ${tokenIn} to ${tokenOut} ${event.status}${reason}` }),
    );
    while (this.log.childElementCount > 20) this.log.firstElementChild.remove();
  }

  setStatus(entry, status, reason) {
    entry.order.status = status;
    entry.chip.textContent = status;
    entry.chip.dataset.status = status;
    entry.row.dataset.status = status;
    const old = entry.row.querySelector(".reason");
    old?.remove();
    if (status === "failed" && reason) {
      entry.chip.after(el("span", { class: "reason", text: reason }));
    }
  }

  setOutcome(entry, amountOutUi) {
    entry.outcome.textContent = ` → ${number(amountOutUi)} ${entry.order.tokenOut}`;
  }

  status(orderId) {
    return this.rows.get(orderId)?.order.status;
  }

  order(orderId) {
    return this.rows.get(orderId)?.order;
  }
}
