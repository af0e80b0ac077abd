"""DynamoDB served by moto, selected with `PROVIDER_OVERRIDE_DYNAMODB=moto`.

LocalStack's own DynamoDB provider forwards to DynamoDB Local, which needs a JDK 21, the
DynamoDB Local jars and a patch agent, all downloaded at first use; none of these can be
fetched here. moto implements what orderflow uses (CreateTable, conditional Put/Update,
TransactWriteItems with CancellationReasons, UpdateTimeToLive, Query), so the provider below
implements nothing itself and lets LocalStack's moto dispatcher serve every operation, the same
way LocalStack serves its other moto-backed services.

moto's DynamoDB backend is not thread-safe: a TransactWriteItems iterating a table while another
request adds an item fails with `InternalError: dictionary changed size during iteration`
(seen under the whole-flow tests' load). DynamoDB itself is linearizable per item, so every
operation here runs under one lock; moto answers in about a millisecond, so the lock costs
little. `ORDERFLOW_SKIP_DYNAMODB_LOCK=1` turns it off, to show the concurrency test fail.
"""

import os
import threading

from localstack.aws.api.dynamodb import DynamodbApi
from localstack.services.plugins import Service, ServiceLifecycleHook, aws_provider

_LOCK = threading.RLock()


class MotoDynamoDBProvider(DynamodbApi, ServiceLifecycleHook):
    """Every DynamoDB operation falls through to moto."""


def _serialized(handler):
    def call(context, request):
        with _LOCK:
            return handler(context, request)

    return call


def serialized_moto_dispatcher(provider):
    """LocalStack's moto dispatch table, each operation run under `_LOCK`."""
    from localstack.services.moto import MotoFallbackDispatcher

    table = MotoFallbackDispatcher(provider)
    if os.environ.get("ORDERFLOW_SKIP_DYNAMODB_LOCK") == "1":
        return table
    return {operation: _serialized(handler) for operation, handler in table.items()}


@aws_provider(api="dynamodb", name="moto")
def dynamodb_moto() -> Service:
    return Service.for_provider(
        MotoDynamoDBProvider(), dispatch_table_factory=serialized_moto_dispatcher
    )
