# The `bootstrap` of the SQS test function: records whose body has "fail": true are reported in
# batchItemFailures; every record handled is written to the AUDIT_QUEUE_URL queue, through the
# AWS SDK inside the function (so this also proves AWS_ENDPOINT_URL reaches LocalStack).
import json
import os

import boto3

import lambda_loop

sqs = boto3.client("sqs")
AUDIT = os.environ["AUDIT_QUEUE_URL"]


def handler(event, context):
    failures = []
    for record in event["Records"]:
        body = json.loads(record["body"])
        sqs.send_message(
            QueueUrl=AUDIT,
            MessageBody=json.dumps(
                {
                    "id": body["id"],
                    "receive_count": int(record["attributes"]["ApproximateReceiveCount"]),
                    "batch_size": len(event["Records"]),
                }
            ),
        )
        if body.get("fail"):
            failures.append({"itemIdentifier": record["messageId"]})
    return {"batchItemFailures": failures}


lambda_loop.serve(handler)
