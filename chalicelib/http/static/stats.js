// Execution quality from GET api/stats?window= (ExecutionStats): headline figures, venue share,
// submit -> confirmed and price improvement percentiles as SVG bar charts, failure reasons.
// Each chart is a <figure> whose SVG carries its numbers in an aria-label.

import { el, number, percent, svg } from "./format.js";

const REFRESH_DEBOUNCE_MS = 1000;
const PERCENTILES = ["p50", "p90", "p99"];

// Rows of [label, value (a number or null), shown text]; bars scale to the largest value.
function barChart(title, rows, unit = "") {
  const width = 320;
  const rowHeight = 22;
  const max = Math.max(...rows.map(([, v]) => v ?? 0), 0) || 1;
  const spoken = rows.map(([key, , text]) => `${key} ${text}`).join(", ");
  const chart = svg(
    "svg",
    {
      viewBox: `0 0 ${width} ${rows.length * rowHeight}`,
      role: "img",
      "aria-label": `${title}: ${spoken}`,
    },
    ...rows.map(([key, value, text], i) => {
      const barWidth = value === null ? 0 : Math.max(1, ((width - 170) * Math.abs(value)) / max);
      return svg(
        "g",
        { transform: `translate(0 ${i * rowHeight})` },
        svg("text", { x: 0, y: 15, class: "bar-label" }, key),
        svg("rect", { x: 90, y: 4, width: barWidth, height: 14, rx: 2, class: `bar bar-${key}` }),
        svg("text", { x: 96 + barWidth, y: 15, class: "bar-value" }, `${text}${unit}`),
      );
    }),
  );
  return el("figure", { class: "chart" }, el("figcaption", { text: title }), chart);
}

function percentileRows(percentiles, digits) {
  return PERCENTILES.map((p) => {
    const raw = percentiles?.[p];
    const value = raw === null || raw === undefined ? null : Number(raw);
    return [p, value, value === null ? "–" : number(value, digits)];
  });
}

function figure(term, value) {
  return el("div", {}, el("dt", { text: term }), el("dd", { "data-figure": term, text: value }));
}

function share(value) {
  return value === null || value === undefined ? "–" : percent(100 * Number(value), 3);
}

export class StatsPanel {
  constructor(api, { note, body, windowSelect }) {
    this.api = api;
    this.note = note;
    this.body = body;
    this.windowSelect = windowSelect;
    this.timer = null;
    this.asked = 0;
    windowSelect.addEventListener("change", () => this.load());
  }

  // After an order ends: one reload for a burst of terminal statuses.
  refreshSoon() {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.load(), REFRESH_DEBOUNCE_MS);
  }

  stop() {
    clearTimeout(this.timer);
    this.body.replaceChildren();
  }

  async load() {
    clearTimeout(this.timer);
    const asked = ++this.asked;
    if (!this.body.childElementCount) this.note.textContent = "Loading…";
    try {
      const stats = await this.api.get("api/stats", { window: this.windowSelect.value });
      if (asked === this.asked) this.render(stats);
    } catch (error) {
      if (asked !== this.asked) return;
      this.body.replaceChildren();
      this.note.textContent = error.routeMissing
        ? "Execution statistics are not available on this server."
        : `Statistics could not be loaded: ${error.message}`;
      this.windowSelect.disabled = error.routeMissing;
    }
  }

  render(stats) {
    const failed = stats.byStatus?.failed?.count ?? 0;
    const figures = el(
      "dl",
      { class: "figures" },
      figure("Orders", String(stats.orders)),
      figure("Confirmed", String(stats.confirmed)),
      figure("Failed", String(failed)),
      figure("Split share", share(stats.splitShare)),
    );
    const parts = [figures];
    const venues = Object.entries(stats.venues || {});
    if (venues.length) {
      const rows = venues.map(([venue, v]) => [venue, 100 * Number(v.share), `${percent(100 * Number(v.share))} (${v.orders})`]);
      parts.push(barChart("Venue share of confirmed orders", rows));
    }
    if (stats.confirmed) {
      parts.push(barChart("Submit → confirmed (s)", percentileRows(stats.submitToConfirmedS, 3), " s"));
      parts.push(barChart("Price improvement (bps)", percentileRows(stats.priceImprovementBps, 4), " bps"));
    }
    const reasons = Object.entries(stats.failureReasons || {});
    if (reasons.length) {
      parts.push(
        el(
          "figure",
          { class: "chart reasons" },
          el("figcaption", { text: "Failure reasons" }),
          el(
            "ul",
            {},
            ...reasons.map(([code, count]) =>
              el("li", {}, el("code", { text: code }), ` ${count}`),
            ),
          ),
        ),
      );
    }
    this.body.replaceChildren(...parts);
    this.note.textContent = stats.orders ? "" : "No orders in this window.";
  }
}
