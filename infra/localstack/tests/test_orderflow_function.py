"""One of orderflow's real Rust functions, run through the process executor with its AWS adapters,
so the Rust AWS SDK inside it talks to LocalStack (DynamoDB on moto, EventBridge, SQS, S3).

ORDERFLOW_BOOTSTRAP names the binary: a built function (`target/release/payment`, or `cargo
lambda build`'s `bootstrap`); its file name, or ORDERFLOW_FUNCTION, says which function it is
(payment, inventory or shipping), which picks its samples under `events/<function>/`. Without
ORDERFLOW_BOOTSTRAP these tests fail rather than skip, so the suite cannot pass without ever
running real code (`-k 'not real_rust'` deselects them).
"""

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from conftest import invoke, unique, wait_for, zip_code

ROOT = Path(__file__).resolve().parents[3]
FUNCTIONS = ("payment", "inventory", "shipping")


def bootstrap() -> tuple[bytes, str]:
    path = os.environ.get("ORDERFLOW_BOOTSTRAP")
    if not path:
        pytest.fail(
            "ORDERFLOW_BOOTSTRAP is not set: point it at a built orderflow function, e.g. "
            "`cargo build --release -p payment` then ORDERFLOW_BOOTSTRAP=target/release/payment"
        )
    binary = Path(path)
    if not binary.is_file():
        pytest.fail(f"ORDERFLOW_BOOTSTRAP={path} is not a file")
    function = os.environ.get("ORDERFLOW_FUNCTION") or next(
        (f for f in FUNCTIONS if f in binary.name), FUNCTIONS[0]
    )
    # A debug build zips to more than Lambda's 50 MB upload limit (which LocalStack enforces);
    # release builds are stripped already (profile.release strip = "symbols").
    if binary.stat().st_size > 40_000_000 and shutil.which("strip"):
        with tempfile.TemporaryDirectory() as tmp:
            stripped = Path(tmp) / "bootstrap"
            subprocess.run(["strip", "-o", str(stripped), str(binary)], check=True)
            return stripped.read_bytes(), function
    return binary.read_bytes(), function


@pytest.fixture
def real_function(aws, make_function):
    """The binary as a provided.al2023 function, with its table, bus, DLQ and bucket, and
    the payment provider's ledger table (payment refuses to start without one)."""
    code, function = bootstrap()
    table = unique("orderflow")
    ledger = unique("orderflow-ledger")
    for name in (table, ledger):
        aws("dynamodb").create_table(
            TableName=name,
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
        )
    bus = unique("orderflow-bus")
    aws("events").create_event_bus(Name=bus)
    dlq = aws("sqs").create_queue(QueueName=unique("orderflow-dlq"))["QueueUrl"]
    bucket = unique("labels")
    aws("s3").create_bucket(Bucket=bucket)
    env = {
        "ORDERFLOW_TABLE": table,
        "ORDERFLOW_BUS": bus,
        "ORDERFLOW_DLQ_URL": dlq,
        "ORDERFLOW_LABEL_BUCKET": bucket,
        "ORDERFLOW_PROVIDER_LEDGER": ledger,
        "RUST_LOG": "info",
    }
    name = make_function(zip_code({"bootstrap": code}), timeout=15, env=env, MemorySize=256)
    yield name, function, table, dlq
    aws("dynamodb").delete_table(TableName=table)
    aws("dynamodb").delete_table(TableName=ledger)
    aws("events").delete_event_bus(Name=bus)
    aws("sqs").delete_queue(QueueUrl=dlq)


def test_real_rust_function_handles_an_empty_sqs_batch(aws, real_function):
    name, _, _, _ = real_function
    response, body = invoke(aws("lambda"), name, {"Records": []})
    assert response["StatusCode"] == 200
    assert "FunctionError" not in response, body
    assert body == {"batchItemFailures": []}


def test_real_rust_function_processes_its_sample_through_localstack(aws, real_function):
    name, function, table, _ = real_function
    sample = ROOT / "events" / function / "order-placed.sqs.json"
    if not sample.is_file():
        pytest.fail(f"no sample {sample} for function {function}")
    event = json.loads(sample.read_text())
    response, body = invoke(aws("lambda"), name, event, LogType="Tail")
    assert "FunctionError" not in response, body
    assert body == {"batchItemFailures": []}
    # Its DynamoDB writes went to LocalStack: at least the idempotency record is there.
    items = aws("dynamodb").scan(TableName=table)["Items"]
    assert items, "the function wrote nothing to its table"
    # A redelivery of the same record is absorbed by idempotency, not failed.
    response, body = invoke(aws("lambda"), name, event)
    assert "FunctionError" not in response, body
    assert body == {"batchItemFailures": []}


def test_real_rust_function_driven_by_an_sqs_event_source_mapping(aws, real_function):
    """LocalStack's own SQS poller feeds the binary: the good record is processed and deleted,
    the poison one goes to the function's own DLQ with a reason (a permanent error), and
    nothing is left in the source queue."""
    name, function, table, dlq = real_function
    sqs = aws("sqs")
    queue = sqs.create_queue(
        QueueName=unique("orderflow-in"), Attributes={"VisibilityTimeout": "5"}
    )["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    good = json.loads((ROOT / "events" / function / "order-placed.sqs.json").read_text())
    poison = json.loads((ROOT / "events" / function / "poison-malformed-json.sqs.json").read_text())
    sqs.send_message(QueueUrl=queue, MessageBody=good["Records"][0]["body"])
    sqs.send_message(QueueUrl=queue, MessageBody=poison["Records"][0]["body"])
    mapping = aws("lambda").create_event_source_mapping(
        EventSourceArn=arn,
        FunctionName=name,
        BatchSize=10,
        MaximumBatchingWindowInSeconds=1,
        FunctionResponseTypes=["ReportBatchItemFailures"],
    )["UUID"]
    try:
        dead = wait_for(
            lambda: sqs.receive_message(
                QueueUrl=dlq, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
            ).get("Messages"),
            30,
            what="the poison record in the function's DLQ",
        )
        assert len(dead) == 1
        assert dead[0]["Body"] == poison["Records"][0]["body"]
        assert dead[0].get("MessageAttributes"), "the dead letter carries no reason"

        def source_empty():
            attrs = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])["Attributes"]
            return (
                attrs["ApproximateNumberOfMessages"] == "0"
                and attrs["ApproximateNumberOfMessagesNotVisible"] == "0"
            )

        wait_for(source_empty, 30, what="the source queue to be empty")
        assert aws("dynamodb").scan(TableName=table)["Items"]
    finally:
        aws("lambda").delete_event_source_mapping(UUID=mapping)
        sqs.delete_queue(QueueUrl=queue)
