"""Baselines of the local cloud, run by `cargo xtask bench cloud`.

Prints LocalStack's raw SQS hop rate (send -> receive -> delete) and the invoke latency through
the process executor, warm and cold, p50 and p99. Every loop is bounded in count; everything
talks to the local cloud only (AWS_ENDPOINT_URL, 127.0.0.1).

The function is ORDERFLOW_BOOTSTRAP (a real Rust function) when set, else a Python runtime
loop, which is slower to start: the output says which.
"""

import argparse
import io
import json
import os
import statistics
import sys
import time
import uuid
import zipfile
from pathlib import Path

import boto3
from botocore.config import Config

HERE = Path(__file__).parent
ENDPOINT = os.environ.get("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
ROLE = "arn:aws:iam::000000000000:role/lambda-role"


def client(service):
    return boto3.client(
        service,
        endpoint_url=ENDPOINT,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(retries={"total_max_attempts": 1}, max_pool_connections=4),
    )


def pct(samples, p):
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def sqs_hops(n_single: int, n_batched: int) -> None:
    sqs = client("sqs")
    url = sqs.create_queue(QueueName=f"bench-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    try:
        body = json.dumps({"order_id": "o-1", "amount_minor": 1250, "currency": "EUR"})
        started = time.perf_counter()
        for _ in range(n_single):
            sqs.send_message(QueueUrl=url, MessageBody=body)
            message = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1)["Messages"][0]
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        single = n_single / (time.perf_counter() - started)

        started = time.perf_counter()
        moved = 0
        while moved < n_batched:
            entries = [{"Id": str(i), "MessageBody": body} for i in range(10)]
            sqs.send_message_batch(QueueUrl=url, Entries=entries)
            got = []
            while len(got) < 10:
                got += sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10 - len(got)).get(
                    "Messages", []
                )
            sqs.delete_message_batch(
                QueueUrl=url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)
                ],
            )
            moved += len(got)
        batched = moved / (time.perf_counter() - started)
    finally:
        sqs.delete_queue(QueueUrl=url)
    hop = "sqs hop (send -> receive -> delete)"
    print(f"{hop}, 1 message per call: {single:8.1f} msgs/s  (n={n_single})")
    print(f"{hop}, batches of 10:      {batched:8.1f} msgs/s  (n={n_batched})")


def function_zip() -> tuple[bytes, str]:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:

        def add(name, content):
            info = zipfile.ZipInfo(name)
            info.external_attr = 0o100755 << 16
            archive.writestr(info, content)

        bootstrap = os.environ.get("ORDERFLOW_BOOTSTRAP")
        if bootstrap:
            add("bootstrap", Path(bootstrap).read_bytes())
            kind = f"rust ({bootstrap})"
        else:
            functions = HERE / "tests" / "functions"
            add("bootstrap", f"#!{sys.executable}\n" + (functions / "kitchen_sink.py").read_text())
            add("lambda_loop.py", (functions / "lambda_loop.py").read_text())
            kind = "python runtime loop (set ORDERFLOW_BOOTSTRAP for a Rust function)"
    return buf.getvalue(), kind


def create(lam, code: bytes) -> str:
    name = f"bench-{uuid.uuid4().hex[:8]}"
    lam.create_function(
        FunctionName=name,
        Runtime="provided.al2023",
        Handler="bootstrap",
        Role=ROLE,
        Code={"ZipFile": code},
        Timeout=10,
        MemorySize=128,
        # An orderflow function then needs no table, bus or queue: this measures the path.
        Environment={"Variables": {"ORDERFLOW_ADAPTERS": "memory"}},
    )
    lam.get_waiter("function_active_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 0.2, "MaxAttempts": 300}
    )
    return name


def timed_invoke(lam, name: str, payload: bytes) -> float:
    started = time.perf_counter()
    response = lam.invoke(FunctionName=name, Payload=payload)
    response["Payload"].read()
    elapsed = (time.perf_counter() - started) * 1000
    if "FunctionError" in response:
        raise SystemExit(f"bench function failed: {response}")
    return elapsed


def invokes(n_warm: int, n_cold: int) -> None:
    lam = client("lambda")
    code, kind = function_zip()
    payload = json.dumps({"Records": [], "action": "echo"}).encode()
    names = []
    try:
        name = create(lam, code)
        names.append(name)
        timed_invoke(lam, name, payload)  # cold start, not counted
        warm = [timed_invoke(lam, name, payload) for _ in range(n_warm)]
        cold = []
        for _ in range(n_cold):
            name = create(lam, code)
            names.append(name)
            cold.append(timed_invoke(lam, name, payload))
    finally:
        for name in names:
            lam.delete_function(FunctionName=name)
    print(f"invoke through the process executor, function: {kind}")
    print(
        f"  warm: p50 {statistics.median(warm):7.2f} ms  p99 {pct(warm, 99):7.2f} ms  (n={n_warm})"
    )
    print(
        f"  cold: p50 {statistics.median(cold):7.2f} ms  p99 {pct(cold, 99):7.2f} ms  (n={n_cold})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sqs", type=int, default=300, help="single-message hops")
    parser.add_argument(
        "--sqs-batched", type=int, default=1000, help="messages moved in batches of 10"
    )
    parser.add_argument("--warm", type=int, default=300, help="warm invokes")
    parser.add_argument("--cold", type=int, default=20, help="cold invokes (one new function each)")
    args = parser.parse_args()
    print(f"local cloud at {ENDPOINT}; {os.cpu_count()} cores")
    sqs_hops(args.sqs, args.sqs_batched)
    invokes(args.warm, args.cold)


if __name__ == "__main__":
    main()
