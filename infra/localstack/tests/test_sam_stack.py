"""A SAM stack as orderflow deploys it: the transform creates the function (run by the process
executor), its queue and the SQS event-source mapping."""

import json

from conftest import drain, python_function_zip, unique, wait_for


def test_sam_function_with_sqs_event_processes_messages(aws):
    s3, cfn, sqs = aws("s3"), aws("cloudformation"), aws("sqs")
    bucket = unique("artifacts")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="fn.zip", Body=python_function_zip("sqs_batch.py"))
    audit = sqs.create_queue(QueueName=unique("audit"))["QueueUrl"]
    template = {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Transform": "AWS::Serverless-2016-10-31",
        "Resources": {
            "Orders": {"Type": "AWS::SQS::Queue", "Properties": {"VisibilityTimeout": 30}},
            "Worker": {
                "Type": "AWS::Serverless::Function",
                "Properties": {
                    "Runtime": "provided.al2023",
                    "Handler": "bootstrap",
                    "CodeUri": f"s3://{bucket}/fn.zip",
                    "Timeout": 10,
                    "Environment": {"Variables": {"AUDIT_QUEUE_URL": audit}},
                    "Events": {
                        "FromOrders": {
                            "Type": "SQS",
                            "Properties": {
                                "Queue": {"Fn::GetAtt": ["Orders", "Arn"]},
                                "BatchSize": 5,
                                "FunctionResponseTypes": ["ReportBatchItemFailures"],
                            },
                        }
                    },
                },
            },
        },
        "Outputs": {"Queue": {"Value": {"Ref": "Orders"}}},
    }
    stack = unique("orderflow-sam")
    cfn.create_stack(
        StackName=stack,
        TemplateBody=json.dumps(template),
        Capabilities=["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"],
    )
    try:
        status = wait_for(
            lambda: (lambda s: None if s.endswith("IN_PROGRESS") else s)(
                cfn.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"]
            ),
            90,
            what="the SAM stack",
        )
        assert status == "CREATE_COMPLETE", cfn.describe_stack_events(StackName=stack)[
            "StackEvents"
        ][:3]
        queue = cfn.describe_stacks(StackName=stack)["Stacks"][0]["Outputs"][0]["OutputValue"]
        for i in range(3):
            sqs.send_message(QueueUrl=queue, MessageBody=json.dumps({"id": i}))
        records = wait_for(
            lambda: (lambda got: got if len(got) >= 3 else None)(drain(sqs, audit)),
            60,
            1,
            "the SAM function to process the messages",
        )
        assert sorted(r["id"] for r in records) == [0, 1, 2]
    finally:
        cfn.delete_stack(StackName=stack)
