# The `bootstrap` of the general-purpose test function; the event's "action" picks a behaviour.
import os
import sys
import time

import lambda_loop

print("init: kitchen sink starting", flush=True)
if os.environ.get("FAIL_INIT") == "1":
    lambda_loop.init_error("Runtime.ConfigError", "FAIL_INIT is set")
    sys.exit(1)


def handler(event, context):
    action = event.get("action")
    if action == "echo":
        return {
            "event": event,
            "pid": os.getpid(),
            "cwd": os.getcwd(),
            "request_id": context.request_id,
            "deadline_ms": context.deadline_ms,
            "function_arn": context.function_arn,
            "trace_id": context.trace_id,
            "env": {k: v for k, v in os.environ.items() if not k.startswith("_")},
        }
    if action == "error":
        raise ValueError(event.get("message", "boom"))
    if action == "sleep":
        time.sleep(float(event["seconds"]))
        return {"slept": event["seconds"], "pid": os.getpid()}
    if action == "log":
        print(f"stdout line {event['marker']}")
        print(f"stderr line {event['marker']}", file=sys.stderr)
        return {"logged": event["marker"]}
    if action == "crash":
        sys.stdout.flush()
        os._exit(3)
    raise KeyError(f"unknown action {action!r}")


lambda_loop.serve(handler)
