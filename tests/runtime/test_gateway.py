"""The runtime's AWS stand-ins, driven through a tiny app (``echo_app.py``) over real sockets:
REST through Chalice's local gateway, the WebSocket API's events, the management API, the
SQS event source mapping, and a clean SIGTERM."""

import asyncio
import json
import os
import signal
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote, urlsplit

import boto3
import pytest
import websockets

from harness.http import request, wait_for
from harness.runtime import Runtime
from localaws.poller import failed_ids

pytestmark = pytest.mark.integration

SLOW_CLIENT_TIMEOUT_S = 1.5


@pytest.fixture(scope="module")
def echo(runtime_env, tmp_path_factory):
    folder = tmp_path_factory.mktemp("data")
    runtime = Runtime(
        runtime_env(
            VISIBILITY_TIMEOUT_S="1",
            MAX_RECEIVE_COUNT="2",
            LOCAL_HEADER_TIMEOUT_S=str(SLOW_CLIENT_TIMEOUT_S),
            LOCAL_BODY_TIMEOUT_S=str(SLOW_CLIENT_TIMEOUT_S),
        ),
        extra_args=("--app", "tests.runtime.echo_app"),
        health_path=None,  # the echo app has no health route: its ready line is enough
        data_dir=folder,
        log_path=folder / "log",
    )
    yield runtime.start()
    assert runtime.stop() == 0, runtime.log()
    assert "stopped" in runtime.log().splitlines()[-1]


def seen(redis_client, kind: str) -> list[dict]:
    return [json.loads(x) for x in redis_client.lrange(f"echo:{kind}", 0, -1)]


def connection_ids(redis_client, kind: str) -> set[str]:
    return {e["requestContext"]["connectionId"] for e in seen(redis_client, kind)}


# -- REST ---------------------------------------------------------------------------------


def test_rest_requests_run_side_by_side_each_with_its_own_request(echo):
    def get(i):
        status, _, body = request("GET", f"{echo.http}/api/echo/n{i}?delay=0.5&i={i}")
        return status, json.loads(body)

    started = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(get, range(8)))
    assert time.monotonic() - started < 2.5  # 8 x 0.5 s handlers, not one after the other
    for i, (status, body) in enumerate(answers):
        assert status == 200
        assert body["name"] == f"n{i}" and body["query"]["i"] == str(i)


def test_rest_body_and_unknown_route(echo):
    status, headers, body = request("POST", f"{echo.http}/api/echo/x", {"a": 1})
    assert status == 200 and json.loads(json.loads(body)["body"]) == {"a": 1}
    status, headers, body = request(
        "GET", f"{echo.http}/api/nothing-here", headers={"Authorization": None}
    )
    assert status == 403  # as API Gateway answers an unknown route
    assert json.loads(body) == {"message": "Missing Authentication Token"}


def test_path_with_an_encoded_line_break_reaches_the_app(echo):
    status, _, body = request("GET", f"{echo.http}/api/echo/a%0Ab")
    assert status == 200, body  # not aiohttp's plain-text 404: the app answers
    assert json.loads(body)["name"].startswith("a")


# -- WebSocket API ------------------------------------------------------------------------


def test_websocket_events_have_api_gateway_shapes(echo, runtime_redis):
    async def talk():
        async with websockets.connect(f"{echo.ws_base}/ws?a=1&a=2&b=x") as socket:
            await socket.send("hello")
            return json.loads(await socket.recv())

    answer = asyncio.run(talk())
    assert answer["echo"] == "hello"
    message = answer["event"]
    context = message["requestContext"]
    connection_id = context["connectionId"]
    assert len(connection_id) == 16 and connection_id.endswith("=")
    assert context["routeKey"] == "$default" and context["eventType"] == "MESSAGE"
    assert context["stage"] == "api" and context["apiId"] and context["messageId"]
    assert context["domainName"].endswith(echo.http.rsplit(":", 1)[1])
    assert message["body"] == "hello" and message["isBase64Encoded"] is False

    connect = next(
        e
        for e in seen(runtime_redis, "connect")
        if e["requestContext"]["connectionId"] == connection_id
    )
    assert connect["requestContext"]["routeKey"] == "$connect"
    assert connect["requestContext"]["eventType"] == "CONNECT"
    assert connect["queryStringParameters"] == {"a": "2", "b": "x"}
    assert connect["multiValueQueryStringParameters"] == {"a": ["1", "2"], "b": ["x"]}
    assert connect["headers"]["Sec-WebSocket-Version"] == "13"
    # Posting to a connection whose $connect has not returned fails, as in API Gateway.
    assert "gone" in [json.loads(x) for x in runtime_redis.lrange("echo:early", 0, -1)]

    wait_for(
        lambda: connection_id in connection_ids(runtime_redis, "disconnect"), what="$disconnect"
    )
    disconnect = next(
        e
        for e in seen(runtime_redis, "disconnect")
        if e["requestContext"]["connectionId"] == connection_id
    )
    assert disconnect["requestContext"]["eventType"] == "DISCONNECT"
    assert disconnect["requestContext"]["disconnectStatusCode"] == 1000


def test_an_invalid_handshake_is_a_json_400_without_connect(echo, runtime_redis):
    before = len(seen(runtime_redis, "connect"))
    # An upgrade request without Sec-WebSocket-Key/Version.
    status, headers, body = request("GET", f"{echo.http}/ws", headers={"Upgrade": "websocket"})
    assert status == 400 and json.loads(body) == {"message": "Bad Request"}
    assert len(seen(runtime_redis, "connect")) == before


@pytest.mark.parametrize(
    "line",
    [b"Bad Header With Spaces: <script>x</script>", b"X-Fine: a\x01b<script>x</script>"],
)
def test_an_unparseable_header_is_a_json_400_that_echoes_nothing(echo, line):
    host, port = urlsplit(echo.http).hostname, urlsplit(echo.http).port
    with socket.create_connection((host, port), timeout=10) as raw:
        raw.sendall(b"GET /api/echo/x HTTP/1.1\r\nHost: x\r\n" + line + b"\r\n\r\n")
        answer = b""
        while chunk := raw.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.split(b"\r\n")[0].split(b" ")[1] == b"400", answer
    assert b"content-type: application/json" in head.lower()
    assert json.loads(body) == {"message": "Bad Request"}
    assert b"script" not in answer


def raw_connection(echo) -> socket.socket:
    return socket.create_connection(
        (urlsplit(echo.http).hostname, urlsplit(echo.http).port), timeout=10
    )


def read_answer(raw: socket.socket) -> tuple[bytes, dict]:
    """The status and JSON body of an answer that ends with the connection's close."""
    answer = b""
    while chunk := raw.recv(65536):
        answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    return head.split(b"\r\n")[0].split(b" ")[1], json.loads(body)


def test_a_client_sending_its_headers_slowly_gets_408_and_is_closed(echo):
    started = time.monotonic()
    with raw_connection(echo) as raw:
        try:
            for byte in b"GET /api/echo/slow HTTP/1.1\r\nHost: x\r\nX-Drip: " + b"y" * 100:
                raw.sendall(bytes([byte]))
                time.sleep(0.05)
        except OSError:  # closed under us: what the test wants
            pass
        status, body = read_answer(raw)  # ends with the close
    assert status == b"408" and body == {"message": "Request Timeout"}
    assert time.monotonic() - started < SLOW_CLIENT_TIMEOUT_S + 2


def test_a_body_slower_than_declared_gets_408_and_is_closed(echo):
    started = time.monotonic()
    with raw_connection(echo) as raw:
        raw.sendall(
            b"POST /api/echo/x HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b'Content-Length: 100\r\n\r\n{"a": '
        )
        status, body = read_answer(raw)
    assert status == b"408" and body == {"message": "Request Timeout"}
    assert time.monotonic() - started < SLOW_CLIENT_TIMEOUT_S + 2


def test_a_declared_body_beyond_the_apps_limit_is_refused_before_it_is_sent(echo):
    with raw_connection(echo) as raw:  # headers only: the answer does not wait for the body
        raw.sendall(
            b"POST /api/echo/x HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {10 * 1024 * 1024}\r\n\r\n".encode()
        )
        status, body = read_answer(raw)
    assert status == b"413" and body["error"]["code"] == "body_too_large"
    assert "16384" in body["error"]["message"]


def test_a_chunked_body_is_cut_off_as_soon_as_it_passes_the_limit(echo):
    with raw_connection(echo) as raw:
        raw.sendall(
            b"POST /api/echo/x HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        chunk = b"x" * 4096
        for _ in range(5):  # 20 KiB, never the last chunk: the answer comes all the same
            raw.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        status, body = read_answer(raw)
    assert status == b"413" and body["error"]["code"] == "body_too_large"


def test_a_body_within_the_limit_still_reaches_the_app(echo):
    status, _, body = request("POST", f"{echo.http}/api/echo/x", {"a": "x" * 15000})
    assert status == 200 and len(json.loads(json.loads(body)["body"])["a"]) == 15000


def test_connect_handler_can_reject_the_handshake(echo):
    async def connect():
        async with websockets.connect(f"{echo.ws_base}/api/orders/execute?reject=1"):
            pass

    with pytest.raises(websockets.InvalidStatus) as rejected:
        asyncio.run(connect())
    assert rejected.value.response.status_code == 403
    assert json.loads(rejected.value.response.body) == {"error": "rejected"}


def test_handler_error_and_binary_frame(echo):
    async def talk():
        async with websockets.connect(f"{echo.ws_base}/ws") as socket:
            await socket.send("raise")
            error = json.loads(await socket.recv())
            await socket.send(b"\x00\x01")
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await socket.recv()
            return error, closed.value.rcvd.code

    error, code = asyncio.run(talk())
    assert error["message"] == "Internal server error" and error["connectionId"]
    assert code == 1003  # API Gateway takes text frames only


# -- management API -----------------------------------------------------------------------


def engine_only(echo) -> dict:
    """The header of the engine's own management calls."""
    return {"X-Management-Secret": echo.management_secret}


def test_management_api_unknown_connection_is_gone(echo):
    for method in ("POST", "GET", "DELETE"):
        status, headers, _ = request(
            method,
            f"{echo.http}/@connections/{quote('nope=', safe='')}",
            b"x" if method == "POST" else None,
            engine_only(echo),
        )
        assert status == 410
        assert headers["x-amzn-ErrorType"] == "GoneException"


def test_management_api_post_get_delete(echo, runtime_redis):
    async def scenario():
        async with websockets.connect(f"{echo.ws_base}/ws") as socket:
            await socket.send("hello")
            connection_id = json.loads(await socket.recv())["event"]["requestContext"][
                "connectionId"
            ]
            encoded = quote(connection_id, safe="")
            assert encoded.endswith("%3D")

            def call(method, path, body=None, headers=None):
                return request(method, f"{echo.http}{path}", body, headers or engine_only(echo))

            loop = asyncio.get_running_loop()
            # Forged: no secret, or a wrong one. Nothing reaches the socket, nothing closes.
            for forged in ({}, {"X-Management-Secret": "guess"}):
                for method, body in (("POST", b"forged"), ("GET", None), ("DELETE", None)):
                    status, headers, _ = await loop.run_in_executor(
                        None, call, method, f"/@connections/{encoded}", body, forged or {"X": "y"}
                    )
                    assert status == 403 and headers["x-amzn-ErrorType"] == "ForbiddenException"

            status, _, _ = await loop.run_in_executor(
                None, call, "POST", f"/@connections/{encoded}", b'{"n": 1}'
            )
            assert status == 200
            assert await socket.recv() == '{"n": 1}'  # the first frame: no forged one came
            # The endpoint AWS documents carries the stage: /{stage}/@connections/{id}.
            status, _, _ = await loop.run_in_executor(
                None, call, "POST", f"/api/@connections/{encoded}", b"two"
            )
            assert status == 200 and await socket.recv() == "two"
            status, _, body = await loop.run_in_executor(
                None, call, "GET", f"/@connections/{encoded}"
            )
            info = json.loads(body)
            assert status == 200 and info["identity"]["sourceIp"] == "127.0.0.1"
            assert info["connectedAt"].endswith("Z") and "lastActiveAt" in info
            # The app's own boto3 client (GetConnection through the management session).
            await socket.send("info")
            assert json.loads(await socket.recv())["Identity"]["SourceIp"] == "127.0.0.1"
            status, _, _ = await loop.run_in_executor(
                None, call, "DELETE", f"/@connections/{encoded}"
            )
            assert status == 204
            with pytest.raises(websockets.ConnectionClosed):
                await socket.recv()
            status, headers, _ = await loop.run_in_executor(
                None, call, "POST", f"/@connections/{encoded}", b"late"
            )
            assert status == 410 and headers["x-amzn-ErrorType"] == "GoneException"
            return connection_id

    connection_id = asyncio.run(scenario())
    wait_for(
        lambda: connection_id in connection_ids(runtime_redis, "disconnect"),
        what="$disconnect after DELETE",
    )


# -- SQS event source mapping -------------------------------------------------------------


def test_sqs_records_batch_failures_and_dead_letters(echo, runtime_redis):
    sqs = boto3.client(
        "sqs",
        endpoint_url=echo.urls["sqs"],
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    queue_url = sqs.get_queue_url(QueueName="order-engine-orders")["QueueUrl"]
    for body in ("ok", "fail-once", "raise-once", "fail"):
        sqs.send_message(
            QueueUrl=queue_url,
            MessageBody=body,
            MessageAttributes={"origin": {"DataType": "String", "StringValue": "test"}},
        )

    def deliveries(body):
        return [r for r in seen(runtime_redis, "sqs") if r["body"] == body]

    wait_for(
        lambda: (
            len(deliveries("fail-once")) >= 2
            and len(deliveries("raise-once")) >= 2
            and seen(runtime_redis, "dlq")
        ),
        timeout_s=20,
        what="redeliveries and the DLQ",
    )

    record = deliveries("ok")[0]
    assert set(record) >= {
        "messageId",
        "receiptHandle",
        "body",
        "attributes",
        "messageAttributes",
        "md5OfBody",
        "eventSource",
        "eventSourceARN",
        "awsRegion",
    }
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"].endswith(":order-engine-orders")
    assert record["messageAttributes"]["origin"]["stringValue"] == "test"
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    # A reported failure and a raised batch come back after the visibility timeout...
    for body in ("fail-once", "raise-once"):
        counts = [r["attributes"]["ApproximateReceiveCount"] for r in deliveries(body)]
        assert counts[:2] == ["1", "2"]
    # ... and what always fails ends in the DLQ (maxReceiveCount 2), whose handler runs.
    assert [r["body"] for r in seen(runtime_redis, "dlq")] == ["fail"]

    # Everything else was deleted: the queue drains.
    def empty():
        attrs = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])["Attributes"]
        return (
            attrs["ApproximateNumberOfMessages"]
            == attrs["ApproximateNumberOfMessagesNotVisible"]
            == "0"
        )

    wait_for(empty, timeout_s=10, what="the queue to drain")


def test_batch_item_failures_are_read_as_lambda_does():
    ids = ["a", "b", "c"]
    assert failed_ids(None, ids) == set()
    assert failed_ids({"batchItemFailures": []}, ids) == set()
    assert failed_ids({"batchItemFailures": [{"itemIdentifier": "b"}]}, ids) == {"b"}
    # An identifier not in the batch, or none at all, fails the whole batch.
    assert failed_ids({"batchItemFailures": [{"itemIdentifier": "zz"}]}, ids) == set(ids)
    assert failed_ids({"batchItemFailures": [{"itemIdentifier": ""}]}, ids) == set(ids)
    assert failed_ids({"batchItemFailures": "b"}, ids) == set(ids)


def test_sigterm_to_the_process_group_drains_the_workers(runtime_env, tmp_path):
    """As ``timeout`` or systemd (KillMode=control-group) stop ``make run``: every process
    of the group gets the signal; the workers leave it to the gateway, which drains
    them, so none dies mid-invocation or is replaced while stopping."""
    runtime = Runtime(
        runtime_env(),
        extra_args=("--app", "tests.runtime.echo_app", "--workers", "1"),
        health_path=None,
        data_dir=tmp_path,
        log_path=tmp_path / "log",
    ).start()
    try:
        os.killpg(runtime.process.pid, signal.SIGTERM)  # its own session: the group is its pid
        assert runtime.process.wait(40) == 0, runtime.log()
    finally:
        runtime.kill()
    log = runtime.log()
    assert "died" not in log, log
    assert "stopped" in log.splitlines()[-1]
