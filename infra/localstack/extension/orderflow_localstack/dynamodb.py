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

moto's TransactWriteItems deep-copies every table it touches before it starts, once per entry,
so that it can roll a cancelled transaction back. That makes every transaction cost time in
proportion to the size of the table: with 750 items, 113 ms against PutItem's 7.5 ms. Every
record orderflow commits is a transaction, on tables that only grow, and under the lock above
everything else waits for it. The flash sale then missed its five minutes in CI, after the
other suites had filled the tables. `_rolled_back_by_item` keeps moto's own transaction and
rollback but saves only the items the transaction names. This is sound only under the lock:
nothing else can write between the save and the rollback. `ORDERFLOW_SKIP_DYNAMODB_TX_FIX=1`
turns it off, to show the test fail.

moto also lists the handler class's methods at every request; `remember_method_names` keeps
the list per class. `ORDERFLOW_SKIP_MOTO_NAMES_CACHE=1` turns that off, to compare.
"""

import copy
import functools
import inspect
import logging
import os
import threading

from localstack.aws.api.dynamodb import DynamodbApi
from localstack.services.plugins import Service, ServiceLifecycleHook, aws_provider

LOG = logging.getLogger(__name__)

_LOCK = threading.RLock()


class MotoDynamoDBProvider(DynamodbApi, ServiceLifecycleHook):
    """Every DynamoDB operation falls through to moto."""


def _serialized(handler):
    def call(context, request):
        with _LOCK:
            return handler(context, request)

    return call


class _TablesByReference:
    """Stands in for the `copy` module inside moto's DynamoDB models: a table is "copied" as
    itself, anything else deep-copied as before. moto's rollback then puts back the very table it
    rolled back, which `_rolled_back_by_item` has already restored item by item."""

    def __init__(self, table_type):
        self._table_type = table_type

    def deepcopy(self, value, memo=None):
        if isinstance(value, self._table_type):
            return value
        return copy.deepcopy(value, memo)

    def __getattr__(self, name):
        return getattr(copy, name)


def _named_items(backend, transact_items, dynamo_type):
    """`(table, hash key, range key)` of every entry that names an existing table and a whole key.
    An entry that does not is refused by moto before it writes anything, so it needs no saving."""
    for entry in transact_items:
        try:
            op_type, op = next(iter(entry.items()))
            table = backend.tables[op["TableName"]]
            attrs = op["Item"] if op_type == "Put" else op["Key"]
            hash_key = dynamo_type(attrs[table.hash_key_attr])
            range_key = dynamo_type(attrs[table.range_key_attr]) if table.has_range_key else None
        except (AttributeError, KeyError, StopIteration, TypeError, ValueError):
            continue
        yield table, hash_key, range_key


def _put_back(table, hash_key, range_key, item):
    """Makes `item` (`None`: no item) the table's item at the key again."""
    if range_key is None:
        if item is None:
            table.items.pop(hash_key, None)
        else:
            table.items[hash_key] = item
    elif item is None:
        table.items[hash_key].pop(range_key, None)
    else:
        table.items[hash_key][range_key] = item


def _rolled_back_by_item(transact, dynamo_type):
    """moto's TransactWriteItems, saving the items it names instead of whole tables."""

    def transact_write_items(self, transact_items):
        saved = [
            (table, hash_key, range_key, copy.deepcopy(table.get_item(hash_key, range_key)))
            for table, hash_key, range_key in _named_items(self, transact_items, dynamo_type)
        ]
        try:
            return transact(self, transact_items)
        except Exception:
            # In reverse, so that a key named twice gets its first saved (original) item.
            for table, hash_key, range_key, item in reversed(saved):
                _put_back(table, hash_key, range_key, item)
            raise

    transact_write_items.orderflow_patched = True
    return transact_write_items


def transactions_copy_whole_tables() -> bool:
    """Whether moto's TransactWriteItems still deep-copies each table it touches."""
    from moto.dynamodb.models import DynamoDBBackend

    source = inspect.getsource(DynamoDBBackend.transact_write_items)
    return "copy.deepcopy(" in source and "self.tables[table_name]" in source


def save_only_named_items() -> None:
    """Applies `_rolled_back_by_item` once, if moto still needs it."""
    from moto.dynamodb import models

    backend = models.DynamoDBBackend
    if getattr(backend.transact_write_items, "orderflow_patched", False):
        return
    if not transactions_copy_whole_tables():
        LOG.info("orderflow: moto's TransactWriteItems no longer copies whole tables; not patched")
        return
    models.copy = _TablesByReference(models.Table)
    backend.transact_write_items = _rolled_back_by_item(
        backend.transact_write_items, models.DynamoType
    )
    LOG.info("orderflow: moto's TransactWriteItems now saves only the items it names")


def remember_method_names() -> None:
    """moto's `method_names_from_class`, remembered per class (`functools.cache`), once.

    moto's `BaseResponse.call_action` asks for it at every request, to check that the action is
    a method of the handler: `inspect.getmembers` over the whole handler class and its bases,
    every attribute looked up. Remembered, LocalStack spent 71 and 60 ms of its CPU an order of
    `cargo xtask bench flow` against 96 and 85 without (alternating fresh stacks). A class's
    functions do not change while LocalStack runs."""
    from moto.core import responses

    if not getattr(responses.method_names_from_class, "orderflow_patched", False):
        cached = functools.cache(responses.method_names_from_class)
        cached.orderflow_patched = True
        responses.method_names_from_class = cached


def serialized_moto_dispatcher(provider):
    """LocalStack's moto dispatch table, each operation run under `_LOCK`."""
    from localstack.services.moto import MotoFallbackDispatcher

    table = MotoFallbackDispatcher(provider)
    if os.environ.get("ORDERFLOW_SKIP_MOTO_NAMES_CACHE") != "1":  # to compare
        remember_method_names()
    if os.environ.get("ORDERFLOW_SKIP_DYNAMODB_LOCK") == "1":
        return table
    # Saving items instead of tables is sound only under the lock.
    if os.environ.get("ORDERFLOW_SKIP_DYNAMODB_TX_FIX") != "1":
        save_only_named_items()
    return {operation: _serialized(handler) for operation, handler in table.items()}


@aws_provider(api="dynamodb", name="moto")
def dynamodb_moto() -> Service:
    return Service.for_provider(
        MotoDynamoDBProvider(), dispatch_table_factory=serialized_moto_dispatcher
    )
