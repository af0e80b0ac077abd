"""Fixtures for the ministack tests: boto3 clients on the running cloud, as its root caller and
as a role of the test's own making (ministack enforces IAM on roles, not on root).

Run through `cargo xtask cloud test --cloud ministack` (or `cargo xtask test`), which starts the
cloud first and sets AWS_ENDPOINT_URL. Every resource a test creates has a unique name.
"""

import json
import os
import time
import uuid

import boto3
import pytest
from botocore.config import Config

ENDPOINT = os.environ.get("AWS_ENDPOINT_URL", "http://127.0.0.1:4567")
REGION = "us-east-1"
ACCOUNT = "000000000000"
CONFIG = Config(retries={"total_max_attempts": 1, "mode": "standard"}, read_timeout=60)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def _clients(session: boto3.Session):
    cache = {}

    def client(service):
        if service not in cache:
            cache[service] = session.client(service, endpoint_url=ENDPOINT, config=CONFIG)
        return cache[service]

    return client


@pytest.fixture(scope="session")
def aws():
    """A factory of boto3 clients for ministack's root caller (allowed everything)."""
    return _clients(
        boto3.Session(aws_access_key_id="test", aws_secret_access_key="test", region_name=REGION)
    )


@pytest.fixture(scope="session")
def as_role(aws):
    """`as_role(statements)`: a client factory holding the session credentials of a new role
    whose one inline policy has exactly `statements`."""

    def make(statements: list[dict]):
        name = unique("orderflow-test-role")
        trust = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                    "Action": "sts:AssumeRole",
                }
            ],
        }
        aws("iam").create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))
        aws("iam").put_role_policy(
            RoleName=name,
            PolicyName="test",
            PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": statements}),
        )
        credentials = aws("sts").assume_role(
            RoleArn=f"arn:aws:iam::{ACCOUNT}:role/{name}", RoleSessionName="test"
        )["Credentials"]
        session = boto3.Session(
            aws_access_key_id=credentials["AccessKeyId"],
            aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"],
            region_name=REGION,
        )
        client = _clients(session)
        client.role_name = name
        return client

    return make


def eventually(check, timeout: float = 15.0, interval: float = 0.2):
    """Calls `check` until it returns something truthy, and returns that; fails after
    `timeout` seconds with the last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            assert value, f"not true within {timeout} s: {value!r}"
            return value
        time.sleep(interval)
