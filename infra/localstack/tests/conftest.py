"""Fixtures for the plugin tests: boto3 clients on the running local cloud, and Lambda helpers.

Run through `cargo xtask cloud test` (or `cargo xtask test`), which starts the cloud first and
sets AWS_ENDPOINT_URL. Every resource a test creates has a unique name and is deleted after it.
"""

import io
import json
import os
import sys
import time
import uuid
import zipfile
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

ENDPOINT = os.environ.get("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
REGION = "us-east-1"
FUNCTIONS = Path(__file__).parent / "functions"
ROLE = "arn:aws:iam::000000000000:role/lambda-role"


@pytest.fixture(scope="session")
def aws():
    """A factory of boto3 clients for the local cloud."""
    session = boto3.Session(
        aws_access_key_id="test", aws_secret_access_key="test", region_name=REGION
    )
    config = Config(retries={"total_max_attempts": 1, "mode": "standard"}, read_timeout=120)
    cache = {}

    def client(service):
        if service not in cache:
            cache[service] = session.client(service, endpoint_url=ENDPOINT, config=config)
        return cache[service]

    return client


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def python_bootstrap(script: str) -> str:
    """A test function's `bootstrap`: the script, run by this venv's python (which has boto3)."""
    return f"#!{sys.executable}\n" + (FUNCTIONS / script).read_text()


def zip_code(files: dict[str, str | bytes]) -> bytes:
    """A deployment package; every file is executable, as `bootstrap` must be."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            info = zipfile.ZipInfo(name)
            info.external_attr = 0o100755 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, content)
    return buf.getvalue()


def python_function_zip(script: str) -> bytes:
    return zip_code(
        {
            "bootstrap": python_bootstrap(script),
            "lambda_loop.py": (FUNCTIONS / "lambda_loop.py").read_text(),
        }
    )


def wait_active(lambda_client, name: str, timeout: float = 60) -> dict:
    deadline = time.time() + timeout
    while True:
        config = lambda_client.get_function_configuration(FunctionName=name)
        if config["State"] == "Active":
            return config
        if config["State"] == "Failed" or time.time() > deadline:
            raise AssertionError(
                f"function {name} is {config['State']}: {config.get('StateReason')}"
            )
        time.sleep(0.2)


@pytest.fixture
def make_function(aws):
    """Creates a provided.al2023 function from a zip, waits until Active, deletes it afterwards."""
    created = []

    def make(zip_bytes: bytes, timeout: int = 10, env: dict | None = None, **kwargs) -> str:
        name = kwargs.pop("name", None) or unique("fn")
        aws("lambda").create_function(
            FunctionName=name,
            Runtime="provided.al2023",
            Handler="bootstrap",
            Role=ROLE,
            Code={"ZipFile": zip_bytes},
            Timeout=timeout,
            Environment={"Variables": env or {}},
            **{"MemorySize": 128, **kwargs},
        )
        created.append(name)
        wait_active(aws("lambda"), name)
        return name

    yield make
    for name in created:
        try:
            aws("lambda").delete_function(FunctionName=name)
        except aws("lambda").exceptions.ResourceNotFoundException:
            pass


def invoke(lambda_client, name: str, event, **kwargs) -> tuple[dict, object]:
    """Invokes synchronously; returns the raw response and the decoded payload."""
    response = lambda_client.invoke(FunctionName=name, Payload=json.dumps(event).encode(), **kwargs)
    raw = response["Payload"].read()
    return response, json.loads(raw) if raw else None


def wait_for(predicate, timeout: float, interval: float = 0.5, what: str = "condition"):
    deadline = time.time() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.time() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


_drained: dict[str, list] = {}


def drain(sqs, url: str) -> list:
    """Every message received so far from `url`, accumulated across calls and deleted as read.

    The test functions' audit records (bodies with `receive_count`) come back decoded, other
    messages as they are."""
    got = _drained.setdefault(url, [])
    while True:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            return got
        for message in messages:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            body = json.loads(message["Body"])
            got.append(body if "receive_count" in body else message)
