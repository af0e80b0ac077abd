"""Per-record CPU of the payment record path, written with Powertools for
AWS Lambda (Python): the counterpart of `functions/payment/benches/record.rs`.

Run by `cargo xtask bench compare` in .venv/powertools (infra/bench/
powertools.lock):

    python infra/bench/powertools_record.py events/payment/order-placed.sqs.json [--batch 10]

With --batch N, the payload's first record N times over in one invocation,
as the Rust side's batch bench has it.

Prints one JSON line: {"baseline_us": ..., "record_us": ..., "records": N},
per-record medians in microseconds.

- baseline: `json.loads` of the payload (the Rust side's baseline parses the
  same payload into a `serde_json::Value`).
- record: what the Lambda runtime and the handler do for that payload, minus
  I/O: `json.loads` of the invocation (the Python runtime's share, which the
  Rust side pays in `read_invocation`), then `process_partial_response` with
  a `BatchProcessor(event_type=EventType.SQS, model=...)` whose model parses
  each body as an EventBridge envelope holding a typed, validated
  OrderPlaced detail; the record handler decides (authorize: Pending ->
  Authorized, the new state serialized with json.dumps) and encodes the
  outgoing PaymentAuthorized detail with json.dumps (a new event id derived
  from the cause, the causation id, a timestamp).
"""

from __future__ import annotations

import hashlib
import json
import os
import statistics
import sys
import timeit
import uuid
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    field_validator,
    model_validator,
)

# Powertools reads these at import time; debug mode changes what it costs.
if os.environ.get("POWERTOOLS_DEBUG"):
    sys.exit("powertools_record.py: unset POWERTOOLS_DEBUG, it changes what Powertools costs")

from aws_lambda_powertools.utilities.batch import (  # noqa: E402
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.parser.models import (  # noqa: E402
    EventBridgeModel,
    SqsRecordModel,
)
from aws_lambda_powertools.utilities.parser.types import Json  # noqa: E402

# The contract's rules (shared/contracts/src/ids.rs, money.rs, events.rs).
MAX_LINES = 50
MAX_QUANTITY = 10_000
OrderId = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
Sku = Annotated[str, Field(pattern=r"^[A-Z0-9_-]{1,32}$")]
Producer = Annotated[str, Field(pattern=r"^[a-z0-9.-]{1,64}$")]
Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$")]
PaymentToken = Annotated[str, Field(pattern=r"^tok_[A-Za-z0-9_]{1,60}$")]
MinorUnits = Annotated[StrictInt, Field(ge=0)]
Quantity = Annotated[StrictInt, Field(ge=1, le=MAX_QUANTITY)]
Text = Annotated[str, Field(max_length=100)]

# The namespace orderflow derives outgoing event ids in (ids.rs).
EVENT_ID_NAMESPACE = uuid.UUID(int=0x6F72_6465_7266_6C6F_7700_0000_0000_0001)
AUTHORIZATION_ID = "auth_5d1c0e7a9b3f2c41"


class LineItem(BaseModel):
    sku: Sku
    quantity: Quantity
    unit_price_minor: MinorUnits


class Address(BaseModel):
    name: Text
    line1: Text
    line2: Text | None = None
    city: Text
    postal_code: Text
    country: Annotated[str, Field(pattern=r"^[A-Z]{2}$")]

    @field_validator("name", "line1", "city", "postal_code")
    @classmethod
    def not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value


class OrderPlaced(BaseModel):
    items: Annotated[list[LineItem], Field(min_length=1, max_length=MAX_LINES)]
    total_minor: MinorUnits
    currency: Currency
    payment_token: PaymentToken
    shipping_address: Address

    @field_validator("payment_token")
    @classmethod
    def not_a_card_number(cls, value: str) -> str:
        run = 0
        for ch in value[4:]:
            run = run + 1 if ch.isdigit() else 0
            if run >= 12:
                raise ValueError("payment token looks like a card number")
        return value

    @model_validator(mode="after")
    def lines_add_up(self) -> OrderPlaced:
        seen: set[str] = set()
        total = 0
        for item in self.items:
            if item.sku in seen:
                raise ValueError(f"sku {item.sku} appears on more than one line")
            seen.add(item.sku)
            total += item.quantity * item.unit_price_minor
        if total != self.total_minor:
            raise ValueError(f"total_minor is {self.total_minor} but the lines add up to {total}")
        return self


class OrderPlacedDetail(BaseModel):
    event_id: uuid.UUID
    order_id: OrderId
    causation_id: uuid.UUID | None = None
    occurred_at: datetime
    schema_version: Literal[1]
    producer: Producer
    data: OrderPlaced


class OrderPlacedEnvelope(EventBridgeModel):
    model_config = ConfigDict(populate_by_name=True)

    detail_type: Literal["OrderPlaced"] = Field(alias="detail-type")
    source: Literal["orderflow.orders"]
    detail: OrderPlacedDetail


class PaymentRecord(SqsRecordModel):
    body: Json[OrderPlacedEnvelope]  # type: ignore[type-arg]


def derive_event_id(cause: uuid.UUID, name: bytes) -> uuid.UUID:
    """`EventId::derive`: UUID v5 of the cause's bytes and `name`, so a
    re-published outcome keeps its id (uuid.uuid5 takes only str on 3.11)."""
    digest = hashlib.sha1(EVENT_ID_NAMESPACE.bytes + cause.bytes + name).digest()
    return uuid.UUID(bytes=digest[:16], version=5)


def record_handler(record: PaymentRecord) -> str:
    """Decides and encodes one order: what orderflow's payment does on the
    CPU for an OrderPlaced, with the provider answering `Authorized`."""
    detail = record.body.detail
    order = detail.data
    # decide: Pending -> Authorized, and the state that would be stored.
    state = {
        "status": {
            "status": "authorized",
            "authorization_id": AUTHORIZATION_ID,
            "amount_minor": order.total_minor,
            "currency": order.currency,
        },
        "stock_unavailable": False,
    }
    stored = json.dumps(state, separators=(",", ":"))
    # encode the outbox event.
    event_id = derive_event_id(detail.event_id, b"PaymentAuthorized#0")
    outgoing = {
        "event_id": str(event_id),
        "order_id": detail.order_id,
        "causation_id": str(detail.event_id),
        "occurred_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "schema_version": 1,
        "producer": "orderflow.payment",
        "data": {
            "authorization_id": AUTHORIZATION_ID,
            "amount_minor": order.total_minor,
            "currency": order.currency,
        },
    }
    encoded = json.dumps(outgoing, separators=(",", ":"))
    return stored + encoded


class Context:
    """The little of a Lambda context that the batch processor may read."""

    function_name = "payment"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:payment"
    memory_limit_in_mb = 128
    aws_request_id = "00000000-0000-4000-8000-000000000000"
    log_group_name = "/aws/lambda/payment"
    log_stream_name = "bench"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 900_000


processor = BatchProcessor(event_type=EventType.SQS, model=PaymentRecord)
context = Context()


def handle(payload: str) -> dict:
    event = json.loads(payload)
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )


def per_call_us(fn, repeats: int = 15) -> float:
    """The median, over `repeats` batches of at least 0.2 s each, of one
    call's time in µs."""
    timer = timeit.Timer(fn)
    number, _ = timer.autorange()
    times = timer.repeat(repeat=repeats, number=number)
    return statistics.median(times) / number * 1e6


def batch_of(payload: str, n: int) -> str:
    """The invocation's first record n times over, each copy with a message
    id of its own (the first keeps the sample's): the Rust side's
    `orderflow_runtime::testing::batch_of`."""
    invocation = json.loads(payload)
    first = invocation["Records"][0]
    copies = [dict(first, messageId=f"00000000-0000-4000-8000-{i:012}") for i in range(n)]
    copies[0] = first
    return json.dumps({"Records": copies})


def main() -> None:
    args = sys.argv[1:]
    batch = None
    if len(args) == 3 and args[1] == "--batch" and args[2].isdigit() and int(args[2]) > 0:
        batch = int(args[2])
    elif len(args) != 1:
        sys.exit("usage: powertools_record.py <payload.json> [--batch N]")
    with open(args[0], encoding="utf-8") as f:
        payload = f.read()
    if batch is not None:
        payload = batch_of(payload, batch)
    records = len(json.loads(payload)["Records"])
    if records == 0:
        sys.exit("powertools_record.py: the payload has no records")

    # A record that fails to parse or decide is cheap: make sure every one
    # succeeds, and encodes what it should, before anything is timed.
    response = handle(payload)
    failures = response.get("batchItemFailures")
    if failures or processor.exceptions or len(processor.success_messages) != records:
        errors = [repr(e[1]) for e in processor.exceptions]
        sys.exit(
            f"powertools_record.py: {len(processor.success_messages)} of {records} records "
            f"succeeded; batchItemFailures={failures}; errors={errors}"
        )
    for raw in json.loads(payload)["Records"]:
        result = record_handler(PaymentRecord.model_validate(raw))
        wanted = ['"status":"authorized"', '"producer":"orderflow.payment"', '"causation_id":"']
        if not all(w in result for w in wanted):
            sys.exit(f"powertools_record.py: unexpected encoding: {result}")

    baseline = per_call_us(lambda: json.loads(payload)) / records
    record = per_call_us(lambda: handle(payload)) / records
    print(json.dumps({"baseline_us": baseline, "record_us": record, "records": records}))


if __name__ == "__main__":
    main()
