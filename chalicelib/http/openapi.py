"""The OpenAPI 3.1 description of the REST API, generated from the pydantic models."""

from functools import lru_cache

from pydantic.json_schema import models_json_schema

from chalicelib.orders.changes import AmendRequest, CancelManyAnswer, CancelManyRequest
from chalicelib.orders.lifecycle import OrderStatus
from chalicelib.orders.models import (
    ErrorBody,
    ExecutionStats,
    Order,
    OrderAccepted,
    OrderDetail,
    OrderPage,
    OrderRequest,
    QuoteResponse,
)
from chalicelib.orders.oco import OcoAccepted, OcoRequest
from chalicelib.orders.parents import DcaRequest, TwapRequest

REF = "#/components/schemas/{model}"
EXAMPLES = {
    "market": {"value": {"type": "market", "tokenIn": "SOL", "tokenOut": "USDC",
                         "amount": "1.5", "slippageBps": 100}},
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
    return {
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
                        {"name": "cursor", "in": "query", "schema": {"type": "string"}},
                        {
                            "name": "clientOrderId",
                            "in": "query",
                            "schema": {"type": "string", "minLength": 1, "maxLength": 64},
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
                        _query("tokenIn", {"type": "string"}, required=True),
                        _query("tokenOut", {"type": "string"}, required=True),
                        _query(
                            "amount",
                            {"type": "string", "pattern": r"^(0|[1-9][0-9]*)(\.[0-9]+)?$"},
                            required=True,
                        ),
                        _query("slippageBps", {"type": "integer", "minimum": 1, "maximum": 5000}),
                        _query(
                            "venues",
                            {"type": "string", "description": "comma-separated, e.g. raydium"},
                        ),
                    ],
                    "responses": {
                        "200": _json(QuoteResponse, "the route an order would take now"),
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
                            {
                                "type": "string",
                                "pattern": "^[1-9][0-9]{0,3}[mhd]$",
                                "default": "24h",
                            },
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
        "components": {"schemas": schemas["$defs"]},
    }
