"""``GET /api/fees``: the priority fees of recent slots, as Solana's
``getRecentPrioritizationFees`` reports them (micro-lamports per compute unit), from the
mock chain's congestion model, with the medians the "auto" fee is estimated from."""

from chalicelib.backends import venues
from chalicelib.dex import FeeLevels
from chalicelib.dex.chain import RECENT_SLOTS
from chalicelib.orders.models import RecentFees, SlotFees


def _slot(levels: FeeLevels) -> SlotFees:
    return SlotFees.model_validate(levels.to_dict())


def recent() -> RecentFees:
    market = venues.market()
    now = market.current_slot()
    chain = market.chain
    return RecentFees(
        contextSlot=now,
        recent=_slot(chain.recent_fees(now)),
        slots=[_slot(chain.fees(slot)) for slot in range(now, now - RECENT_SLOTS, -1)],
    )
