"""EventBridge delivering events to SQS targets.

The extension's `patches.send_to_sqs_in_process` replaces how LocalStack sends an event to an SQS
target (a call to the SQS provider, where LocalStack makes a client request to itself), for speed
only. These tests pin what a target gets, which must not change with it: run them against
`ORDERFLOW_SKIP_SQS_DELIVERY_IN_PROCESS=1 cargo xtask cloud up` too (LocalStack's own path), and
they pass the same."""

import json

from conftest import unique, wait_for


def arn_of(sqs, queue: str) -> str:
    return sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]


def receive_one(sqs, queue: str) -> dict:
    """The one message `queue` holds, with all its attributes, deleted as read."""

    def received():
        return sqs.receive_message(
            QueueUrl=queue,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=1,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])

    messages = wait_for(received, 20, 0, f"a message on {queue}")
    assert len(messages) == 1, messages
    sqs.delete_message(QueueUrl=queue, ReceiptHandle=messages[0]["ReceiptHandle"])
    return messages[0]


def bus_with_rule(events, targets: list[dict]) -> str:
    bus = unique("delivery-bus")
    events.create_event_bus(Name=bus)
    events.put_rule(
        Name="to-queues",
        EventBusName=bus,
        EventPattern=json.dumps({"source": ["orderflow.test"]}),
    )
    events.put_targets(Rule="to-queues", EventBusName=bus, Targets=targets)
    return bus


def remove(events, bus: str, target_ids: list[str]) -> None:
    events.remove_targets(Rule="to-queues", EventBusName=bus, Ids=target_ids)
    events.delete_rule(Name="to-queues", EventBusName=bus)
    events.delete_event_bus(Name=bus)


def put(events, bus: str, detail: dict) -> None:
    result = events.put_events(
        Entries=[
            {
                "EventBusName": bus,
                "Source": "orderflow.test",
                "DetailType": "OrderPlaced",
                "Detail": json.dumps(detail),
            }
        ]
    )
    assert result["FailedEntryCount"] == 0, result


def test_an_event_reaches_a_standard_and_a_fifo_target_as_eventbridge_sends_it(aws):
    events, sqs = aws("events"), aws("sqs")
    standard = sqs.create_queue(QueueName=unique("standard"))["QueueUrl"]
    fifo = sqs.create_queue(
        QueueName=unique("ordered") + ".fifo",
        Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"},
    )["QueueUrl"]
    bus = bus_with_rule(
        events,
        [
            {"Id": "standard", "Arn": arn_of(sqs, standard)},
            {
                "Id": "fifo",
                "Arn": arn_of(sqs, fifo),
                "SqsParameters": {"MessageGroupId": "orders"},
            },
        ],
    )
    detail = {"order_id": "o-1", "note": 'ünïcode "quoted" \\ and / slashes'}
    put(events, bus, detail)

    for queue in (standard, fifo):
        message = receive_one(sqs, queue)
        envelope = json.loads(message["Body"])
        assert envelope["detail"] == detail
        assert envelope["detail-type"] == "OrderPlaced"
        assert envelope["source"] == "orderflow.test"
        assert "event-bus-name" not in envelope
        # The body is the envelope as EventBridge's serializer writes it, byte for byte.
        assert message["Body"] == json.dumps(envelope, separators=(",", ":"))
        assert message["Attributes"]["SenderId"] == "000000000000"
        assert "AWSTraceHeader" not in message["Attributes"]
        assert "MessageAttributes" not in message
    assert message["Attributes"]["MessageGroupId"] == "orders"

    remove(events, bus, ["standard", "fifo"])
    sqs.delete_queue(QueueUrl=standard)
    sqs.delete_queue(QueueUrl=fifo)


def test_a_target_whose_queue_is_gone_does_not_stop_the_others(aws):
    events, sqs = aws("events"), aws("sqs")
    gone = sqs.create_queue(QueueName=unique("gone"))["QueueUrl"]
    kept = sqs.create_queue(QueueName=unique("kept"))["QueueUrl"]
    bus = bus_with_rule(
        events,
        [
            {"Id": "gone", "Arn": arn_of(sqs, gone)},
            {"Id": "kept", "Arn": arn_of(sqs, kept)},
        ],
    )
    put(events, bus, {"order_id": "o-1"})
    receive_one(sqs, gone)
    receive_one(sqs, kept)

    sqs.delete_queue(QueueUrl=gone)
    put(events, bus, {"order_id": "o-2"})
    assert json.loads(receive_one(sqs, kept)["Body"])["detail"] == {"order_id": "o-2"}

    remove(events, bus, ["gone", "kept"])
    sqs.delete_queue(QueueUrl=kept)
