"""EventBridge through ministack's CloudFormation and replays, with orderflow's fixes.

Run the cloud with `ORDERFLOW_SKIP_EVENTS_ARCHIVE_RESOURCE_FIX=1`,
`ORDERFLOW_SKIP_REPLAY_FILTER_FIX=1` or `ORDERFLOW_SKIP_PUT_EVENTS_VALIDATION_FIX=1` to see the test
of that fix fail.
"""

import json
import time
from datetime import UTC, datetime, timedelta

from conftest import eventually, unique

ARCHIVE_TEMPLATE = {
    "Resources": {
        "Bus": {"Type": "AWS::Events::EventBus", "Properties": {"Name": {"Ref": "AWS::StackName"}}},
        "Archive": {
            "Type": "AWS::Events::Archive",
            "Properties": {
                "ArchiveName": {"Fn::Sub": "${AWS::StackName}-events"},
                "SourceArn": {"Fn::GetAtt": ["Bus", "Arn"]},
                "RetentionDays": 30,
                "EventPattern": {"source": [{"prefix": "orderflow."}]},
            },
        },
    },
    "Outputs": {
        "ArchiveName": {"Value": {"Ref": "Archive"}},
        "ArchiveArn": {"Value": {"Fn::GetAtt": ["Archive", "Arn"]}},
    },
}


def _wait_stack(cfn, name: str) -> dict:
    def done():
        stack = cfn.describe_stacks(StackName=name)["Stacks"][0]
        return stack if not stack["StackStatus"].endswith("IN_PROGRESS") else None

    return eventually(done, timeout=60)


def test_a_stack_with_an_archive_deploys_and_the_archive_records_the_bus(aws):
    """What AWS does (AWS::Events::Archive): the archive is created on its SourceArn's bus,
    `Ref` is its name and `GetAtt Arn` its ARN, and deleting the stack deletes it. ministack
    1.5.33 refused the template ("Unrecognized resource types")."""
    cfn, events = aws("cloudformation"), aws("events")
    name = unique("orderflow-archive")
    cfn.create_stack(StackName=name, TemplateBody=json.dumps(ARCHIVE_TEMPLATE))
    stack = _wait_stack(cfn, name)
    assert stack["StackStatus"] == "CREATE_COMPLETE", stack.get("StackStatusReason")
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    assert outputs["ArchiveName"] == f"{name}-events"
    archive = events.describe_archive(ArchiveName=outputs["ArchiveName"])
    assert archive["ArchiveArn"] == outputs["ArchiveArn"]
    assert archive["EventSourceArn"].endswith(f":event-bus/{name}")
    assert json.loads(archive["EventPattern"]) == {"source": [{"prefix": "orderflow."}]}
    assert archive["RetentionDays"] == 30

    entry = {"EventBusName": name, "Source": "orderflow.test", "DetailType": "T", "Detail": "{}"}
    other = {**entry, "Source": "elsewhere"}
    assert events.put_events(Entries=[entry, other])["FailedEntryCount"] == 0
    counted = events.describe_archive(ArchiveName=outputs["ArchiveName"])["EventCount"]
    assert counted == 1, "the archive keeps only what its pattern matches"

    cfn.delete_stack(StackName=name)
    eventually(lambda: not events.list_archives(NamePrefix=name)["Archives"], timeout=60)


def _queue_behind_rule(aws, bus: str, rule: str) -> tuple[str, str]:
    sqs, events = aws("sqs"), aws("events")
    url = sqs.create_queue(QueueName=unique("orderflow-replay"))["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    rule_arn = events.put_rule(
        Name=rule, EventBusName=bus, EventPattern=json.dumps({"source": ["orderflow.test"]})
    )["RuleArn"]
    events.put_targets(Rule=rule, EventBusName=bus, Targets=[{"Id": "q", "Arn": queue_arn}])
    return url, rule_arn


def _drain(sqs, url: str, wait: int = 1) -> list[dict]:
    got = []
    while True:
        batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=wait)
        messages = batch.get("Messages", [])
        if not messages:
            return got
        got.extend(json.loads(m["Body"]) for m in messages)
        for m in messages:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])


def test_a_replay_reaches_only_the_rules_in_its_filter(aws):
    """What AWS does (StartReplay, ReplayDestination.FilterArns): "A list of ARNs for rules to
    replay events to." ministack 1.5.33 replayed to every rule on the bus."""
    sqs, events = aws("sqs"), aws("events")
    bus = unique("orderflow-replay")
    bus_arn = events.create_event_bus(Name=bus)["EventBusArn"]
    archive = events.create_archive(ArchiveName=bus, EventSourceArn=bus_arn)["ArchiveArn"]
    chosen_url, chosen_arn = _queue_behind_rule(aws, bus, f"{bus}-chosen")
    other_url, _ = _queue_behind_rule(aws, bus, f"{bus}-other")
    start = datetime.now(UTC) - timedelta(seconds=5)
    entry = {"EventBusName": bus, "Source": "orderflow.test", "DetailType": "T", "Detail": "{}"}
    assert events.put_events(Entries=[entry])["FailedEntryCount"] == 0
    assert len(_drain(sqs, chosen_url)) == 1 and len(_drain(sqs, other_url)) == 1
    time.sleep(1)
    replay = unique("replay")
    events.start_replay(
        ReplayName=replay,
        EventSourceArn=archive,
        EventStartTime=start,
        EventEndTime=datetime.now(UTC),
        Destination={"Arn": bus_arn, "FilterArns": [chosen_arn]},
    )
    eventually(lambda: events.describe_replay(ReplayName=replay)["State"] == "COMPLETED")
    replayed = _drain(sqs, chosen_url, wait=2)
    assert len(replayed) == 1, replayed
    assert replayed[0].get("replay-name") == replay, replayed
    assert _drain(sqs, other_url, wait=2) == [], "a rule outside FilterArns got the replayed event"


def test_put_events_refuses_a_detail_that_is_no_json_object_and_a_call_over_256_kb(aws):
    events, sqs = aws("events"), aws("sqs")
    bus = unique("refusing-bus")
    events.create_event_bus(Name=bus)
    queue = sqs.create_queue(QueueName=unique("refusing"))["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    events.put_rule(Name="all", EventBusName=bus, EventPattern=json.dumps({"source": ["t"]}))
    events.put_targets(Rule="all", EventBusName=bus, Targets=[{"Id": "q", "Arn": queue_arn}])

    def entry(detail: str) -> dict:
        return {"EventBusName": bus, "Source": "t", "DetailType": "T", "Detail": detail}

    answer = events.put_events(Entries=[entry("{"), entry('{"ok": 1}'), entry("[1]"), entry('"x"')])
    codes = [e.get("ErrorCode") for e in answer["Entries"]]
    assert codes == ["MalformedDetail", None, "MalformedDetail", "MalformedDetail"], answer
    assert answer["FailedEntryCount"] == 3

    refused = None
    try:
        events.put_events(Entries=[entry(json.dumps({"pad": "x" * 300_000}))])
    except events.exceptions.ClientError as err:
        refused = err.response["Error"]["Code"]
    assert refused == "ValidationException"

    def delivered():
        got = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        return [json.loads(m["Body"])["detail"] for m in got.get("Messages", [])] or None

    # Only the valid entry reached the rule's target.
    assert eventually(delivered, timeout=10) == [{"ok": 1}]
