"""What travels over a WebSocket: the client's messages and the status events pushed to it."""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from chalicelib.orders.lifecycle import OrderStatus
from chalicelib.orders.records import HistoryRecord

_CORE_FIELDS = frozenset({"type", "orderId", "seq", "status"})


class StatusEvent(BaseModel):
    """One status change as pushed over the WebSocket: ``{"orderId","seq","status",...payload}``."""

    model_config = ConfigDict(extra="allow")
    type: Literal["status"] = "status"
    orderId: str
    seq: int
    status: OrderStatus


class SubscribeMessage(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    action: Literal["subscribe", "unsubscribe"]
    order_id: str = Field(alias="orderId", min_length=1, max_length=64)
    since: int = Field(0, ge=0)


def status_message(order_id: str, entry: HistoryRecord) -> str:
    """One history row as the client sees it: ``{"type":"status","orderId","seq","status",...}``."""
    extra = {k: v for k, v in entry.payload.items() if k not in _CORE_FIELDS}
    extra.setdefault("createdAt", entry.created_at.isoformat())
    event = StatusEvent(orderId=str(order_id), seq=entry.seq, status=entry.status, **extra)
    return event.model_dump_json()


def error_frame(code: str, message: str, details=None) -> dict:
    return {"type": "error", "error": {"code": code, "message": message, "details": details}}
