"""IAM as ministack enforces it, with orderflow's fix for the SQS batch calls.

Run the cloud with `ORDERFLOW_SKIP_SQS_BATCH_ACTIONS_FIX=1` to see
`test_sqs_batch_calls_are_authorized_as_their_single_message_actions` fail.
"""

import json
import os

import pytest
from botocore.exceptions import ClientError

from conftest import ACCOUNT, REGION, unique


def _denied(call) -> str:
    with pytest.raises(ClientError) as caught:
        call()
    return caught.value.response["Error"]["Code"]


@pytest.fixture
def table(aws):
    name = unique("orderflow-iam")
    aws("dynamodb").create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    yield name
    aws("dynamodb").delete_table(TableName=name)


def test_batch_get_item_is_an_action_of_its_own(as_role, table):
    """What AWS does (DynamoDB API permissions reference): BatchGetItem is authorized as
    `dynamodb:BatchGetItem`; `dynamodb:GetItem` does not cover it. This is the denial that every
    record met on the stack's old roles."""
    arn = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{table}"
    role = as_role([{"Effect": "Allow", "Action": "dynamodb:GetItem", "Resource": arn}])
    key = {"pk": {"S": "k"}}
    role("dynamodb").get_item(TableName=table, Key=key)
    code = _denied(lambda: role("dynamodb").batch_get_item(RequestItems={table: {"Keys": [key]}}))
    assert code == "AccessDeniedException"


def test_sqs_batch_calls_are_authorized_as_their_single_message_actions(aws, as_role):
    """What AWS does: the Service Authorization Reference for Amazon SQS has no `*Batch`
    action, and the SQS API reference says a grant of SendMessage, DeleteMessage or
    ChangeMessageVisibility also grants the batch versions. ministack 1.5.33 refused them."""
    url = aws("sqs").create_queue(QueueName=unique("orderflow-iam"))["QueueUrl"]
    arn = aws("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    actions = ["sqs:SendMessage", "sqs:ReceiveMessage", "sqs:ChangeMessageVisibility"]
    actions.append("sqs:DeleteMessage")
    role = as_role([{"Effect": "Allow", "Action": actions, "Resource": arn}])
    sqs = role("sqs")
    sent = sqs.send_message_batch(
        QueueUrl=url, Entries=[{"Id": "a", "MessageBody": "1"}, {"Id": "b", "MessageBody": "2"}]
    )
    assert not sent.get("Failed"), sent
    received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
    handles = [m["ReceiptHandle"] for m in received["Messages"]]
    entries = [{"Id": str(i), "ReceiptHandle": h} for i, h in enumerate(handles)]
    changed = sqs.change_message_visibility_batch(
        QueueUrl=url, Entries=[{**e, "VisibilityTimeout": 0} for e in entries]
    )
    assert not changed.get("Failed"), changed
    deleted = sqs.delete_message_batch(QueueUrl=url, Entries=entries)
    assert not deleted.get("Failed"), deleted
    aws("sqs").delete_queue(QueueUrl=url)


def test_a_batch_call_is_still_refused_without_its_single_message_action(aws, as_role):
    """The fix maps names; it does not open anything: without sqs:ChangeMessageVisibility the
    batch call is refused."""
    url = aws("sqs").create_queue(QueueName=unique("orderflow-iam"))["QueueUrl"]
    arn = aws("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    role = as_role([{"Effect": "Allow", "Action": "sqs:ReceiveMessage", "Resource": arn}])
    aws("sqs").send_message(QueueUrl=url, MessageBody="1")
    received = role("sqs").receive_message(QueueUrl=url, WaitTimeSeconds=1)
    handle = received["Messages"][0]["ReceiptHandle"]
    code = _denied(
        lambda: role("sqs").change_message_visibility_batch(
            QueueUrl=url, Entries=[{"Id": "a", "ReceiptHandle": handle, "VisibilityTimeout": 0}]
        )
    )
    assert code in ("AccessDenied", "AccessDeniedException"), code
    aws("sqs").delete_queue(QueueUrl=url)


def test_every_decision_on_a_role_is_in_the_authorization_log(aws, as_role):
    """The least-privilege test reads this log: it must hold each role's allowed and refused
    calls, under the role's assumed-role ARN."""
    log = os.environ["ORDERFLOW_AUTHZ_LOG"]
    url = aws("sqs").create_queue(QueueName=unique("orderflow-iam"))["QueueUrl"]
    arn = aws("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    role = as_role([{"Effect": "Allow", "Action": "sqs:GetQueueAttributes", "Resource": arn}])
    role("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["All"])
    _denied(lambda: role("sqs").send_message(QueueUrl=url, MessageBody="x"))
    with open(log, encoding="utf-8") as lines:
        mine = [
            json.loads(line)
            for line in lines
            if f"assumed-role/{role.role_name}/" in json.loads(line)["principal"]
        ]
    seen = {(d["action"], d["resource"], d["decision"]) for d in mine}
    assert ("sqs:GetQueueAttributes", arn, "Allow") in seen, mine
    assert ("sqs:SendMessage", arn, "ImplicitDeny") in seen, mine
    aws("sqs").delete_queue(QueueUrl=url)


def test_a_tls_only_bucket_takes_a_role_s_put_over_loopback(aws, as_role):
    """The label bucket denies `s3:*` when `aws:SecureTransport` is false. On AWS the SDK
    speaks only HTTPS, so the deny never meets orderflow's functions; locally they speak HTTP to
    127.0.0.1, which the launcher counts as TLS. Without that every label was refused."""
    bucket = unique("orderflow-tls")
    aws("s3").create_bucket(Bucket=bucket)
    arn = f"arn:aws:s3:::{bucket}"
    deny_plain_http = {
        "Sid": "TlsOnly",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [arn, f"{arn}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }
    policy = {"Version": "2012-10-17", "Statement": [deny_plain_http]}
    aws("s3").put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))
    role = as_role([{"Effect": "Allow", "Action": "s3:PutObject", "Resource": f"{arn}/*"}])
    role("s3").put_object(Bucket=bucket, Key="label.pdf", Body=b"%PDF-1.4")
    code = _denied(lambda: role("s3").get_object(Bucket=bucket, Key="label.pdf"))
    assert code == "AccessDenied", "only what the role grants is allowed"
