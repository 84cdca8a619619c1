"""The OpenAPI 3.1 description of the REST API, generated from the pydantic models."""

from functools import lru_cache

from pydantic.json_schema import models_json_schema

from chalicelib.dex import VENUES
from chalicelib.orders.changes import AmendRequest, CancelManyAnswer, CancelManyRequest
from chalicelib.orders.lifecycle import OrderStatus
from chalicelib.orders.models import (
    CLIENT_ORDER_ID_PATTERN,
    ErrorBody,
    ExecutionStats,
    Order,
    OrderAccepted,
    OrderDetail,
    OrderPage,
    OrderRequest,
    QuoteResponse,
    RecentFees,
)
from chalicelib.orders.oco import OcoAccepted, OcoRequest
from chalicelib.orders.parents import DcaRequest, TwapRequest
from chalicelib.orders.store import CURSOR_PATTERN

REF = "#/components/schemas/{model}"
VENUE_LIST = {
    "type": "string",
    "pattern": rf"^({'|'.join(VENUES)})(,({'|'.join(VENUES)}))*$",
    "description": "comma-separated, e.g. raydium",
}
EXAMPLES = {
    "market": {"value": {"type": "market", "tokenIn": "SOL", "tokenOut": "USDC",
                         "amount": "1.5", "slippageBps": 100}},
    "twoHops": {
        "summary": "50,000 JUP to BONK through SOL, USDC or USDT, auto slippage, fee cap",
        "value": {"type": "market", "tokenIn": "JUP", "tokenOut": "BONK", "amount": "50000",
                  "maxHops": 2, "slippageBps": "auto", "maxAutoSlippageBps": 200,
                  "priorityFee": {"maxLamports": 100000}},
    },
    "exactOut": {
        "summary": "exactly 100 USDC, paid in SOL",
        "value": {"type": "market", "tokenIn": "SOL", "tokenOut": "USDC", "amount": "100",
                  "swapMode": "ExactOut", "slippageBps": 100},
    },
    "twap": {
        "summary": "10 SOL in 5 slices, one a minute",
        "value": {"type": "twap", "tokenIn": "SOL", "tokenOut": "USDC", "amount": "10",
                  "slices": 5, "intervalSeconds": 60, "slippageBps": 100},
    },
    "dca": {
        "summary": "25 USDC of SOL a day for 10 days, while SOL is 100..200 USDC",
        "value": {"type": "dca", "tokenIn": "USDC", "tokenOut": "SOL", "amountPerCycle": "25",
                  "cycles": 10, "intervalSeconds": 86400, "minPrice": "0.005",
                  "maxPrice": "0.01", "slippageBps": 100},
    },
}  # fmt: skip


def _json(model, description: str) -> dict:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": REF.format(model=model.__name__)}}},
    }


def _body(model) -> dict:
    ref = {"$ref": REF.format(model=model.__name__)}
    return {"required": True, "content": {"application/json": {"schema": ref}}}


def _errors(*statuses: int) -> dict:
    return {str(s): _json(ErrorBody, "error") for s in statuses}


# The authorizer's refusals come from the gateway itself, in its own shape.
GATEWAY_ERROR = {
    "type": "object",
    "properties": {"message": {"type": "string"}, "Message": {"type": "string"}},
    "minProperties": 1,
}
SECURED = {
    "401": {
        "description": "no API key (Authorization: Bearer <key>)",
        "content": {"application/json": {"schema": GATEWAY_ERROR}},
    },
    "403": {
        "description": "an unknown, revoked or malformed API key",
        "content": {"application/json": {"schema": GATEWAY_ERROR}},
    },
    "429": {
        **_json(ErrorBody, "the client's rate limit; Retry-After says when to retry"),
        "headers": {"Retry-After": {"schema": {"type": "integer", "minimum": 1}}},
    },
}
# GET /api/stats?window=: 1-9999 minutes, 1-8784 hours or 1-366 days (at most 366 days).
STATS_WINDOW_PATTERN = (
    r"^([1-9][0-9]{0,3}m"
    r"|([1-9][0-9]{0,2}|[1-7][0-9]{3}|8[0-6][0-9]{2}|87[0-7][0-9]|878[0-4])h"
    r"|([1-9][0-9]?|[12][0-9]{2}|3[0-5][0-9]|36[0-6])d)$"
)
# A token: its symbol (ASCII letters and digits) or its mint (base58).
TOKEN = {"type": "string", "pattern": r"^([A-Za-z0-9]{1,10}|[1-9A-HJ-NP-Za-km-z]{32,44})$"}
POSITIVE_AMOUNT = {
    "type": "string",
    "pattern": r"^(0|[1-9][0-9]*)(\.[0-9]+)?$",
    "not": {"pattern": r"^[0.]*$"},
    "description": "UI units of tokenIn, more than zero",
}


BOOLEAN = {"type": "boolean"}  # true or false in the query
BPS = {"type": "integer", "minimum": 1, "maximum": 5000}


def _query(name: str, schema: dict, required: bool = False) -> dict:
    return {"name": name, "in": "query", "required": required, "schema": schema}


@lru_cache
def document() -> dict:
    models = [
        (OrderRequest, "validation"),
        (OrderAccepted, "serialization"),
        (OrderDetail, "serialization"),
        (Order, "serialization"),
        (OrderPage, "serialization"),
        (ErrorBody, "serialization"),
        (QuoteResponse, "serialization"),
        (ExecutionStats, "serialization"),
        (RecentFees, "serialization"),
        (CancelManyRequest, "validation"),
        (AmendRequest, "validation"),
        (OcoRequest, "validation"),
        (TwapRequest, "validation"),
        (DcaRequest, "validation"),
        (OcoAccepted, "serialization"),
        (CancelManyAnswer, "serialization"),
    ]
    _, schemas = models_json_schema(models, by_alias=True, ref_template=REF)
    order_id = {
        "name": "order_id",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "format": "uuid"},
    }
    doc = {
        "openapi": "3.1.0",
        "info": {"title": "Order execution engine", "version": "1.0.0"},
        "paths": {
            "/api/orders/execute": {
                "post": {
                    "operationId": "executeOrder",
                    "summary": "Submit a market, limit, sniper, stop, oco, twap or dca order",
                    "parameters": [
                        {
                            "name": "Idempotency-Key",
                            "in": "header",
                            "required": False,
                            "schema": {"type": "string", "minLength": 1, "maxLength": 255},
                        }
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "oneOf": [
                                        {"$ref": REF.format(model="OrderRequest")},
                                        {"$ref": REF.format(model="OcoRequest")},
                                        {"$ref": REF.format(model="TwapRequest")},
                                        {"$ref": REF.format(model="DcaRequest")},
                                    ]
                                },
                                "examples": EXAMPLES,
                            }
                        },
                    },
                    "responses": {
                        "202": {
                            "description": "accepted and queued (an oco pair: OcoAccepted)",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "oneOf": [
                                            {"$ref": REF.format(model="OrderAccepted")},
                                            {"$ref": REF.format(model="OcoAccepted")},
                                        ]
                                    }
                                }
                            },
                        },
                        "200": _json(OrderAccepted, "the order this Idempotency-Key made"),
                        **_errors(400, 409, 413, 415, 422, 429, 503),
                    },
                }
            },
            "/api/orders/{order_id}": {
                "get": {
                    "operationId": "getOrder",
                    "parameters": [order_id],
                    "responses": {
                        "200": _json(OrderDetail, "the order and its history"),
                        **_errors(404, 503),
                    },
                },
                "patch": {
                    "operationId": "amendOrder",
                    "summary": "Amend an order waiting in open (409 not_amendable after)",
                    "parameters": [order_id],
                    "requestBody": _body(AmendRequest),
                    "responses": {
                        "200": _json(Order, "amended"),
                        **_errors(400, 404, 409, 413, 415, 422, 503),
                    },
                },
            },
            "/api/orders/cancel": {
                "post": {
                    "operationId": "cancelOrders",
                    "summary": "Cancel many orders: those named (at most 100), or all (filtered)",
                    "requestBody": _body(CancelManyRequest),
                    "responses": {
                        "200": _json(CancelManyAnswer, "each order's outcome"),
                        **_errors(400, 413, 415, 422, 503),
                    },
                }
            },
            "/api/orders/{order_id}/cancel": {
                "post": {
                    "operationId": "cancelOrder",
                    "summary": "Cancel an order not yet submitted (409 not_cancellable after)",
                    "parameters": [order_id],
                    "responses": {
                        "200": _json(Order, "cancelled"),
                        **_errors(404, 409, 503),
                    },
                }
            },
            "/api/orders": {
                "get": {
                    "operationId": "listOrders",
                    "parameters": [
                        {
                            "name": "status",
                            "in": "query",
                            "schema": {
                                "type": "string",
                                "enum": [status.value for status in OrderStatus],
                            },
                        },
                        {
                            "name": "limit",
                            "in": "query",
                            "schema": {"type": "integer", "minimum": 1, "maximum": 100},
                        },
                        {
                            "name": "cursor",
                            "in": "query",
                            "description": "nextCursor of the previous page",
                            "schema": {"type": "string", "pattern": CURSOR_PATTERN},
                        },
                        {
                            "name": "clientOrderId",
                            "in": "query",
                            "schema": {"type": "string", "pattern": CLIENT_ORDER_ID_PATTERN},
                        },
                    ],
                    "responses": {"200": _json(OrderPage, "newest first"), **_errors(422, 503)},
                }
            },
            "/api/quote": {
                "get": {
                    "operationId": "getQuote",
                    "summary": "Quote a market swap; pass its quoteId to execute to bind minOut",
                    "parameters": [
                        _query("tokenIn", TOKEN, required=True),
                        _query("tokenOut", TOKEN, required=True),
                        _query("amount", POSITIVE_AMOUNT, required=True),
                        _query("slippageBps", {"anyOf": [BPS, {"const": "auto"}]}),
                        _query("maxAutoSlippageBps", BPS),
                        _query(
                            "swapMode",
                            {
                                "enum": ["ExactIn", "ExactOut"],
                                "default": "ExactIn",
                                "description": "ExactOut: amount is the tokenOut wanted",
                            },
                        ),  # fmt: skip
                        _query("venues", VENUE_LIST),
                        _query("excludeVenues", VENUE_LIST),
                        _query("onlyDirectRoutes", BOOLEAN),
                        _query("maxHops", {"type": "integer", "enum": [1, 2], "default": 2}),
                        _query("restrictIntermediateTokens", {**BOOLEAN, "default": True}),
                    ],
                    "responses": {
                        "200": _json(QuoteResponse, "the route an order would take now"),
                        **_errors(422, 503),
                    },
                }
            },
            "/api/fees": {
                "get": {
                    "operationId": "getRecentFees",
                    "summary": "Recent priority fees per slot (getRecentPrioritizationFees)",
                    "responses": {
                        "200": _json(RecentFees, "the last 20 slots' fees"),
                        **_errors(422, 503),
                    },
                }
            },
            "/api/stats": {
                "get": {
                    "operationId": "getStats",
                    "summary": "Execution quality over a window",
                    "parameters": [
                        _query(
                            "window",
                            {"type": "string", "pattern": STATS_WINDOW_PATTERN, "default": "24h"},
                        )
                    ],
                    "responses": {
                        "200": _json(ExecutionStats, "orders created in the window"),
                        **_errors(422, 503),
                    },
                }
            },
            "/api/health": {
                "get": {
                    "operationId": "health",
                    "summary": "Liveness: public, touches no dependency",
                    "security": [],
                    "responses": {"200": {"description": "the API answers"}},
                }
            },
            "/api/health/ready": {
                "get": {
                    "operationId": "healthReady",
                    "summary": "Readiness: Postgres, Redis and the queue (needs a key)",
                    "responses": {
                        "200": {"description": "every dependency answers"},
                        "503": {"description": "a dependency is down"},
                    },
                }
            },
        },
        "components": {
            "schemas": schemas["$defs"],
            "securitySchemes": {
                "apiKey": {"type": "http", "scheme": "bearer", "description": "an API key"}
            },
        },
        "security": [{"apiKey": []}],
    }
    for operations in doc["paths"].values():
        for operation in operations.values():
            if operation.get("security") != []:
                operation["responses"].update(SECURED)
    return doc
