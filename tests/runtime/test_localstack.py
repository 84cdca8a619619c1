"""``make run SQS=localstack``: the runtime starts LocalStack in host mode (no Docker) from
``.venv-localstack``, creates its queues there, runs orders through it, and leaves no
LocalStack behind, even when it is killed outright.

Skipped where LocalStack is not installed; ``make test-localstack`` installs it and runs this,
and the other runtime tests against it too (``LOCALAWS_SQS=localstack``)."""

import boto3
import psutil
import pytest

from harness.http import get_order, submit, wait_for
from harness.orders import TERMINAL, order_body
from harness.runtime import ZERO_LATENCY, Runtime
from localaws.servers import LocalStackServer, localstack_command

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        localstack_command() is None,
        reason="LocalStack is not installed (`make localstack`; `make test-localstack` runs this)",
    ),
]


def _localstacks(runtime: Runtime) -> list[psutil.Process]:
    """The runtime's descendants that run LocalStack (its tether included)."""
    return [
        p
        for p in psutil.Process(runtime.process.pid).children(recursive=True)
        if any("localstack" in part for part in p.cmdline())
    ]


def test_the_runtime_runs_orders_through_a_localstack_of_its_own(runtime_env, tmp_path):
    env = runtime_env(**ZERO_LATENCY)
    runtime = Runtime(
        env, extra_args=("--sqs", "localstack"), data_dir=tmp_path, log_path=tmp_path / "log"
    )
    runtime.start(timeout_s=120)
    try:
        assert "LocalStack (host mode) ready in" in runtime.log()
        localstacks = _localstacks(runtime)
        assert localstacks, "no LocalStack process under the runtime"
        sqs = boto3.client(
            "sqs", endpoint_url=runtime.urls["sqs"], region_name="us-east-1",
            aws_access_key_id="local", aws_secret_access_key="local",
        )  # fmt: skip
        queues = sqs.list_queues()["QueueUrls"]
        assert any(url.endswith("/order-engine-orders") for url in queues), queues
        assert any(url.endswith("/order-engine-orders-dlq") for url in queues), queues

        order_id = submit(runtime.http, order_body())["orderId"]

        wait_for(
            lambda: get_order(runtime.http, order_id)["order"]["status"] in TERMINAL,
            timeout_s=30,
            what="the order to finish",
        )
        assert get_order(runtime.http, order_id)["order"]["status"] == "confirmed"
    finally:
        runtime.kill()  # SIGKILL: no shutdown of its own

    gone, alive = psutil.wait_procs(localstacks, timeout=20)
    assert not alive, f"LocalStack outlived a killed runtime: {alive}"


@pytest.fixture(scope="module")
def users_localstack():
    """A LocalStack started apart from the runtime, as a user would (Docker or host mode)."""
    server = LocalStackServer().start()
    yield server
    server.close()


@pytest.mark.parametrize(
    ("name", "value"), [("AWS_ENDPOINT_URL", "{url}"), ("LOCALSTACK_HOST", "127.0.0.1:{port}")]
)
def test_a_localstack_the_user_started_is_used_as_it_is(
    runtime_env, tmp_path, users_localstack, name, value
):
    """``AWS_ENDPOINT_URL``, or ``LOCALSTACK_HOST`` through localstack-client: the runtime
    creates its queues there and starts no SQS server of its own."""
    env = runtime_env(**ZERO_LATENCY)
    env[name] = value.format(url=users_localstack.url, port=users_localstack.port)
    runtime = Runtime(env, data_dir=tmp_path, log_path=tmp_path / "log")
    with runtime:
        assert runtime.urls["sqs"] == users_localstack.url
        assert "LocalStack (host mode) ready" not in runtime.log()
        assert not _localstacks(runtime)
        order_id = submit(runtime.http, order_body())["orderId"]
        wait_for(
            lambda: get_order(runtime.http, order_id)["order"]["status"] in TERMINAL,
            timeout_s=30,
            what="the order to finish",
        )
        assert get_order(runtime.http, order_id)["order"]["status"] == "confirmed"
        assert runtime.stop() == 0, runtime.tail()
