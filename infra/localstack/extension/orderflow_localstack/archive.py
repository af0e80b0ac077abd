"""CloudFormation `AWS::Events::Archive`, which LocalStack 4.13 does not implement.

Without this provider LocalStack "deploys" the archive as a no-op (its physical id and every
attribute read `unknown`, with only a warning in its log), so the stack reaches CREATE_COMPLETE
without an archive and a replay fails. This provider creates, updates and deletes the archive
through LocalStack's own EventBridge API, and answers `Ref` (the name) and `Arn`.
"""

from __future__ import annotations

import json

from localstack.services.cloudformation.resource_provider import (
    CloudFormationResourceProviderPlugin,
    OperationStatus,
    ProgressEvent,
    ResourceProvider,
    ResourceRequest,
)

SCHEMA = {
    "typeName": "AWS::Events::Archive",
    "properties": {
        "ArchiveName": {"type": "string"},
        "SourceArn": {"type": "string"},
        "Description": {"type": "string"},
        "EventPattern": {"type": "object"},
        "RetentionDays": {"type": "integer"},
        "Arn": {"type": "string"},
    },
    "required": ["SourceArn"],
    "createOnlyProperties": ["/properties/ArchiveName", "/properties/SourceArn"],
    "primaryIdentifier": ["/properties/ArchiveName"],
    "readOnlyProperties": ["/properties/Arn"],
}


def _settings(model: dict) -> dict:
    settings = {}
    if model.get("Description") is not None:
        settings["Description"] = model["Description"]
    if model.get("EventPattern") is not None:
        pattern = model["EventPattern"]
        settings["EventPattern"] = pattern if isinstance(pattern, str) else json.dumps(pattern)
    if model.get("RetentionDays") is not None:
        settings["RetentionDays"] = int(model["RetentionDays"])
    return settings


class EventsArchiveProvider(ResourceProvider[dict]):
    TYPE = "AWS::Events::Archive"
    SCHEMA = SCHEMA

    def create(self, request: ResourceRequest[dict]) -> ProgressEvent[dict]:
        model = request.desired_state
        if not model.get("ArchiveName"):
            model["ArchiveName"] = f"{request.stack_name}-{request.logical_resource_id}"[:48]
        events = request.aws_client_factory.events
        response = events.create_archive(
            ArchiveName=model["ArchiveName"], EventSourceArn=model["SourceArn"], **_settings(model)
        )
        model["Arn"] = response["ArchiveArn"]
        return ProgressEvent(status=OperationStatus.SUCCESS, resource_model=model)

    def read(self, request: ResourceRequest[dict]) -> ProgressEvent[dict]:
        raise NotImplementedError

    def update(self, request: ResourceRequest[dict]) -> ProgressEvent[dict]:
        model = request.desired_state
        model["ArchiveName"] = request.previous_state["ArchiveName"]
        events = request.aws_client_factory.events
        events.update_archive(ArchiveName=model["ArchiveName"], **_settings(model))
        model["Arn"] = events.describe_archive(ArchiveName=model["ArchiveName"])["ArchiveArn"]
        return ProgressEvent(status=OperationStatus.SUCCESS, resource_model=model)

    def delete(self, request: ResourceRequest[dict]) -> ProgressEvent[dict]:
        model = request.desired_state
        events = request.aws_client_factory.events
        try:
            events.delete_archive(ArchiveName=model["ArchiveName"])
        except events.exceptions.ResourceNotFoundException:
            pass
        return ProgressEvent(status=OperationStatus.SUCCESS, resource_model=model)


class EventsArchiveProviderPlugin(CloudFormationResourceProviderPlugin):
    name = "AWS::Events::Archive"

    def __init__(self):
        self.factory: type[ResourceProvider] | None = None

    def load(self):
        self.factory = EventsArchiveProvider
