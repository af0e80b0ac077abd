"""The process runtime executor, through the Lambda API as a client sees it."""

import base64
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor

from conftest import ENDPOINT, invoke, python_function_zip, unique, wait_for, zip_code


def test_invoke_returns_the_payload_with_runtime_api_headers_and_env(aws, make_function):
    name = make_function(python_function_zip("kitchen_sink.py"), env={"GREETING": "hello"})
    before_ms = int(time.time() * 1000)
    response, body = invoke(aws("lambda"), name, {"action": "echo", "n": 1})

    assert response["StatusCode"] == 200
    assert "FunctionError" not in response
    assert body["event"] == {"action": "echo", "n": 1}
    # The documented /next headers.
    assert body["request_id"] == response["ResponseMetadata"]["RequestId"]
    assert body["function_arn"].endswith(f":function:{name}")
    assert body["trace_id"].startswith("Root=")
    assert before_ms + 9_000 <= body["deadline_ms"] <= int(time.time() * 1000) + 10_000
    # The configured environment, plus what makes the SDK inside reach LocalStack.
    env = body["env"]
    assert env["GREETING"] == "hello"
    assert env["AWS_ENDPOINT_URL"] == ENDPOINT
    assert env["AWS_REGION"] == "us-east-1"
    assert env["AWS_ACCESS_KEY_ID"] and env["AWS_SECRET_ACCESS_KEY"]
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == name
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "128"
    assert env["LAMBDA_TASK_ROOT"] == body["cwd"]
    assert os.path.isfile(os.path.join(env["LAMBDA_TASK_ROOT"], "bootstrap"))
    assert "LOCALSTACK_RUNTIME_ENDPOINT" not in env


def test_warm_invokes_reuse_the_process(aws, make_function):
    name = make_function(python_function_zip("kitchen_sink.py"))
    _, first = invoke(aws("lambda"), name, {"action": "echo"})
    _, second = invoke(aws("lambda"), name, {"action": "echo"})
    assert first["pid"] == second["pid"]
    assert first["request_id"] != second["request_id"]


def test_function_error_comes_back_with_its_type(aws, make_function):
    name = make_function(python_function_zip("kitchen_sink.py"))
    response, body = invoke(aws("lambda"), name, {"action": "error", "message": "bad order"})
    assert response["FunctionError"] == "Unhandled"
    assert body == {"errorType": "ValueError", "errorMessage": "bad order"}
    # The environment survives a handled error.
    response, body = invoke(aws("lambda"), name, {"action": "echo"})
    assert "FunctionError" not in response


def test_timeout_kills_the_runtime_and_reports_it(aws, make_function):
    name = make_function(python_function_zip("kitchen_sink.py"), timeout=1)
    _, warm = invoke(aws("lambda"), name, {"action": "echo"})
    started = time.time()
    response, body = invoke(aws("lambda"), name, {"action": "sleep", "seconds": 5})
    elapsed = time.time() - started

    assert response["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Sandbox.Timedout"
    assert "Task timed out after 1.00 seconds" in body["errorMessage"]
    assert elapsed < 3.5, f"timeout took {elapsed:.1f} s"
    # The runtime was killed (whole process group) and a new one serves the next invoke.
    assert wait_for(
        lambda: not os.path.exists(f"/proc/{warm['pid']}"), 5, 0.1, "the old runtime to die"
    )
    response, body = invoke(aws("lambda"), name, {"action": "echo"})
    assert "FunctionError" not in response
    assert body["pid"] != warm["pid"]


def test_crashed_runtime_reports_exit_error_and_restarts(aws, make_function):
    name = make_function(python_function_zip("kitchen_sink.py"))
    response, body = invoke(aws("lambda"), name, {"action": "crash"})
    assert response["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Runtime.ExitError"
    assert "exit status 3" in body["errorMessage"]
    response, body = invoke(aws("lambda"), name, {"action": "echo"})
    assert "FunctionError" not in response


def test_init_error_is_reported(aws, make_function):
    name = make_function(python_function_zip("kitchen_sink.py"), env={"FAIL_INIT": "1"})
    response, body = invoke(aws("lambda"), name, {"action": "echo"})
    assert response["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Runtime.ConfigError"


def test_missing_bootstrap_is_an_invalid_entrypoint(aws, make_function):
    name = make_function(zip_code({"not-bootstrap": "#!/bin/sh\n"}))
    response, body = invoke(aws("lambda"), name, {})
    assert response["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Runtime.InvalidEntrypoint"


def test_shell_bootstrap_speaks_the_runtime_api(aws, make_function):
    # Any executable `bootstrap` works, here a shell script with curl-free plain HTTP.
    script = r"""#!/usr/bin/env bash
set -euo pipefail
API="$AWS_LAMBDA_RUNTIME_API"
exec 3<>"/dev/tcp/${API%:*}/${API#*:}"
while true; do
  printf 'GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: x\r\n\r\n' >&3
  id=""; len=0
  while IFS= read -r line <&3; do
    line="${line%$'\r'}"
    [[ -z "$line" ]] && break
    case "${line,,}" in
      lambda-runtime-aws-request-id:*) id="${line#*: }";;
      content-length:*) len="${line#*: }";;
    esac
  done
  body=$(head -c "$len" <&3)
  echo "shell got $body"
  reply="{\"shell\":$body}"
  post="POST /2018-06-01/runtime/invocation/$id/response HTTP/1.1"
  printf '%s\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s' "$post" "${#reply}" "$reply" >&3
  while IFS= read -r line <&3; do line="${line%$'\r'}"; [[ -z "$line" ]] && break; done
  head -c 15 <&3 >/dev/null  # {"status":"OK"}
done
"""
    name = make_function(zip_code({"bootstrap": script}))
    response, body = invoke(aws("lambda"), name, {"x": 1})
    assert "FunctionError" not in response, body
    assert body == {"shell": {"x": 1}}


def test_logs_reach_cloudwatch_and_tail(aws, make_function):
    name = make_function(python_function_zip("kitchen_sink.py"))
    marker = unique("marker")
    response, _ = invoke(aws("lambda"), name, {"action": "log", "marker": marker}, LogType="Tail")
    tail = base64.b64decode(response["LogResult"]).decode()
    assert f"stdout line {marker}" in tail
    assert f"stderr line {marker}" in tail
    assert "REPORT RequestId:" in tail

    def logged():
        try:
            events = aws("logs").filter_log_events(logGroupName=f"/aws/lambda/{name}")["events"]
        except aws("logs").exceptions.ResourceNotFoundException:
            return None
        messages = [e["message"] for e in events]
        return messages if any(marker in m for m in messages) else None

    messages = wait_for(logged, 15, what="the logs in CloudWatch Logs")
    assert any(m.startswith("START RequestId:") for m in messages)
    assert any("init: kitchen sink starting" in m for m in messages)
    assert any(m.startswith(f"stderr line {marker}") for m in messages)


def test_concurrent_invokes_run_in_separate_environments(aws, make_function):
    name = make_function(python_function_zip("kitchen_sink.py"))
    started = time.time()
    with ThreadPoolExecutor(4) as pool:
        results = list(
            pool.map(
                lambda _: invoke(aws("lambda"), name, {"action": "sleep", "seconds": 2}), range(4)
            )
        )
    elapsed = time.time() - started
    assert all("FunctionError" not in response for response, _ in results)
    assert len({body["pid"] for _, body in results}) == 4
    assert elapsed < 7, f"4 concurrent 2 s invokes took {elapsed:.1f} s"


def test_delete_function_stops_its_runtimes(aws, make_function):
    name = make_function(python_function_zip("kitchen_sink.py"))
    _, body = invoke(aws("lambda"), name, {"action": "echo"})
    pid = body["pid"]
    assert os.path.exists(f"/proc/{pid}")
    aws("lambda").delete_function(FunctionName=name)
    wait_for(lambda: not os.path.exists(f"/proc/{pid}"), 15, 0.2, "the runtime to stop")


def test_reserved_concurrency_is_respected(aws, make_function):
    name = make_function(python_function_zip("kitchen_sink.py"))
    aws("lambda").put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=1)
    with ThreadPoolExecutor(2) as pool:
        futures = [
            pool.submit(invoke, aws("lambda"), name, {"action": "sleep", "seconds": 2}),
            pool.submit(invoke, aws("lambda"), name, {"action": "sleep", "seconds": 2}),
        ]
        outcomes = []
        for future in futures:
            try:
                outcomes.append(future.result()[0]["StatusCode"])
            except aws("lambda").exceptions.TooManyRequestsException:
                outcomes.append("throttled")
    assert sorted(map(str, outcomes)) == ["200", "throttled"]


def test_payload_round_trips_unicode_and_size(aws, make_function):
    name = make_function(python_function_zip("kitchen_sink.py"))
    big = "é" * 200_000
    _, body = invoke(aws("lambda"), name, {"action": "echo", "big": big})
    assert body["event"]["big"] == big
    assert json.dumps(body)  # valid JSON
