"""SQS DLQ redrive through StartMessageMoveTask, which orderflow adds to ministack.

Run the cloud with `ORDERFLOW_SKIP_MESSAGE_MOVE_TASKS_FIX=1` to see it fail.
"""

import pytest
from botocore.exceptions import ClientError

from conftest import eventually, unique


def _queue(aws, name: str) -> tuple[str, str]:
    url = aws("sqs").create_queue(QueueName=name)["QueueUrl"]
    arn = aws("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    return url, arn


def test_a_move_task_moves_every_message_with_its_attributes(aws):
    """What AWS does (StartMessageMoveTask): every message of the source goes to the
    destination, body and message attributes unchanged, and ListMessageMoveTasks reports the
    task COMPLETED with the number moved."""
    sqs = aws("sqs")
    source_url, source_arn = _queue(aws, unique("orderflow-dlq"))
    destination_url, destination_arn = _queue(aws, unique("orderflow-source"))
    reason = {"orderflow.error_kind": {"DataType": "String", "StringValue": "malformed"}}
    for i in range(12):
        sqs.send_message(QueueUrl=source_url, MessageBody=f"m{i}", MessageAttributes=reason)
    sqs.start_message_move_task(SourceArn=source_arn, DestinationArn=destination_arn)

    def finished():
        results = sqs.list_message_move_tasks(SourceArn=source_arn)["Results"]
        return results if results and results[0]["Status"] != "RUNNING" else None

    task = eventually(finished)[0]
    assert task["Status"] == "COMPLETED", task
    assert task["ApproximateNumberOfMessagesMoved"] == 12
    bodies = set()
    while True:
        got = sqs.receive_message(
            QueueUrl=destination_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
        ).get("Messages", [])
        if not got:
            break
        for m in got:
            assert m["MessageAttributes"]["orderflow.error_kind"]["StringValue"] == "malformed"
            bodies.add(m["Body"])
            sqs.delete_message(QueueUrl=destination_url, ReceiptHandle=m["ReceiptHandle"])
    assert bodies == {f"m{i}" for i in range(12)}
    assert "Messages" not in sqs.receive_message(QueueUrl=source_url, WaitTimeSeconds=1)


def test_a_move_task_without_a_destination_is_refused_with_a_reason(aws):
    _, source_arn = _queue(aws, unique("orderflow-dlq"))
    with pytest.raises(ClientError) as caught:
        aws("sqs").start_message_move_task(SourceArn=source_arn)
    assert "DestinationArn" in caught.value.response["Error"]["Message"]
