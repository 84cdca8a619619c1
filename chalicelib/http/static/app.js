// The dashboard: sign in with an API key (kept in this tab's sessionStorage), place market,
// limit, sniper, stop, TWAP and DCA orders (a parent with its children), follow them live over one WebSocket, open an order's details, see execution quality.

import { Api } from "./api.js";
import { Blotter } from "./blotter.js";
import { Drawer } from "./drawer.js";
import { el } from "./format.js";
import { Live } from "./live.js";
import { QuotePreview } from "./quote.js";
import { StatsPanel } from "./stats.js";

const KEY_STORAGE = "orderEngine.apiKey";
const FIELDS = [
  "type", "tokenIn", "tokenOut", "amount", "slippageBps", "venues", "limitPrice", "expiresAt", "maxPrice",
  "triggerPrice", "direction", "slices", "intervalSeconds", "minPrice", "bandMaxPrice",
];
const TERMINAL = new Set(["confirmed", "failed", "cancelled", "expired", "completed"]);
const PARENTS = new Set(["twap", "dca"]);
const MINUTE_MS = 60 * 1000;
const CONNECTION_TEXT = {
  connecting: "Connecting…",
  live: "Live",
  reconnecting: "Reconnecting…",
  offline: "Not connected",
};
const config = JSON.parse(document.getElementById("config").textContent);
const $ = (id) => document.getElementById(id);

// What the page holds while signed in; exposed for debugging from the console.
const state = { api: null, live: null };
window.dashboard = state;

function setConnection(status) {
  const node = $("connection");
  node.dataset.state = status;
  node.textContent = CONNECTION_TEXT[status];
}

function fillForm() {
  const [tokenIn, tokenOut] = [$("token-in"), $("token-out")];
  for (const symbol of config.tokens) {
    tokenIn.append(el("option", { value: symbol, text: symbol }));
    tokenOut.append(el("option", { value: symbol, text: symbol }));
  }
  tokenIn.value = "SOL";
  tokenOut.value = "USDC";
  $("venue-options").replaceChildren(
    ...config.venues.map((venue) =>
      el(
        "label",
        { class: "check" },
        el("input", { type: "checkbox", name: "venue", value: venue, checked: true }),
        ` ${venue}`,
      ),
    ),
  );
}

// The amount's token, the prices' pairs, and the limit or sniper fields only for that type.
// A sniper order buys a token the market lists later: picking the type picks the first.
function showUnits(event) {
  const type = $("order-type").value;
  const listed = new Map(config.listed.map((token) => [token.symbol, token.quote]));
  if (type === "sniper" && event?.target === $("order-type") && listed.size) {
    if (!listed.has($("token-out").value)) $("token-out").value = config.listed[0].symbol;
    $("token-in").value = listed.get($("token-out").value); // its pool trades against this
  }
  const [tokenIn, tokenOut] = [$("token-in").value, $("token-out").value];
  $("amount-unit").textContent = `(${tokenIn})`;
  $("limit-unit").textContent = `(${tokenOut} per ${tokenIn})`;
  $("max-price-unit").textContent = `(${tokenIn} per ${tokenOut})`;
  // An OCO pair: the limit fields are its take profit, the stop fields its stop loss.
  $("limit-fields").hidden = type !== "limit" && type !== "oco";
  $("sniper-fields").hidden = type !== "sniper";
  $("stop-fields").hidden = type !== "stop" && type !== "oco";
  $("limit-legend").textContent = type === "oco" ? "Take profit (limit)" : "Limit";
  $("stop-legend").textContent = type === "oco" ? "Stop loss" : "Stop";
  $("schedule-fields").hidden = !PARENTS.has(type);
  $("band-fields").hidden = type !== "dca";
  $("slices-label").textContent = type === "dca" ? "Cycles" : "Slices";
  $("amount-label").textContent = type === "dca" ? "Amount per cycle" : "Amount";
  for (const unit of document.querySelectorAll(".band-unit")) {
    unit.textContent = `(${tokenOut} per ${tokenIn}, oracle)`;
  }
  $("trigger-unit").textContent = `(${tokenOut} per ${tokenIn}, oracle)`;
  $("sniper-note").textContent = listed.size
    ? `Buys a new listing (${[...listed.keys()].join(", ")}) from its first slot, in arrival order, never above the max price.`
    : "No new listing is configured (LISTINGS): the API will refuse a sniper order.";
}

function orderBody() {
  const venues = [...document.querySelectorAll("input[name=venue]:checked")].map((i) => i.value);
  const body = {
    type: $("order-type").value,
    tokenIn: $("token-in").value,
    tokenOut: $("token-out").value,
    amount: $("amount").value.trim(),
    slippageBps: Number($("slippage").value),
  };
  // Both venues is the default; none checked is sent as [] so the API names the mistake.
  if (venues.length !== config.venues.length) body.venues = venues;
  if (body.type === "limit" || body.type === "oco") {
    body.limitPrice = $("limit-price").value.trim();
    const minutes = Number($("expires-in").value);
    if (minutes > 0) body.expiresAt = new Date(Date.now() + minutes * MINUTE_MS).toISOString();
  }
  if (body.type === "sniper") body.maxPrice = $("max-price").value.trim();
  if (body.type === "stop" || body.type === "oco") {
    body.triggerPrice = $("trigger-price").value.trim();
    body.direction = $("direction").value;
  }
  if (body.type === "oco") {  // each leg's own fields, in its own object
    body.takeProfit = { limitPrice: body.limitPrice };
    if (body.expiresAt) body.takeProfit.expiresAt = body.expiresAt;
    body.stopLoss = { triggerPrice: body.triggerPrice, direction: body.direction };
    for (const name of ["limitPrice", "expiresAt", "triggerPrice", "direction"]) delete body[name];
  }
  if (PARENTS.has(body.type)) {
    body[body.type === "dca" ? "cycles" : "slices"] = Number($("slices").value);
    body.intervalSeconds = Number($("interval").value);
  }
  if (body.type === "dca") {
    body.amountPerCycle = body.amount;
    delete body.amount;
    const [min, max] = [$("min-price").value.trim(), $("band-max-price").value.trim()];
    if (min) body.minPrice = min;
    if (max) body.maxPrice = max;
  }
  return body;
}

function clearErrors() {
  for (const field of FIELDS) $(`${field}-error`).textContent = "";
  for (const input of document.querySelectorAll("#order-form [aria-invalid]")) {
    input.removeAttribute("aria-invalid");
  }
  $("order-error").textContent = "";
}

// An API field by the form's name: a DCA has one amount input, one count input and its own
// max price; an OCO leg's field ("takeProfit.limitPrice") is the form's field of that name.
function fieldOf(path) {
  const [name, inner] = path.split(".");
  if ((name === "takeProfit" || name === "stopLoss") && inner) return inner;
  if ($("order-type").value !== "dca") return name;
  return { amountPerCycle: "amount", cycles: "slices", maxPrice: "bandMaxPrice" }[name] ?? name;
}

// The API's 422 details ({field, message}) next to their fields; true when one was placed.
function showFieldErrors(details) {
  let placed = false;
  for (const detail of Array.isArray(details) ? details : []) {
    const field = fieldOf(String(detail.field || ""));
    const target = $(`${field}-error`);
    if (!target) continue;
    target.textContent = detail.message;
    document.querySelector(`#order-form [name=${field}]`)?.setAttribute("aria-invalid", "true");
    placed = true;
  }
  return placed;
}

async function placeOrder(event) {
  event.preventDefault();
  clearErrors();
  const body = orderBody();
  const button = $("place-order");
  button.disabled = true;
  try {
    const answer = await state.api.post("api/orders/execute", body);
    // An OCO answer is its two orders: a limit (take profit) and a stop (stop loss).
    const placed = body.type === "oco"
      ? [[answer.stopLoss, "stop"], [answer.takeProfit, "limit"]]
      : [[answer, body.type]];
    for (const [accepted, type] of placed) {
      state.blotter.add({
        id: accepted.orderId,
        tokenIn: body.tokenIn,
        tokenOut: body.tokenOut,
        amountInUi: body.amount ?? body.amountPerCycle,
        type,
        status: accepted.status,
        createdAt: new Date().toISOString(),
      });
      state.live.follow(accepted.orderId);
    }
    state.stats.refreshSoon();
  } catch (error) {
    if (!showFieldErrors(error.details)) $("order-error").textContent = error.message;
    if (error.status === 422) document.querySelector("#order-form [aria-invalid]")?.focus();
  } finally {
    button.disabled = false;
  }
}

// A parent placed a slice: its child gets a row (under the parent's) and is followed live.
function followChild(event) {
  const parent = state.blotter.order(event.orderId);
  if (!parent || state.blotter.status(event.childOrderId)) return;
  state.blotter.add({
    id: event.childOrderId,
    tokenIn: parent.tokenIn,
    tokenOut: parent.tokenOut,
    amountInUi: null,
    amountIn: event.amountIn,
    type: "market",
    parentOrderId: event.orderId,
    sliceIndex: event.slice,
    status: "pending",
    createdAt: new Date().toISOString(),
  });
  state.live.follow(event.childOrderId);
}

async function signIn(apiKey) {
  const api = new Api(apiKey);
  const page = await api.get("api/orders", { limit: 20 }); // throws on a refused key
  sessionStorage.setItem(KEY_STORAGE, apiKey);
  state.api = api;
  for (const part of [state.drawer, state.quote, state.stats]) part.api = api;
  state.live = new Live(config.wsUrl, apiKey, {
    onStatus: (event) => {
      state.blotter.update(event);
      if (event.childOrderId) followChild(event);
      if (TERMINAL.has(event.status)) state.stats.refreshSoon();
      if (state.drawer.orderId === event.orderId) state.drawer.refresh();
    },
    onState: setConnection,
    onError: (error) => console.warn("websocket:", error.message),
  });
  for (const order of page.orders) {
    state.blotter.add(order, { append: true });
    state.live.follow(order.id);
  }
  state.live.start();
  state.stats.load();
  $("sign-in").hidden = true;
  $("dashboard").hidden = false;
  $("sign-out").hidden = false;
  $("amount").focus();
}

function signOut() {
  sessionStorage.removeItem(KEY_STORAGE);
  state.live?.stop();
  state.stats.stop();
  state.blotter.clear();
  if (state.drawer.nodes.dialog.open) state.drawer.nodes.dialog.close();
  state.api = null;
  state.live = null;
  setConnection("offline");
  $("dashboard").hidden = true;
  $("sign-out").hidden = true;
  $("sign-in").hidden = false;
  $("api-key").value = "";
  $("api-key").focus();
}

async function submitKey(event) {
  event.preventDefault();
  const key = $("api-key").value.trim();
  const error = $("api-key-error");
  error.textContent = "";
  if (!key) {
    error.textContent = "Enter an API key.";
    return;
  }
  try {
    await signIn(key);
  } catch (e) {
    error.textContent = [401, 403].includes(e.status) ? "This API key was refused." : e.message;
  }
}

function start() {
  fillForm();
  state.blotter = new Blotter({
    body: $("blotter"),
    empty: $("blotter-empty"),
    log: $("blotter-log"),
    onOpen: (orderId) => state.drawer.open(orderId),
  });
  state.drawer = new Drawer(null, {
    dialog: $("drawer"),
    title: $("drawer-title"),
    body: $("drawer-body"),
    error: $("drawer-error"),
    cancel: $("cancel-order"),
    close: $("drawer-close"),
  });
  state.quote = new QuotePreview(
    null,
    {
      note: $("quote-note"),
      figures: $("quote-figures"),
      price: $("quote-price"),
      out: $("quote-out"),
      min: $("quote-min"),
      impact: $("quote-impact"),
      oracle: $("quote-oracle"),
      split: $("quote-split"),
    },
    { onFieldErrors: showFieldErrors },
  );
  state.stats = new StatsPanel(null, {
    note: $("stats-note"),
    body: $("stats-body"),
    windowSelect: $("stats-window"),
  });
  $("sign-in-form").addEventListener("submit", submitKey);
  $("sign-out").addEventListener("click", signOut);
  $("order-form").addEventListener("submit", placeOrder);
  $("order-form").addEventListener("input", (event) => {
    showUnits(event);
    if (state.api) state.quote.update(orderBody());
  });
  showUnits();
  const saved = sessionStorage.getItem(KEY_STORAGE);
  if (saved) signIn(saved).catch(() => signOut());
}

start();
