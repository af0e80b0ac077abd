"""Where ministack 1.5.33 does not do what AWS does, and orderflow's stack or tests notice.

Each fix names the AWS documentation it follows and has a test in `infra/ministack/tests` that
fails without it: set `ORDERFLOW_SKIP_<NAME>_FIX=1` in ministack's environment (for example
`ORDERFLOW_SKIP_SQS_BATCH_ACTIONS_FIX=1 cargo xtask cloud up --cloud ministack`) to see it fail.
Each fix also checks that the code it replaces is still missing or wrong, so an upgrade that
fixes a bug upstream turns the fix into a no-op instead of a conflict.

One more hook is not a fix: `authorization_log` records every IAM decision ministack makes for a
role, which is what the least-privilege test compares with the template's policies.
"""

import json
import logging
import os
import threading
import time
import uuid

LOG = logging.getLogger("orderflow_ministack")


def _skipped(name: str) -> bool:
    """Whether `ORDERFLOW_SKIP_<NAME>_FIX=1` asks to leave ministack as it is (to prove a test
    fails without the fix)."""
    return os.environ.get(f"ORDERFLOW_SKIP_{name.upper()}_FIX") == "1"


# --------------------------------------------------------------------------------------------
# AWS::Events::Archive in CloudFormation
# --------------------------------------------------------------------------------------------


def _response_error(response) -> str | None:
    """A ministack handler's `(status, headers, body)`: the error text, if it failed."""
    status, _headers, body = response
    if status < 300:
        return None
    return body.decode() if isinstance(body, bytes) else str(body)


def _archive_request(name: str, props: dict) -> dict:
    pattern = props.get("EventPattern", "")
    return {
        "ArchiveName": name,
        "EventSourceArn": props.get("SourceArn", ""),
        "Description": props.get("Description", ""),
        # CloudFormation takes the pattern as an object; the API as a JSON string.
        "EventPattern": pattern if isinstance(pattern, str) else json.dumps(pattern),
        "RetentionDays": int(props.get("RetentionDays", 0)),
    }


def _archive_handlers():
    """Create, update and delete of `AWS::Events::Archive`, through ministack's own EventBridge
    archive API (which it has: only CloudFormation lacks the type).

    As on AWS (AWS::Events::Archive reference): `Ref` is the archive name, `Fn::GetAtt Arn` its
    ARN; `ArchiveName` and `SourceArn` are create-only, so changing them replaces the archive."""
    from ministack.services import eventbridge
    from ministack.services.cloudformation.provisioners import _physical_name

    def create(logical_id, props, stack_name):
        name = props.get("ArchiveName") or _physical_name(stack_name, logical_id, max_len=48)
        error = _response_error(eventbridge._create_archive(_archive_request(name, props)))
        if error:
            raise ValueError(f"AWS::Events::Archive {name}: {error}")
        return name, {"Arn": eventbridge._archives[name]["ArchiveArn"], "ArchiveName": name}

    def update(physical_id, old_props, new_props, stack_name):
        replaced = new_props.get("ArchiveName", physical_id) != physical_id or new_props.get(
            "SourceArn"
        ) != old_props.get("SourceArn")
        if replaced:
            delete(physical_id, old_props)
            return create(physical_id, new_props, stack_name)
        request = _archive_request(physical_id, new_props)
        request.pop("EventSourceArn")
        error = _response_error(eventbridge._update_archive(request))
        if error:
            raise ValueError(f"AWS::Events::Archive {physical_id}: {error}")
        arn = eventbridge._archives[physical_id]["ArchiveArn"]
        return physical_id, {"Arn": arn, "ArchiveName": physical_id}

    def delete(physical_id, _props):
        if physical_id in eventbridge._archives:
            eventbridge._delete_archive({"ArchiveName": physical_id})

    return {"create": create, "update": update, "delete": delete}


def fix_events_archive_resource() -> None:
    """ministack's CloudFormation refuses `AWS::Events::Archive` ("Unrecognized resource types"),
    so orderflow's stack could not deploy at all."""
    from ministack.services.cloudformation import provisioners

    handlers = provisioners._RESOURCE_HANDLERS
    if _skipped("events_archive_resource") or "AWS::Events::Archive" in handlers:
        return
    handlers["AWS::Events::Archive"] = _archive_handlers()
    LOG.info("orderflow: AWS::Events::Archive registered with CloudFormation")


# --------------------------------------------------------------------------------------------
# SQS batch calls are authorized as their single-message actions
# --------------------------------------------------------------------------------------------

#: The SQS batch operations and the IAM action AWS authorizes each with. The Service
#: Authorization Reference for Amazon SQS lists no `*Batch` action, and the SQS API reference
#: (AddPermission) says "Specifying SendMessage, DeleteMessage, or ChangeMessageVisibility ...
#: also grants permissions for the corresponding batch versions of those actions".
SQS_BATCH_ACTIONS = {
    "sqs:SendMessageBatch": "sqs:SendMessage",
    "sqs:DeleteMessageBatch": "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibilityBatch": "sqs:ChangeMessageVisibility",
}


def _single_message_actions(extract):
    def wrapper(*args, **kwargs):
        action = extract(*args, **kwargs)
        return SQS_BATCH_ACTIONS.get(action, action)

    wrapper.orderflow_patched = True
    return wrapper


def fix_sqs_batch_actions() -> None:
    """ministack authorizes `ChangeMessageVisibilityBatch` (and the other two) as actions of
    their own, so a role granted `sqs:ChangeMessageVisibility`, as AWS wants, was refused."""
    from ministack.core import iam_actions

    if _skipped("sqs_batch_actions") or getattr(
        iam_actions.extract_iam_action, "orderflow_patched", False
    ):
        return
    iam_actions.extract_iam_action = _single_message_actions(iam_actions.extract_iam_action)
    LOG.info("orderflow: SQS batch calls authorized as their single-message actions")


# --------------------------------------------------------------------------------------------
# A replay reaches only the rules in its Destination.FilterArns
# --------------------------------------------------------------------------------------------


def _filter_arns(eventbridge, event) -> list[str] | None:
    """The rules a replayed event may reach, or None for every rule (a live event, or a replay
    without FilterArns)."""
    name = event.get("ReplayName")
    if name is None:
        return None
    replay = eventbridge._replays.get(name) or {}
    arns = (replay.get("Destination") or {}).get("FilterArns") or None
    return list(arns) if arns else None


def _replay_filtered(eventbridge, dispatch):
    """StartReplay (EventBridge API reference, ReplayDestination.FilterArns): "A list of ARNs
    for rules to replay events to." ministack 1.5.33 ignores it and dispatches a replayed event
    to every rule on the bus, so `ops trace`, whose replay is meant for its own rule alone,
    re-delivered the whole window to the three functions."""

    def wrapper(event, view=None):
        allowed = _filter_arns(eventbridge, event)
        if allowed is None:
            return dispatch(event, view)
        view = view or eventbridge._pattern_event_view(event)
        bus = event.get("EventBusName", "default")
        for key, rule in list(eventbridge._rules.items()):
            if rule.get("Arn") not in allowed or rule.get("EventBusName", "default") != bus:
                continue
            if rule.get("State") != "ENABLED" or not rule.get("EventPattern"):
                continue
            if eventbridge._matches_pattern_view(rule["EventPattern"], view, f"rule {key}"):
                for target in eventbridge._targets.get(key, []):
                    eventbridge._invoke_target(target, event, rule, view)
        return None

    wrapper.orderflow_patched = True
    return wrapper


def fix_replay_filter_arns() -> None:
    from ministack.services import eventbridge

    dispatch = eventbridge._dispatch_event
    if _skipped("replay_filter") or getattr(dispatch, "orderflow_patched", False):
        return
    eventbridge._dispatch_event = _replay_filtered(eventbridge, dispatch)
    LOG.info("orderflow: replays limited to their FilterArns")


# --------------------------------------------------------------------------------------------
# PutEvents refuses a Detail that is no JSON object, and a call over 256 KB
# --------------------------------------------------------------------------------------------

# PutEvents (EventBridge API reference): "The maximum size of a PutEvents request is 256 KB";
# an entry's size is its Source, DetailType, Detail and Resources in UTF-8 bytes, plus 14 for a
# Time ("Calculating PutEvents event entry size").
_PUT_EVENTS_MAX_BYTES = 256 * 1024


def _entry_size(entry: dict) -> int:
    size = 14 if entry.get("Time") is not None else 0
    for key in ("Source", "DetailType", "Detail"):
        size += len(str(entry.get(key) or "").encode())
    return size + sum(len(str(r).encode()) for r in entry.get("Resources") or [])


def _malformed(detail) -> bool:
    """PutEventsRequestEntry.Detail: "A valid JSON object." A detail nested past Python's
    recursion limit is left to ministack (what AWS does with it is not documented)."""
    if detail is None:
        return False
    try:
        return not isinstance(json.loads(detail), dict)
    except RecursionError:
        return False
    except (TypeError, ValueError):
        return True


def _put_events_checked(eventbridge, put_events):
    """PutEvents as AWS answers it: ministack 1.5.33 accepts any Detail and any size, so an event
    AWS refuses reached the rules (the hostile corpus's bus test found it). A malformed entry
    fails alone with `MalformedDetail`, as on AWS; the others go through."""

    def wrapper(data, allow_aws_source=False):
        entries = data.get("Entries") or []
        if sum(_entry_size(e) for e in entries) > _PUT_EVENTS_MAX_BYTES:
            return eventbridge.error_response_json(
                "ValidationException",
                "Total size of the entries in the request is over the limit.",
                400,
            )
        refused = {i for i, e in enumerate(entries) if _malformed(e.get("Detail"))}
        if not refused:
            return put_events(data, allow_aws_source)
        kept = [e for i, e in enumerate(entries) if i not in refused]
        answers, failed = iter([]), len(refused)
        if kept:
            response = put_events({**data, "Entries": kept}, allow_aws_source)
            if _response_error(response) is not None:
                return response
            body = json.loads(response[2])
            answers, failed = iter(body["Entries"]), failed + body["FailedEntryCount"]
        results = [
            {"ErrorCode": "MalformedDetail", "ErrorMessage": "Detail is malformed."}
            if i in refused
            else next(answers)
            for i in range(len(entries))
        ]
        return eventbridge.json_response({"FailedEntryCount": failed, "Entries": results})

    wrapper.orderflow_patched = True
    return wrapper


def fix_put_events_validation() -> None:
    from ministack.services import eventbridge

    put_events = eventbridge._put_events
    if _skipped("put_events_validation") or getattr(put_events, "orderflow_patched", False):
        return
    eventbridge._put_events = _put_events_checked(eventbridge, put_events)
    LOG.info("orderflow: PutEvents refuses a malformed Detail and a call over 256 KB")


# --------------------------------------------------------------------------------------------
# DLQ redrive: StartMessageMoveTask and ListMessageMoveTasks
# --------------------------------------------------------------------------------------------


def _move_task_handlers(sqs):
    """StartMessageMoveTask and ListMessageMoveTasks (SQS API reference), which ministack 1.5.33
    does not have ("The action StartMessageMoveTask is not valid"), so `ops dlq redrive --all`
    could not run on it.

    The move runs to its end inside StartMessageMoveTask, through ministack's own receive, send
    and delete (so a queue policy applies as it would to those calls), and the task is then
    listed as COMPLETED, as AWS lists a finished one. Each message keeps its body and message
    attributes. Without a DestinationArn AWS moves each message back to the queue it was
    dead-lettered from; ministack does not record that, so such a call is refused with a reason
    rather than guessed."""
    tasks: dict[str, list[dict]] = {}
    lock = threading.Lock()

    def queue(arn: str, what: str) -> dict:
        found = sqs._queue_by_arn(arn) if arn else None
        if found is None:
            raise sqs._Err(
                "ResourceNotFoundException",
                f"The resource that you specified for {what} doesn't exist.",
            )
        return found

    async def start(data: dict, _qurl: str) -> dict:
        source_arn = data.get("SourceArn", "")
        source = queue(source_arn, "the SourceArn parameter")
        destination_arn = data.get("DestinationArn")
        if not destination_arn:
            raise sqs._Err(
                "UnsupportedOperation",
                "orderflow's ministack moves messages only to an explicit DestinationArn "
                "(it does not record which queue dead-lettered a message)",
            )
        destination = queue(destination_arn, "the DestinationArn parameter")
        with lock:
            if any(t["Status"] == "RUNNING" for t in tasks.get(source_arn, [])):
                raise sqs._Err(
                    "UnsupportedOperation", "There is already a task running on this queue."
                )
            task = {
                "TaskHandle": f"{source_arn}|{uuid.uuid4()}",
                "Status": "RUNNING",
                "SourceArn": source_arn,
                "DestinationArn": destination_arn,
                "ApproximateNumberOfMessagesMoved": 0,
                "StartedTimestamp": int(time.time() * 1000),
            }
            tasks.setdefault(source_arn, []).insert(0, task)
        try:
            while True:
                batch = await sqs._act_receive_message(
                    {
                        "QueueUrl": source["url"],
                        "MaxNumberOfMessages": 10,
                        "VisibilityTimeout": 60,
                        "MessageAttributeNames": ["All"],
                    },
                    source["url"],
                )
                messages = batch.get("Messages", [])
                if not messages:
                    break
                for message in messages:
                    sent = {"QueueUrl": destination["url"], "MessageBody": message["Body"]}
                    if message.get("MessageAttributes"):
                        sent["MessageAttributes"] = message["MessageAttributes"]
                    sqs._act_send_message(sent, destination["url"])
                    sqs._act_delete_message(
                        {"QueueUrl": source["url"], "ReceiptHandle": message["ReceiptHandle"]},
                        source["url"],
                    )
                    task["ApproximateNumberOfMessagesMoved"] += 1
            task["Status"] = "COMPLETED"
        except sqs._Err as error:
            task["Status"] = "FAILED"
            task["FailureReason"] = f"{error.code}: {error.message}"
        return {"TaskHandle": task["TaskHandle"]}

    def list_tasks(data: dict, _qurl: str) -> dict:
        source_arn = data.get("SourceArn", "")
        queue(source_arn, "the SourceArn parameter")
        limit = int(data.get("MaxResults", 1))
        with lock:
            results = [dict(t) for t in tasks.get(source_arn, [])[:limit]]
        for result in results:
            if result["Status"] != "RUNNING":
                result.pop("TaskHandle")  # AWS gives the handle of a running task only
        return {"Results": results}

    return {"StartMessageMoveTask": start, "ListMessageMoveTasks": list_tasks}


def fix_message_move_tasks() -> None:
    from ministack.services import sqs

    if _skipped("message_move_tasks") or "StartMessageMoveTask" in sqs._HANDLERS:
        return
    sqs._HANDLERS.update(_move_task_handlers(sqs))
    LOG.info("orderflow: SQS StartMessageMoveTask and ListMessageMoveTasks added")


# --------------------------------------------------------------------------------------------
# Loopback HTTP stands for the HTTPS every AWS endpoint speaks
# --------------------------------------------------------------------------------------------

_LOOPBACK = ("127.", "::1")


def _loopback_as_tls(pin):
    def wrapper(source_ip, secure_transport):
        loopback = str(source_ip).startswith(_LOOPBACK)
        return pin(source_ip, secure_transport or loopback)

    wrapper.orderflow_patched = True
    return wrapper


def loopback_as_tls() -> None:
    """Not a ministack bug, but a difference of the local setup: AWS endpoints answer only
    HTTPS, so on AWS `aws:SecureTransport` is true for every call the functions make; locally
    they speak plain HTTP to 127.0.0.1, and the label bucket's TLS-only policy (Deny `s3:*` when
    `aws:SecureTransport` is false) refused every label. A request from the loopback address is
    therefore treated as having arrived over TLS, which is what ministack already does for a
    request a TLS-terminating proxy forwards (`X-Forwarded-Proto: https`). Everything else about
    the policy is still evaluated; what this cannot show is that plain HTTP is refused."""
    from ministack import app

    if _skipped("loopback_as_tls") or getattr(app.pin_request_origin, "orderflow_patched", False):
        return
    app.pin_request_origin = _loopback_as_tls(app.pin_request_origin)
    LOG.info("orderflow: loopback requests count as TLS (aws:SecureTransport)")


# --------------------------------------------------------------------------------------------
# The authorization log
# --------------------------------------------------------------------------------------------

_log_lock = threading.Lock()


def _logged(enforce, iam_evaluator, path: str):
    """Wraps `iam_evaluator.enforce`, which makes the final decision on every request (identity
    policies, boundaries and the resource's own policy together): one JSON line per decision on
    a role or user. The root caller is allowed everything and is not logged."""

    def wrapper(access_key_id, iam_action, service, region, *args, **kwargs):
        result = enforce(access_key_id, iam_action, service, region, *args, **kwargs)
        identity = iam_evaluator.resolve_caller_identity(access_key_id or "") or {}
        principal = identity.get("userArn", "")
        if principal.endswith(":root"):
            return result
        resource = kwargs.get("resource_arn", args[0] if args else "*")
        decision = "Allow" if result is None else getattr(result, "decision", None)
        line = json.dumps(
            {
                "principal": principal,
                "action": iam_action,
                "resource": resource,
                "decision": decision or type(result).__name__,
            }
        )
        with _log_lock, open(path, "a", encoding="utf-8") as log:
            log.write(line + "\n")
        return result

    wrapper.orderflow_patched = True
    return wrapper


def authorization_log() -> None:
    """With `ORDERFLOW_AUTHZ_LOG=<file>`, every IAM decision on a role or user is appended to
    it as `{"principal", "action", "resource", "decision"}`. The least-privilege test reads it
    after the whole-flow run: which actions each function's role really needed."""
    from ministack.core import iam_evaluator

    path = os.environ.get("ORDERFLOW_AUTHZ_LOG")
    if not path or getattr(iam_evaluator.enforce, "orderflow_patched", False):
        return
    iam_evaluator.enforce = _logged(iam_evaluator.enforce, iam_evaluator, path)
    LOG.info("orderflow: IAM decisions logged to %s", path)


def apply_all() -> None:
    logging.basicConfig(level=logging.INFO)
    fix_events_archive_resource()
    fix_sqs_batch_actions()
    fix_replay_filter_arns()
    fix_put_events_validation()
    fix_message_move_tasks()
    loopback_as_tls()
    authorization_log()
