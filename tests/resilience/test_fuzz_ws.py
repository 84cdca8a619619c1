"""Bad input over a real WebSocket: hypothesis-generated messages on one socket, and
generated ``$connect`` query strings.

Every text message gets exactly one direct answer (``error``, ``pong``, ``subscribed`` or
``unsubscribed``; ``status`` events of a subscription may come besides), never API
Gateway's "Internal server error" (a handler that raised), and the server never closes
the socket. A handshake is accepted or refused with a 4xx JSON error, never a 5xx.
(Binary frames are out of scope: API Gateway accepts text frames only, and the local
gateway closes with 1003 as it does.)
"""

import json
import urllib.parse
import uuid

import pytest
import websockets.sync.client as ws_client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed, InvalidStatus

from harness.http import auth_headers
from harness.orders import TERMINAL, order_body
from tests.resilience.support import assert_no_internal_errors, leaks_traceback, request

pytestmark = [pytest.mark.integration, pytest.mark.resilience]

DIRECT = {"error", "pong", "subscribed", "unsubscribed"}
ANSWER_WITHIN_S = 20


@pytest.fixture(scope="module")
def known_order(fuzz_runtime) -> str:
    rt, _ = fuzz_runtime
    status, _, raw, _ = request("POST", f"{rt.http}/api/orders/execute", order_body(0))
    assert status == 202, raw
    return json.loads(raw)["orderId"]


@pytest.fixture(scope="module")
def socket(fuzz_runtime):
    rt, _ = fuzz_runtime
    with ws_client.connect(
        rt.ws, additional_headers=auth_headers(rt.ws), open_timeout=ANSWER_WITHIN_S, max_size=2**20
    ) as s:
        yield s


def direct_answer(socket) -> dict:
    """The next frame that answers a message (status events are skipped)."""
    for _ in range(50):
        try:
            frame = socket.recv(timeout=ANSWER_WITHIN_S)
        except TimeoutError:
            raise AssertionError("no answer within the time limit") from None
        except ConnectionClosed as e:
            raise AssertionError(f"the server closed the socket: {e!r}") from None
        assert isinstance(frame, str), frame
        assert not leaks_traceback(frame), frame
        answer = json.loads(frame)
        assert answer.get("message") != "Internal server error", answer
        assert answer.get("type") in DIRECT | {"status"}, answer
        if answer["type"] != "status":
            return answer
    raise AssertionError("only status events, no answer")


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=10,
)


def messages(order_id: str):
    order_ids = (
        st.just(order_id)
        | st.just(order_id.upper())
        | st.uuids().map(str)
        | st.text(max_size=80)
        | JSON_VALUES
    )
    actions = st.sampled_from(["subscribe", "unsubscribe", "ping", "", "SUBSCRIBE", "$connect"])
    shaped = st.fixed_dictionaries(
        {},
        optional={
            "action": actions | JSON_VALUES,
            "orderId": order_ids,
            "since": st.integers(-5, 2**70) | st.text(max_size=10) | JSON_VALUES,
            "extra": JSON_VALUES,
        },
    ).map(json.dumps)
    return shaped | JSON_VALUES.map(json.dumps) | st.text(max_size=300)


def test_generated_messages_get_answers_and_keep_the_socket(socket, known_order):
    @settings(
        max_examples=250, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    @given(message=messages(known_order))
    def check(message):
        socket.send(message)
        answer = direct_answer(socket)
        kinds[answer["type"]] = kinds.get(answer["type"], 0) + 1
        if answer["type"] == "error":
            assert set(answer["error"]) >= {"code", "message"}, answer

    kinds: dict[str, int] = {}
    check()
    assert kinds.get("error"), kinds
    # The same socket still works for well-formed messages.
    socket.send(json.dumps({"action": "ping"}))
    assert direct_answer(socket) == {"type": "pong"}
    socket.send(json.dumps({"action": "subscribe", "orderId": known_order, "since": 0}))
    assert direct_answer(socket)["type"] == "subscribed"
    socket.send(json.dumps({"action": "unsubscribe", "orderId": known_order}))
    assert direct_answer(socket)["type"] == "unsubscribed"


@settings(max_examples=60, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(
    order_id=st.none() | st.uuids().map(str) | st.text(max_size=60),
    since=st.none() | st.integers(-3, 2**64).map(str) | st.text(max_size=12),
)
def test_generated_connect_queries_are_accepted_or_refused_with_4xx(
    fuzz_runtime, known_order, order_id, since
):
    rt, _ = fuzz_runtime
    params = {}
    if order_id is not None:
        params["orderId"] = order_id
    if since is not None:
        params["since"] = since
    url = f"{rt.ws}?{urllib.parse.urlencode(params)}" if params else rt.ws
    try:
        with ws_client.connect(
            url, additional_headers=auth_headers(url), open_timeout=ANSWER_WITHIN_S
        ) as s:
            s.send(json.dumps({"action": "ping"}))
            assert direct_answer(s) == {"type": "pong"}
    except InvalidStatus as e:
        status = e.response.status_code
        body = bytes(e.response.body or b"")
        assert 400 <= status < 500, (status, body[:300])
        assert not leaks_traceback(body)
        assert "error" in json.loads(body), body


def test_known_order_subscription_still_streams(fuzz_runtime, known_order):
    """After the fuzzing, a normal client still gets the order's whole history."""
    rt, _ = fuzz_runtime
    with ws_client.connect(
        f"{rt.ws}?orderId={known_order}",
        additional_headers=auth_headers(rt.ws),
        open_timeout=ANSWER_WITHIN_S,
    ) as s:
        seen = []
        while not seen or seen[-1] not in TERMINAL:
            event = json.loads(s.recv(timeout=ANSWER_WITHIN_S))
            if event.get("type") == "status":
                seen.append(event["status"])
    assert seen[0] == "pending" and len(seen) == len(set(seen)), seen
    assert uuid.UUID(known_order)


def test_runtime_logged_no_internal_error(fuzz_runtime):
    assert_no_internal_errors(fuzz_runtime[0])
