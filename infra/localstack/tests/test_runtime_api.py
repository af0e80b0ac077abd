"""The Runtime API server on its own (no LocalStack needed): the documented routes and headers,
and the generation rule that keeps a killed runtime's long-poll from taking the next invoke."""

import json
import threading
import time
import urllib.error
import urllib.request

import pytest

from orderflow_localstack.runtime_api import PendingInvoke, RuntimeApi


@pytest.fixture
def api():
    server = RuntimeApi()
    yield server
    server.close()


def url(api, path):
    return f"http://{api.address}/2018-06-01/runtime{path}"


def pending(request_id="req-1"):
    return PendingInvoke(
        request_id,
        b'{"x":1}',
        1_900_000_000_000,
        "arn:aws:lambda:us-east-1:0:function:f",
        "Root=1-a-b",
    )


def next_in_thread(api):
    box = {}

    def run():
        try:
            with urllib.request.urlopen(url(api, "/invocation/next"), timeout=10) as response:
                box["status"], box["headers"], box["body"] = (
                    response.status,
                    response.headers,
                    response.read(),
                )
        except urllib.error.HTTPError as err:
            box["status"] = err.code

    thread = threading.Thread(target=run)
    thread.start()
    return thread, box


def wait_ready(api, generation):
    deadline = time.time() + 5
    while api.ready_generation != generation:
        assert time.time() < deadline, "no /next arrived"
        time.sleep(0.01)


def post(api, path, body, headers=None):
    request = urllib.request.Request(
        url(api, path), data=body, method="POST", headers=headers or {}
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as err:
        return err.code


def test_next_carries_the_documented_headers_and_response_completes(api):
    generation = api.new_generation()
    thread, box = next_in_thread(api)
    wait_ready(api, generation)
    api.submit(pending())
    thread.join(5)
    assert box["status"] == 200
    assert box["body"] == b'{"x":1}'
    assert box["headers"]["Lambda-Runtime-Aws-Request-Id"] == "req-1"
    assert box["headers"]["Lambda-Runtime-Deadline-Ms"] == "1900000000000"
    assert box["headers"]["Lambda-Runtime-Invoked-Function-Arn"].endswith(":function:f")
    assert box["headers"]["Lambda-Runtime-Trace-Id"] == "Root=1-a-b"
    assert post(api, "/invocation/other/response", b"{}") == 400  # not the invocation in flight
    assert post(api, "/invocation/req-1/response", b'{"ok":true}') == 202
    assert api.outcome.payload == b'{"ok":true}' and not api.outcome.is_error


def test_error_without_json_body_is_wrapped_with_its_type(api):
    generation = api.new_generation()
    thread, _ = next_in_thread(api)
    wait_ready(api, generation)
    api.submit(pending())
    thread.join(5)
    status = post(
        api,
        "/invocation/req-1/error",
        b"plain text",
        {"Lambda-Runtime-Function-Error-Type": "Oops"},
    )
    assert status == 202
    assert api.outcome.is_error
    assert json.loads(api.outcome.payload) == {"errorMessage": "plain text", "errorType": "Oops"}


def test_init_error_is_recorded(api):
    api.new_generation()
    assert post(api, "/init/error", b'{"errorType":"Runtime.X","errorMessage":"m"}') == 202
    assert json.loads(api.init_error)["errorType"] == "Runtime.X"


def test_a_stale_long_poll_never_takes_the_next_invocation(api):
    old = api.new_generation()
    stale, stale_box = next_in_thread(api)
    wait_ready(api, old)
    # The runtime is killed and replaced: its dangling /next is dropped, not served.
    new = api.new_generation()
    stale.join(5)
    assert stale_box["status"] == 410
    fresh, fresh_box = next_in_thread(api)
    wait_ready(api, new)
    api.submit(pending("req-2"))
    fresh.join(5)
    assert fresh_box["status"] == 200
    assert fresh_box["headers"]["Lambda-Runtime-Aws-Request-Id"] == "req-2"
