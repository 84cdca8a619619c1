"""Bad input over real HTTP: generated from the project's OpenAPI description
(schemathesis: valid and invalid requests for every operation) and from raw bytes
(hypothesis). Never a 500, never a traceback in a body, and no order row written for a
request the API rejected."""

import json

import jsonschema
import psycopg
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    positive_data_acceptance,
    response_schema_conformance,
    status_code_conformance,
)

from chalicelib.http import openapi
from tests.resilience.support import assert_no_internal_errors, leaks_traceback, request

pytestmark = [pytest.mark.integration, pytest.mark.resilience]

EXAMPLES = 60  # per operation and mode; the whole file stays well under a minute


def order_count(database_url: str) -> int:
    """Orders a request made: a TWAP's or DCA's slices are placed by the worker meanwhile."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        return conn.execute("SELECT count(*) FROM orders WHERE parent_order_id IS NULL").fetchone()[
            0
        ]


def is_json(raw: bytes) -> bool:
    try:
        json.loads(raw)
    except ValueError:
        return False
    return True


# The operations of the served document (the same one, generated from the models).
# A negative case needs an input to break: operations without any get positive ones only.
CASES = [
    pytest.param(path, method.upper(), mode, id=f"{method.upper()} {path} {mode.value}")
    for path, methods in openapi.document()["paths"].items()
    for method, spec in methods.items()
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    if mode == GenerationMode.POSITIVE or spec.get("parameters") or spec.get("requestBody")
]


@pytest.fixture(scope="module")
def api_schema(fuzz_runtime):
    rt, _ = fuzz_runtime
    schema = schemathesis.openapi.from_url(f"{rt.http}/api/openapi.json", timeout=30)
    key = (rt.data_dir / "dev-api-key").read_text().strip()
    schema.config.update(base_url=rt.http, headers={"Authorization": f"Bearer {key}"})
    return schema


# Operations whose every valid request the server takes (the others also depend on the
# market, the tokens' decimals or the orders there are, which a schema cannot say).
EXACT = {"/api/orders", "/api/stats", "/api/health", "/api/health/ready"}

# Every answer: no server error, a status the operation documents, the content type and the
# body its schema says.
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.mark.parametrize(("path", "method", "mode"), CASES)
def test_openapi_operations(api_schema, fuzz_runtime, path, method, mode):
    """schemathesis' cases for one operation, valid or invalid against the schema."""
    _, database_url = fuzz_runtime
    operation = api_schema[path][method]
    seen = {"calls": 0}
    if mode == GenerationMode.NEGATIVE:
        extra = [negative_data_rejection]  # what the schema refuses, the server refuses
    elif path in EXACT:
        extra = [positive_data_acceptance]  # and what it accepts, the server accepts
    else:
        extra = []

    @settings(
        max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def check(case):
        before = order_count(database_url)
        response = case.call(timeout=30)
        seen["calls"] += 1
        case.validate_response(response, checks=CHECKS + extra)
        body = response.content or b""
        assert response.status_code < 500, (
            case.as_curl_command(),
            response.status_code,
            body[:500],
        )
        assert not leaks_traceback(body), body[:500]
        if response.status_code >= 400:
            assert order_count(database_url) == before, "a rejected request wrote an order row"
        assert not body or is_json(body), (case.as_curl_command(), body[:300])  # all JSON

    check()
    assert seen["calls"] > 0


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
FIELDS = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(["market", "limit", "", None]) | JSON_VALUES,
        "tokenIn": st.sampled_from(
            ["SOL", "USDC", "BONK", "So11111111111111111111111111111111111111112"]
        )
        | st.text(max_size=70)
        | JSON_VALUES,
        "tokenOut": st.sampled_from(["USDC", "SOL", "JUP", "XYZ"]) | st.text(max_size=70),
        "amount": st.sampled_from(
            [
                "1.5",
                "0",
                "-1",
                "1e400",
                "NaN",
                "Infinity",
                "0.0000000001",
                "99999999999999999999999",
                " 1 ",
                "1_000",
            ]
        )
        | st.integers()
        | st.floats(allow_nan=False)
        | st.decimals(allow_nan=False, places=12).map(str)
        | JSON_VALUES,
        "slippageBps": st.integers(-10, 10_000) | JSON_VALUES,
        "venues": st.lists(st.sampled_from(["raydium", "meteora", "orca", ""]), max_size=3)
        | JSON_VALUES,
    },
)
BODIES = (
    FIELDS.map(lambda d: json.dumps(d).encode())
    | JSON_VALUES.map(lambda v: json.dumps(v).encode())
    | st.binary(max_size=200)
    | st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass"))
)
# What HTTP allows in a header value (RFC 9110 field-value: visible ASCII, space, tab,
# obs-text); the HTTP server itself answers 400 to anything else, before the app.
HEADER_VALUES = st.text(
    st.characters(codec="latin-1", exclude_categories=["Cc"]) | st.sampled_from(" \t"),
    max_size=300,
)
CONTENT_TYPES = st.sampled_from(
    ["application/json", "application/json; charset=utf-8", "text/plain", "", "application/xml"]
)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=BODIES, content_type=CONTENT_TYPES, key=st.none() | HEADER_VALUES)
def test_raw_order_bodies(fuzz_runtime, body, content_type, key):
    rt, database_url = fuzz_runtime
    headers = {"Content-Type": content_type} if content_type else {}
    if key is not None:
        headers["Idempotency-Key"] = key
    before = order_count(database_url)
    status, _, raw, _ = request("POST", f"{rt.http}/api/orders/execute", body, headers)
    assert status != 0, "no answer"
    assert status < 500, (status, raw[:500])
    assert not leaks_traceback(raw), raw[:500]
    assert is_json(raw), (status, headers, raw[:300])
    if status >= 400:
        assert order_count(database_url) == before, "a rejected order wrote a row"


def test_runtime_logged_no_internal_error(fuzz_runtime):
    assert_no_internal_errors(fuzz_runtime[0])


SECURED_OPERATIONS = [
    pytest.param(path, method.upper(), id=f"{method.upper()} {path}")
    for path, methods in openapi.document()["paths"].items()
    for method, spec in methods.items()
    if spec.get("security") != []
]


@pytest.mark.parametrize(("path", "method"), SECURED_OPERATIONS)
@pytest.mark.parametrize(
    ("authorization", "status"), [(None, 401), ("Bearer not-a-key", 403)], ids=["none", "bad"]
)
def test_a_secured_operation_answers_its_documented_refusal(
    fuzz_runtime, path, method, authorization, status
):
    rt, _ = fuzz_runtime
    spec = openapi.document()["paths"][path][method.lower()]
    url = rt.http + path.replace("{order_id}", "0b3bb1c6-8f3e-4a59-9d0e-5c0a8a3b1f27")
    body = b"{}" if method in ("POST", "PATCH") else None
    got, _, raw, _ = request(method, url, body, {"Authorization": authorization})
    assert got == status, (got, raw[:200])
    documented = spec["responses"][str(status)]["content"]["application/json"]["schema"]
    jsonschema.validate(json.loads(raw), documented)
