# The `bootstrap` of the SQS echo function: every record's message id and body, exactly as the
# function received them, go to the AUDIT_QUEUE_URL queue.
import json
import os

import boto3

import lambda_loop

sqs = boto3.client("sqs")
AUDIT = os.environ["AUDIT_QUEUE_URL"]


def handler(event, context):
    for record in event["Records"]:
        sqs.send_message(
            QueueUrl=AUDIT,
            MessageBody=json.dumps({"message_id": record["messageId"], "body": record["body"]}),
        )
    return {"batchItemFailures": []}


lambda_loop.serve(handler)
