"""Order bodies and the statuses an order goes through, for clients of a running engine."""

from chalicelib.orders import lifecycle

# A market order's happy path, in lifecycle order (``failed`` ends an order instead of
# ``confirmed``; a limit order also waits in ``open`` after ``pending``).
FLOW = [s.value for s in lifecycle.MARKET_PATH]
TERMINAL = frozenset(s.value for s in lifecycle.TERMINAL)
PAIRS = [("SOL", "USDC", "1.5"), ("USDC", "SOL", "250"), ("SOL", "USDT", "0.75"),
         ("JUP", "USDC", "400"), ("BONK", "SOL", "25000000")]  # fmt: skip


def order_body(i: int = 0) -> dict:
    """The i-th market order, across pairs."""
    token_in, token_out, amount = PAIRS[i % len(PAIRS)]
    return {"type": "market", "tokenIn": token_in, "tokenOut": token_out, "amount": amount,
            "slippageBps": 100}  # fmt: skip
