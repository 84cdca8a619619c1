// One WebSocket for every order the page follows. Each order remembers the last seq it saw:
// after a reconnect it subscribes again from there, and anything at or below it is dropped,
// so no status is shown twice and none is missed.

const TERMINAL = new Set(["confirmed", "failed", "cancelled", "expired"]);
const PING_EVERY_MS = 5 * 60 * 1000; // under API Gateway's 10-minute idle timeout
const MAX_BACKOFF_MS = 5000;

export class Live {
  constructor(wsUrl, apiKey, { onStatus, onState, onError }) {
    const url = new URL(wsUrl);
    url.search = "";
    url.searchParams.set("apiKey", apiKey);
    this.url = url.toString();
    this.handlers = { onStatus, onState, onError };
    this.orders = new Map(); // orderId -> { since, done }
    this.socket = null;
    this.attempt = 0;
    this.stopped = false;
    this.timer = null;
    window.addEventListener("online", () => this.reconnectNow());
  }

  start() {
    this.stopped = false;
    this.connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    clearInterval(this.pinger);
    this.socket?.close(1000, "signed out");
    this.socket = null;
    this.orders.clear();
  }

  follow(orderId, since = 0) {
    if (this.orders.has(orderId)) return;
    this.orders.set(orderId, { since, done: false });
    this.subscribe(orderId);
  }

  lastSeq(orderId) {
    return this.orders.get(orderId)?.since ?? 0;
  }

  subscribe(orderId) {
    const order = this.orders.get(orderId);
    if (!order || order.done || this.socket?.readyState !== WebSocket.OPEN) return;
    this.send({ action: "subscribe", orderId, since: order.since });
  }

  send(message) {
    this.socket.send(JSON.stringify(message));
  }

  connect() {
    const socket = new WebSocket(this.url);
    this.socket = socket;
    this.handlers.onState(this.attempt ? "reconnecting" : "connecting");
    socket.addEventListener("open", () => {
      this.attempt = 0;
      this.handlers.onState("live");
      for (const orderId of this.orders.keys()) this.subscribe(orderId);
      clearInterval(this.pinger);
      this.pinger = setInterval(() => this.send({ action: "ping" }), PING_EVERY_MS);
    });
    socket.addEventListener("message", (event) => this.receive(event.data));
    socket.addEventListener("close", () => {
      if (this.socket !== socket) return; // an older socket, already replaced
      clearInterval(this.pinger);
      this.socket = null;
      if (this.stopped) return;
      this.handlers.onState("reconnecting");
      const delay = Math.min(MAX_BACKOFF_MS, 250 * 2 ** this.attempt);
      this.attempt += 1;
      this.timer = setTimeout(() => this.connect(), delay);
    });
  }

  reconnectNow() {
    if (this.stopped || this.socket) return;
    clearTimeout(this.timer);
    this.connect();
  }

  receive(data) {
    let message;
    try {
      message = JSON.parse(data);
    } catch {
      return;
    }
    if (message.type === "status") {
      const order = this.orders.get(message.orderId);
      if (!order || message.seq <= order.since) return; // not ours, or seen already
      order.since = message.seq;
      order.done = TERMINAL.has(message.status);
      this.handlers.onStatus(message);
    } else if (message.type === "error") {
      this.handlers.onError(message.error);
    }
  }
}
