"""LocalStack's own SQS event-source mapping driving a function run by the process executor."""

import json

from conftest import drain, python_function_zip, unique, wait_for

MAX_RECEIVE = 2


def test_report_batch_item_failures_retries_then_dead_letters(aws, make_function):
    sqs = aws("sqs")
    dlq = sqs.create_queue(QueueName=unique("orders-dlq"))["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    queue = sqs.create_queue(
        QueueName=unique("orders"),
        Attributes={
            "VisibilityTimeout": "2",
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": MAX_RECEIVE}
            ),
        },
    )["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    audit = sqs.create_queue(QueueName=unique("audit"))["QueueUrl"]

    name = make_function(python_function_zip("sqs_batch.py"), env={"AUDIT_QUEUE_URL": audit})
    ids = list(range(8))
    failing = {2, 5}
    for i in ids:
        sqs.send_message(QueueUrl=queue, MessageBody=json.dumps({"id": i, "fail": i in failing}))
    mapping = aws("lambda").create_event_source_mapping(
        EventSourceArn=queue_arn,
        FunctionName=name,
        BatchSize=10,
        MaximumBatchingWindowInSeconds=1,
        FunctionResponseTypes=["ReportBatchItemFailures"],
    )["UUID"]
    try:
        dead = wait_for(
            lambda: (lambda got: got if len(got) >= len(failing) else None)(drain(sqs, dlq)),
            60,
            1,
            "the failing records in the DLQ",
        )
        audit_records = drain(sqs, audit)
    finally:
        aws("lambda").delete_event_source_mapping(UUID=mapping)

    dead_ids = sorted(json.loads(m["Body"])["id"] for m in dead)
    assert dead_ids == sorted(failing)
    seen: dict[int, list[int]] = {}
    for record in audit_records:
        seen.setdefault(record["id"], []).append(record["receive_count"])
    # Good records were handled once and deleted; reported ones were retried maxReceiveCount times.
    for i in ids:
        expected = MAX_RECEIVE if i in failing else 1
        assert len(seen.get(i, [])) == expected, (i, seen)
    attrs = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])["Attributes"]
    assert attrs["ApproximateNumberOfMessages"] == "0"
    assert attrs["ApproximateNumberOfMessagesNotVisible"] == "0"


# Bodies LocalStack 4.13.1's SQS poller changed or choked on (see the extension's
# `patches._VerbatimBodies`); on AWS a function gets each body as it was sent.
VERBATIM = {
    "compact": '{"id":1,"items":[1,2]}',
    "duplicate key": '{"type":"OrderPlaced","type":"PaymentDeclined"}',
    "beyond float": '{"n":1e400}',
    "a JSON string": '"OrderPlaced"',
    "a number": "12345678901234567890",
    "not JSON": "place my order",
    "deep": "[" * 5000 + "]" * 5000,
}


def test_a_function_gets_each_body_exactly_as_sent(aws, make_function):
    """With `ORDERFLOW_SKIP_SQS_BODY_FIX=1 cargo xtask cloud up` (fix off) this fails: the JSON
    bodies arrive re-formatted, and the deep one fails the poll of its whole batch."""
    sqs = aws("sqs")
    queue = sqs.create_queue(QueueName=unique("verbatim"), Attributes={"VisibilityTimeout": "5"})[
        "QueueUrl"
    ]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    audit = sqs.create_queue(QueueName=unique("echoed"))["QueueUrl"]
    name = make_function(python_function_zip("sqs_echo.py"), env={"AUDIT_QUEUE_URL": audit})
    sent = {
        sqs.send_message(QueueUrl=queue, MessageBody=body)["MessageId"]: label
        for label, body in VERBATIM.items()
    }
    mapping = aws("lambda").create_event_source_mapping(
        EventSourceArn=queue_arn, FunctionName=name, BatchSize=10, MaximumBatchingWindowInSeconds=1
    )["UUID"]
    got: dict[str, str] = {}
    try:

        def all_echoed():
            for m in drain(sqs, audit):
                echoed = json.loads(m["Body"])
                got[echoed["message_id"]] = echoed["body"]
            return len(got) >= len(sent) or None

        try:
            wait_for(all_echoed, 30, 1, "every body echoed")
        except AssertionError:
            pass  # said below, with what did arrive
    finally:
        aws("lambda").delete_event_source_mapping(UUID=mapping)
    changed = {sent[i]: body[:80] for i, body in got.items() if body != VERBATIM[sent[i]]}
    missing = sorted(label for i, label in sent.items() if i not in got)
    assert not changed and not missing, f"changed on the way: {changed}; never arrived: {missing}"
