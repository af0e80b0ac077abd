"""DynamoDB served by moto, selected with `PROVIDER_OVERRIDE_DYNAMODB=moto`.

LocalStack's own DynamoDB provider forwards to DynamoDB Local, which needs a JDK 21, the
DynamoDB Local jars and a patch agent, all downloaded at first use; none of these can be
fetched here. moto implements what orderflow uses (CreateTable, conditional Put/Update,
TransactWriteItems with CancellationReasons, UpdateTimeToLive, Query), so the provider below
implements nothing itself and lets LocalStack's moto dispatcher serve every operation, the same
way LocalStack serves its other moto-backed services.
"""

from localstack.aws.api.dynamodb import DynamodbApi
from localstack.services.plugins import Service, ServiceLifecycleHook, aws_provider


class MotoDynamoDBProvider(DynamodbApi, ServiceLifecycleHook):
    """Every DynamoDB operation falls through to moto."""


@aws_provider(api="dynamodb", name="moto")
def dynamodb_moto() -> Service:
    from localstack.services.moto import MotoFallbackDispatcher

    return Service.for_provider(
        MotoDynamoDBProvider(), dispatch_table_factory=MotoFallbackDispatcher
    )
