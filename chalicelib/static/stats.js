// Execution quality from GET api/stats?window=, drawn as figures and inline SVG bar charts.
// The panel reads any shape: numbers become figures, objects of numbers become bar charts,
// arrays of numbers become sparklines.

import { el, number, svg } from "./format.js";

const MAX_FIGURES = 8;

function label(path) {
  return path
    .join(" ")
    .replace(/([a-z])([A-Z])/g, "$1 $2")
    .replace(/_/g, " ")
    .toLowerCase();
}

function isNumeric(value) {
  return (typeof value === "number" || typeof value === "string") && value !== "" && Number.isFinite(Number(value));
}

// Walk the answer: figures (path, value), bar charts (path, {key: n}), series (path, [n]).
export function shapes(stats, path = [], found = { figures: [], bars: [], series: [] }) {
  for (const [key, value] of Object.entries(stats || {})) {
    const here = [...path, key];
    if (isNumeric(value)) found.figures.push([here, Number(value)]);
    else if (Array.isArray(value) && value.length > 1 && value.every(isNumeric)) {
      found.series.push([here, value.map(Number)]);
    } else if (value && typeof value === "object" && !Array.isArray(value)) {
      const entries = Object.entries(value);
      if (entries.length > 1 && entries.every(([, v]) => typeof v === "number")) {
        found.bars.push([here, entries]);
      } else shapes(value, here, found);
    }
  }
  return found;
}

function barChart(title, entries) {
  const width = 320;
  const rowHeight = 22;
  const max = Math.max(...entries.map(([, v]) => v), 0) || 1;
  const chart = svg(
    "svg",
    { viewBox: `0 0 ${width} ${entries.length * rowHeight}`, role: "img", "aria-label": title },
    ...entries.map(([key, value], i) => {
      const barWidth = Math.max(1, ((width - 150) * value) / max);
      return svg(
        "g",
        { transform: `translate(0 ${i * rowHeight})` },
        svg("text", { x: 0, y: 15, class: "bar-label" }, key),
        svg("rect", { x: 100, y: 4, width: barWidth, height: 14, rx: 2, class: "bar" }),
        svg("text", { x: 106 + barWidth, y: 15, class: "bar-value" }, number(value, 4)),
      );
    }),
  );
  return el("figure", { class: "chart" }, el("figcaption", { text: title }), chart);
}

function sparkline(title, values) {
  const width = 320;
  const height = 60;
  const min = Math.min(...values);
  const span = Math.max(...values) - min || 1;
  const points = values
    .map((v, i) => `${(i * width) / (values.length - 1)},${height - 4 - ((v - min) * (height - 8)) / span}`)
    .join(" ");
  const chart = svg(
    "svg",
    { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": `${title}: ${values.length} points` },
    svg("polyline", { points, class: "line" }),
  );
  return el("figure", { class: "chart" }, el("figcaption", { text: title }), chart);
}

export class StatsPanel {
  constructor(api, { note, body, windowSelect }) {
    this.api = api;
    this.note = note;
    this.body = body;
    this.windowSelect = windowSelect;
    windowSelect.addEventListener("change", () => this.load());
  }

  async load() {
    this.note.textContent = "Loading…";
    try {
      const stats = await this.api.get("api/stats", { window: this.windowSelect.value });
      this.render(stats);
    } catch (error) {
      this.body.replaceChildren();
      this.note.textContent = error.routeMissing
        ? "Execution statistics are not available on this server."
        : `Statistics could not be loaded: ${error.message}`;
      this.windowSelect.disabled = error.routeMissing;
    }
  }

  render(stats) {
    const { figures, bars, series } = shapes(stats);
    const list = el(
      "dl",
      { class: "figures" },
      ...figures.slice(0, MAX_FIGURES).map(([path, value]) =>
        el("div", {}, el("dt", { text: label(path) }), el("dd", { text: number(value, 5) })),
      ),
    );
    this.body.replaceChildren(
      list,
      ...bars.map(([path, entries]) => barChart(label(path), entries)),
      ...series.map(([path, values]) => sparkline(label(path), values)),
    );
    this.note.textContent = figures.length + bars.length + series.length ? "" : "No data in this window.";
  }
}
