"""Fixes to LocalStack itself, applied by an `on_infra_start` hook.

Each fix checks that the code it replaces is still broken, so a LocalStack upgrade that fixes
the bug upstream makes the fix a no-op instead of a conflict.
"""

import json
import logging
import os
from datetime import UTC, datetime

from localstack.runtime import hooks

LOG = logging.getLogger(__name__)


def _as_utc(value) -> datetime:
    """An archived event's `time` is an RFC 3339 string; StartReplay's bounds are datetimes.

    Both become aware UTC datetimes, so that they can be compared."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def normalize_datetime(_self, value) -> datetime:
    """Replacement for `ArchiveService._normalize_datetime` (broken in LocalStack 4.4.0 to 4.13.1).

    The original calls `value.replace(second=0, microsecond=0)` on the archived event's `time`,
    which is a string, so every StartReplay fails with `str.replace() takes no keyword
    arguments` and the replay stays in STARTING."""
    return _as_utc(value).replace(second=0, microsecond=0)


def _time_tolerant(get_event_time):
    """Wraps `events.utils.get_event_time` (same versions): a replayed event is re-put with
    its archived `Time`, a string, and `str.replace(tzinfo=…)` then fails the same way."""

    def wrapper(event):
        if isinstance(event.get("Time"), str):
            event = {**event, "Time": _as_utc(event["Time"])}
        return get_event_time(event)

    wrapper.orderflow_patched = True
    return wrapper


def events_replay_is_broken() -> bool:
    from localstack.services.events.archive import ArchiveService

    try:
        ArchiveService._normalize_datetime(None, "2026-01-01T00:00:00Z")
    except TypeError:
        return True
    except Exception:  # noqa: BLE001 - any other failure: leave upstream code alone
        return False
    return False


@hooks.on_infra_start()
def orderflow_fix_events_replay() -> None:
    """EventBridge StartReplay: treat archived event times as datetimes (see `normalize_datetime`
    and `_time_tolerant`)."""
    from localstack.services.events import utils
    from localstack.services.events.archive import ArchiveService

    if os.environ.get("ORDERFLOW_SKIP_EVENTS_REPLAY_FIX") == "1":
        return  # to prove the test fails without the fix
    if events_replay_is_broken():
        ArchiveService._normalize_datetime = normalize_datetime
        if not getattr(utils.get_event_time, "orderflow_patched", False):
            utils.get_event_time = _time_tolerant(utils.get_event_time)
        LOG.info("orderflow: patched EventBridge archive replay (_normalize_datetime)")


def _replay_filtered(process_rules):
    """Wraps `EventsProvider._process_rules` (LocalStack 4.13.1): a replayed event goes only to the
    rules its replay's `Destination.FilterArns` names, as on AWS.

    LocalStack re-puts replayed events onto the bus and matches them against every rule (its
    `ReplayService` carries `# TODO deal with filter arn`), so a replay meant for one rule reaches
    every rule's targets: a `cargo xtask ops trace` would re-deliver a whole window of events to
    the functions."""

    def wrapper(self, rule, region, account_id, event_formatted, trace_header):
        replay_name = event_formatted.get("replay-name")
        if replay_name:
            replay = self.get_store(region, account_id).replays.get(replay_name)
            filter_arns = ((replay and replay.destination) or {}).get("FilterArns") or []
            if filter_arns and rule.arn not in filter_arns:
                return None
        return process_rules(self, rule, region, account_id, event_formatted, trace_header)

    wrapper.orderflow_patched = True
    return wrapper


@hooks.on_infra_start()
def orderflow_fix_replay_filter() -> None:
    """EventBridge StartReplay: honour `Destination.FilterArns` (see `_replay_filtered`)."""
    from localstack.services.events.provider import EventsProvider

    if os.environ.get("ORDERFLOW_SKIP_REPLAY_FILTER_FIX") == "1":
        return  # to prove the test fails without the fix
    if not getattr(EventsProvider._process_rules, "orderflow_patched", False):
        EventsProvider._process_rules = _replay_filtered(EventsProvider._process_rules)
        LOG.info("orderflow: patched EventBridge replay to honour FilterArns")


class _VerbatimBodies:
    """The `json` module as LocalStack's SQS poller sees it (4.13.1), so that a function gets each
    message body exactly as it was sent, as on AWS.

    `SqsPoller.handle_messages` parses every body with `json.loads` (for filter criteria) and
    writes the parsed ones back with `json.dumps` before the invocation. That re-formats every JSON
    body (`", "` separators, the last of two duplicate keys kept, `1e400` becoming `Infinity`, a
    JSON string body losing its quotes), and a body nested deeper than Python's recursion limit
    raises RecursionError, which fails the poll of the whole batch, again after every visibility
    timeout, so every message in it reaches the DLQ with no reason.

    Here `loads` gives a parsed object or array that remembers its text (filtering still sees the
    parsed value), refuses anything else, including a RecursionError, as not JSON (the body stays
    text), and `dumps` gives a remembered text back unchanged."""

    JSONDecodeError = json.JSONDecodeError

    class Object(dict):
        orderflow_text = ""

    class Array(list):
        orderflow_text = ""

    def loads(self, text, *args, **kwargs):
        try:
            value = json.loads(text, *args, **kwargs)
        except RecursionError as err:
            raise json.JSONDecodeError(f"nested too deep: {err}", str(text), 0) from err
        kind = {dict: self.Object, list: self.Array}.get(type(value))
        if kind is None:
            raise json.JSONDecodeError("not an object or array: kept as text", str(text), 0)
        parsed = kind(value)
        parsed.orderflow_text = text
        return parsed

    def dumps(self, value, *args, **kwargs):
        text = getattr(value, "orderflow_text", None)
        return text if isinstance(text, str) else json.dumps(value, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(json, name)


@hooks.on_infra_start()
def orderflow_fix_sqs_bodies() -> None:
    """SQS event-source mappings: deliver each body verbatim (see `_VerbatimBodies`)."""
    from localstack.services.lambda_.event_source_mapping.pollers import sqs_poller

    if os.environ.get("ORDERFLOW_SKIP_SQS_BODY_FIX") == "1":
        return  # to prove the test fails without the fix
    if not isinstance(sqs_poller.json, _VerbatimBodies):
        sqs_poller.json = _VerbatimBodies()
        LOG.info("orderflow: patched the SQS poller to deliver message bodies verbatim")


def _sqs_request_context(account_id: str, region: str):
    """What LocalStack's SQS provider reads of a request: the account and region it comes from,
    the service (its protocol), and the HTTP request's headers, here none."""
    from localstack.aws.api import RequestContext
    from localstack.aws.spec import load_service
    from localstack.http import Request

    context = RequestContext(Request("POST", "/"))
    context.service = load_service("sqs")
    context.operation = context.service.operation_model("SendMessage")
    context.account_id = account_id
    context.region = region
    return context


def send_to_sqs_in_process(self, event, trace_header):
    """Replacement for `SqsTargetSender.send_event` (LocalStack 4.13.1): the event goes to the SQS
    provider's `send_message` as a call, with the same queue URL, body and message group.

    The original makes the call through an internal botocore client, which serializes the
    request, runs it through the whole gateway (with `IN_MEMORY_CLIENT`; over HTTP to LocalStack's
    own port without it) and parses the response back: about 95% of a delivery's CPU, for a
    `send_message` that costs the rest, and 10 deliveries an order. The client is made for the
    rule's account and region (`connect_to(aws_access_key_id=account_id, region_name=region)`),
    which is what the context carries here; it sends no trace header (`send_event` passes none),
    so none is set. A failure raises as before, and `_process_rules` logs it the same way."""
    from localstack.services.events import target
    from localstack.services.plugins import SERVICE_PLUGINS

    provider = SERVICE_PLUGINS.require("sqs")._provider
    group = self.target.get("SqsParameters", {}).get("MessageGroupId", None)
    provider.send_message(
        _sqs_request_context(self.account_id, self.region),
        queue_url=target.sqs_queue_url_for_arn(self.target["Arn"]),
        message_body=target.to_json_str(event),
        message_group_id=group,
    )


send_to_sqs_in_process.orderflow_patched = True


@hooks.on_infra_start()
def orderflow_deliver_to_sqs_in_process() -> None:
    """EventBridge SQS targets: send through the SQS provider, not a client (see
    `send_to_sqs_in_process`). Performance only; `ORDERFLOW_SKIP_SQS_DELIVERY_IN_PROCESS=1` keeps
    LocalStack's own path, to compare."""
    from localstack.services.events.target import SqsTargetSender

    if os.environ.get("ORDERFLOW_SKIP_SQS_DELIVERY_IN_PROCESS") == "1":
        return
    if not getattr(SqsTargetSender.send_event, "orderflow_patched", False):
        SqsTargetSender.send_event = send_to_sqs_in_process
        LOG.info("orderflow: EventBridge delivers to SQS targets in process")


def _without_form_parsing(init):
    """`TwistedRequestAdapter.__init__` (rolo, LocalStack's HTTP server), with twisted told not to
    parse a POST body as a form.

    twisted parses every POST's `Content-Type` through the `email` package (`_parseContentType`),
    to fill `request.args` from a URL-encoded or multipart body. LocalStack never reads
    `request.args`: its gateway gets the body from the WSGI input and parses it itself. The
    parse is pure Python and was about 7% of LocalStack's CPU at 10 orders a second."""

    def wrapper(self, *args, **kwargs):
        kwargs["parsePOSTFormSubmission"] = False
        init(self, *args, **kwargs)

    wrapper.orderflow_patched = True
    return wrapper


@hooks.on_infra_start()
def orderflow_skip_form_parsing() -> None:
    """LocalStack's HTTP server: no form parsing of POST bodies (see `_without_form_parsing`).
    Performance only; `ORDERFLOW_SKIP_NO_FORM_PARSING=1` keeps twisted's parse, to compare."""
    from rolo.serving.twisted import TwistedRequestAdapter

    if os.environ.get("ORDERFLOW_SKIP_NO_FORM_PARSING") == "1":
        return
    if not getattr(TwistedRequestAdapter.__init__, "orderflow_patched", False):
        TwistedRequestAdapter.__init__ = _without_form_parsing(TwistedRequestAdapter.__init__)
        LOG.info("orderflow: LocalStack's HTTP server parses no POST body as a form")
