// The live quote under the order form (GET api/quote), when the server has that route.

import { number, percent, splitBar } from "./format.js";

const DEBOUNCE_MS = 300;

// The venues of a quote's first hop (QuoteResponse.routePlan: {hop, venue, percent}) and
// their shares of the input.
export function quoteLegs(quote) {
  return (quote.routePlan || [])
    .filter((leg) => (leg.hop ?? 0) === 0)
    .map((leg) => ({ venue: leg.venue, share: Number(leg.percent) }));
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
    this.asked++; // an answer still on its way is for an older form: it is dropped
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

  // Amounts are shown as the API's UI strings (exact), the price as a rounded ratio.
  show(quote, order) {
    const { note, figures, price, out, min, impact, oracle, split } = this.nodes;
    const unitPrice = Number(quote.outAmountUi) / Number(quote.inAmountUi);
    price.textContent = `1 ${order.tokenIn} = ${number(unitPrice)} ${order.tokenOut}`;
    out.textContent = `${quote.outAmountUi} ${order.tokenOut}`;
    min.textContent = `${quote.minOutUi} ${order.tokenOut}`;
    impact.textContent = percent(quote.priceImpactPct);
    oracle.textContent = quote.oraclePrice ? number(quote.oraclePrice) : "–";
    note.hidden = true;
    figures.hidden = false;
    splitBar(split, quoteLegs(quote));
  }
}
