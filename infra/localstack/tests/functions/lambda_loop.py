"""A minimal Lambda runtime client for the test functions: the Runtime API's next/response/error.

Test functions are Python scripts named `bootstrap` that import this and call `serve(handler)`,
so each test exercises exactly what the process executor serves to a real custom runtime.
"""

import json
import os
import sys
import urllib.request

API = f"http://{os.environ['AWS_LAMBDA_RUNTIME_API']}/2018-06-01/runtime"


class Context:
    def __init__(self, headers):
        self.request_id = headers["Lambda-Runtime-Aws-Request-Id"]
        self.deadline_ms = int(headers["Lambda-Runtime-Deadline-Ms"])
        self.function_arn = headers["Lambda-Runtime-Invoked-Function-Arn"]
        self.trace_id = headers.get("Lambda-Runtime-Trace-Id", "")


def _post(path, body, headers=None):
    request = urllib.request.Request(
        API + path, data=json.dumps(body).encode(), method="POST", headers=headers or {}
    )
    urllib.request.urlopen(request).read()


def init_error(error_type, message):
    _post(
        "/init/error",
        {"errorType": error_type, "errorMessage": message},
        {"Lambda-Runtime-Function-Error-Type": error_type},
    )


def serve(handler):
    while True:
        with urllib.request.urlopen(API + "/invocation/next") as response:
            context = Context(response.headers)
            event = json.loads(response.read() or b"null")
        try:
            result = handler(event, context)
        except Exception as err:  # noqa: BLE001 - reported to the caller, as AWS does
            error_type = type(err).__name__
            _post(
                f"/invocation/{context.request_id}/error",
                {"errorType": error_type, "errorMessage": str(err)},
                {"Lambda-Runtime-Function-Error-Type": error_type},
            )
            continue
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
        _post(f"/invocation/{context.request_id}/response", result)
