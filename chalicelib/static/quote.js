// The live quote under the order form (GET api/quote), when the server has that route.

import { number, percent, splitBar } from "./format.js";

const DEBOUNCE_MS = 300;

// The venues of a quote and their shares: Jupiter-like `routePlan` ({percent, swapInfo}) or
// the engine's route `legs` ({venue, inAmount}).
export function quoteLegs(quote) {
  const plan = quote.routePlan || quote.legs || [];
  return plan.map((step) => ({
    venue: step.venue || step.swapInfo?.label || step.label || "venue",
    share: step.percent ?? step.swapInfo?.inAmount ?? step.inAmount ?? 0,
  }));
}

export class QuotePreview {
  constructor(api, nodes, { onFieldErrors }) {
    this.api = api;
    this.nodes = nodes;
    this.onFieldErrors = onFieldErrors;
    this.available = true;
    this.asked = 0;
    this.timer = null;
  }

  // `order` is the form's current body; asks after the user pauses typing.
  update(order) {
    clearTimeout(this.timer);
    if (!this.available) return;
    if (!order.amount) {
      this.note("Enter an amount to see a quote.");
      return;
    }
    this.timer = setTimeout(() => this.ask(order), DEBOUNCE_MS);
  }

  async ask(order) {
    const asked = ++this.asked;
    const params = {
      tokenIn: order.tokenIn,
      tokenOut: order.tokenOut,
      amount: order.amount,
      slippageBps: order.slippageBps,
    };
    if (order.venues) params.venues = order.venues.join(",");
    try {
      const quote = await this.api.get("api/quote", params);
      if (asked === this.asked) this.show(quote, order);
    } catch (error) {
      if (asked !== this.asked) return;
      if (error.routeMissing) {
        this.available = false;
        this.note("Quote preview is not available on this server.");
      } else {
        this.note(`No quote: ${error.message}`);
        if (error.details) this.onFieldErrors(error.details);
      }
    }
  }

  note(text) {
    const { note, figures, split } = this.nodes;
    note.textContent = text;
    note.hidden = false;
    figures.hidden = true;
    split.hidden = true;
  }

  show(quote, order) {
    const { note, figures, price, out, min, impact, split } = this.nodes;
    const inUi = quote.inAmountUi ?? order.amount;
    const outUi = quote.outAmountUi ?? quote.outAmount;
    const unitPrice = quote.price ?? Number(outUi) / Number(inUi);
    price.textContent = `1 ${order.tokenIn} = ${number(unitPrice)} ${order.tokenOut}`;
    out.textContent = `${number(outUi)} ${order.tokenOut}`;
    min.textContent = `${number(quote.minOutUi ?? quote.minOut)} ${order.tokenOut}`;
    impact.textContent = percent(quote.priceImpactPct);
    note.hidden = true;
    figures.hidden = false;
    splitBar(split, quoteLegs(quote));
  }
}
