"""EventBridge archive and replay.

In LocalStack 4.4.0 to 4.13.1, StartReplay fails with `str.replace() takes no keyword arguments`:
the archived event's `time` is a string where a datetime is expected. The extension's `patches`
module fixes it; with `ORDERFLOW_SKIP_EVENTS_REPLAY_FIX=1 cargo xtask cloud up` (fix off) this
test fails with that InternalError."""

import json
import time
from datetime import UTC, datetime, timedelta

from conftest import unique, wait_for


def take(sqs, queue):
    """The bodies of what one receive (1 s long poll) brings from `queue`, deleted as read."""
    messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1).get(
        "Messages", []
    )
    for m in messages:
        sqs.delete_message(QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"])
    return [json.loads(m["Body"]) for m in messages]


def test_archived_events_replay_to_the_bus(aws):
    events, sqs = aws("events"), aws("sqs")
    bus = unique("orders-bus")
    bus_arn = events.create_event_bus(Name=bus)["EventBusArn"]
    queue = sqs.create_queue(QueueName=unique("replayed"))["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    events.put_rule(
        Name="to-queue",
        EventBusName=bus,
        EventPattern=json.dumps({"source": ["orderflow.test"], "detail-type": ["OrderPlaced"]}),
    )
    events.put_targets(Rule="to-queue", EventBusName=bus, Targets=[{"Id": "q", "Arn": queue_arn}])
    archive = unique("archive")
    archive_arn = events.create_archive(ArchiveName=archive, EventSourceArn=bus_arn)["ArchiveArn"]
    start = datetime.now(UTC) - timedelta(minutes=2)
    result = events.put_events(
        Entries=[
            {
                "EventBusName": bus,
                "Source": "orderflow.test",
                "DetailType": "OrderPlaced",
                "Detail": json.dumps({"order_id": "o-1"}),
            }
        ]
    )
    assert result["FailedEntryCount"] == 0

    def received():
        return take(sqs, queue)

    original = wait_for(received, 20, 0, "the original event")
    assert original[0]["detail"] == {"order_id": "o-1"}
    time.sleep(1)

    replay = unique("replay")
    events.start_replay(
        ReplayName=replay,
        EventSourceArn=archive_arn,
        EventStartTime=start,
        EventEndTime=datetime.now(UTC),
        Destination={"Arn": bus_arn},
    )
    state = wait_for(
        lambda: (lambda s: s if s not in ("STARTING", "RUNNING") else None)(
            events.describe_replay(ReplayName=replay)["State"]
        ),
        20,
        0.5,
        "the replay to finish",
    )
    assert state == "COMPLETED"
    replayed = wait_for(received, 20, 0, "the replayed event")
    assert replayed[0]["detail"] == {"order_id": "o-1"}
    assert replayed[0].get("replay-name") == replay

    events.delete_archive(ArchiveName=archive)
    events.remove_targets(Rule="to-queue", EventBusName=bus, Ids=["q"])
    events.delete_rule(Name="to-queue", EventBusName=bus)
    events.delete_event_bus(Name=bus)


def test_a_cloudformation_archive_is_a_real_archive(aws):
    """LocalStack 4.13 has no provider for AWS::Events::Archive: it reports CREATE_COMPLETE with
    the physical id `unknown` and creates nothing. The extension's `archive` module provides
    one; without it this test fails on the `unknown` id."""
    cfn, events = aws("cloudformation"), aws("events")
    stack = unique("archive-stack")
    template = {
        "Resources": {
            "Bus": {"Type": "AWS::Events::EventBus", "Properties": {"Name": unique("arch-bus")}},
            "Archive": {
                "Type": "AWS::Events::Archive",
                "Properties": {
                    "SourceArn": {"Fn::GetAtt": ["Bus", "Arn"]},
                    "RetentionDays": 3,
                    "EventPattern": {"source": [{"prefix": "orderflow."}]},
                },
            },
        },
        "Outputs": {
            "Name": {"Value": {"Ref": "Archive"}},
            "Arn": {"Value": {"Fn::GetAtt": ["Archive", "Arn"]}},
        },
    }
    cfn.create_stack(StackName=stack, TemplateBody=json.dumps(template))

    def done():
        status = cfn.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"]
        return status if not status.endswith("IN_PROGRESS") else None

    assert wait_for(done, 60, what="the stack") == "CREATE_COMPLETE"
    outputs = {
        o["OutputKey"]: o["OutputValue"]
        for o in cfn.describe_stacks(StackName=stack)["Stacks"][0]["Outputs"]
    }
    assert outputs["Name"] != "unknown"
    described = events.describe_archive(ArchiveName=outputs["Name"])
    assert described["ArchiveArn"] == outputs["Arn"]
    assert described["RetentionDays"] == 3
    assert json.loads(described["EventPattern"]) == {"source": [{"prefix": "orderflow."}]}
    cfn.delete_stack(StackName=stack)
    names = lambda: [a["ArchiveName"] for a in events.list_archives()["Archives"]]  # noqa: E731
    wait_for(lambda: outputs["Name"] not in names(), 60, what="the archive's deletion")


def test_a_replay_reaches_only_the_rules_in_its_filter(aws):
    """On AWS, `Destination.FilterArns` limits a replay to the rules it names. LocalStack 4.13.1
    matches replayed events against every rule; the extension's `patches` module filters them.
    With `ORDERFLOW_SKIP_REPLAY_FILTER_FIX=1 cargo xtask cloud up` the `other` queue receives the
    replayed event and this test fails."""
    events, sqs = aws("events"), aws("sqs")
    bus = unique("filter-bus")
    bus_arn = events.create_event_bus(Name=bus)["EventBusArn"]
    archive = unique("archive")
    archive_arn = events.create_archive(ArchiveName=archive, EventSourceArn=bus_arn)["ArchiveArn"]
    queues, rules = {}, {}
    for name in ("chosen", "other"):
        url = sqs.create_queue(QueueName=unique(name))["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        rules[name] = events.put_rule(
            Name=name,
            EventBusName=bus,
            EventPattern=json.dumps({"source": ["orderflow.test"]}),
        )["RuleArn"]
        events.put_targets(Rule=name, EventBusName=bus, Targets=[{"Id": "q", "Arn": arn}])
        queues[name] = url
    start = datetime.now(UTC) - timedelta(minutes=2)
    events.put_events(
        Entries=[
            {
                "EventBusName": bus,
                "Source": "orderflow.test",
                "DetailType": "OrderPlaced",
                "Detail": json.dumps({"order_id": "o-2"}),
            }
        ]
    )

    def received(name):
        return lambda: take(sqs, queues[name])

    for name in queues:
        wait_for(received(name), 20, 0, f"the original event in {name}")
    time.sleep(1)

    replay = unique("replay")
    events.start_replay(
        ReplayName=replay,
        EventSourceArn=archive_arn,
        EventStartTime=start,
        EventEndTime=datetime.now(UTC),
        Destination={"Arn": bus_arn, "FilterArns": [rules["chosen"]]},
    )
    replayed = wait_for(received("chosen"), 20, 0, "the replayed event")
    assert replayed[0].get("replay-name") == replay
    time.sleep(2)
    assert received("other")() == [], "a rule outside FilterArns got the replayed event"

    events.delete_archive(ArchiveName=archive)
    for name in queues:
        events.remove_targets(Rule=name, EventBusName=bus, Ids=["q"])
        events.delete_rule(Name=name, EventBusName=bus)
        sqs.delete_queue(QueueUrl=queues[name])
    events.delete_event_bus(Name=bus)
