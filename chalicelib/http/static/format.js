// Small display helpers shared by the panels.

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "text") node.textContent = value;
    else if (name === "class") node.className = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : value);
  }
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

const SVG_NS = "http://www.w3.org/2000/svg";

export function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
  node.append(...children);
  return node;
}

export function shortId(id) {
  return id.slice(0, 8);
}

export function time(iso) {
  const date = iso ? new Date(iso) : new Date();
  return date.toLocaleTimeString([], { hourCycle: "h23", hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

// Display only: amounts stay strings everywhere else.
export function number(value, digits = 6) {
  const n = Number(value);
  if (!Number.isFinite(n)) return String(value ?? "–");
  return n.toLocaleString(undefined, { maximumSignificantDigits: digits });
}

export function percent(value, digits = 3) {
  const n = Number(value);
  return Number.isFinite(n) ? `${number(n, digits)}%` : "–";
}

// A bar of one segment per venue, widths proportional to each share (numbers or strings).
export function splitBar(container, legs) {
  const total = legs.reduce((sum, leg) => sum + Number(leg.share), 0) || 1;
  const parts = legs.map((leg) => ({ venue: leg.venue, pct: (100 * Number(leg.share)) / total }));
  container.replaceChildren(
    ...parts.map((part) => {
      const segment = el(
        "span",
        { class: `segment venue-${part.venue}` },
        `${part.venue} ${Math.round(part.pct)}%`,
      );
      segment.style.width = `${part.pct}%`;
      return segment;
    }),
  );
  const label = parts.map((p) => `${p.venue} ${Math.round(p.pct)}%`).join(", ");
  container.setAttribute("aria-label", `Split across venues: ${label}`);
  container.hidden = parts.length === 0;
}
