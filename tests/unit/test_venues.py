"""The process's view of the venues: one market, built once, its listed pools shared."""

from chalicelib.backends import venues
from chalicelib.backends.listed_pools import RedisListedPools


def test_the_market_is_one_per_process_and_shares_its_listed_pools():
    market = venues.market()
    assert venues.market() is market
    assert isinstance(market._listed_state, RedisListedPools)
