"""orderflow's LocalStack extension: what LocalStack in host mode (no Docker) needs for orderflow.

Layout:
- `dynamodb`: DynamoDB served by moto (`PROVIDER_OVERRIDE_DYNAMODB=moto`), instead of
  DynamoDB Local, which needs a JDK and jars that cannot be downloaded here.
- `process_executor`: a Lambda runtime executor (`LAMBDA_RUNTIME_EXECUTOR=process`) that runs a
  function's `bootstrap` as a host process and serves it the Lambda Runtime API.
- `runtime_api`: that Runtime API server, one per execution environment.
- `patches`: fixes to LocalStack itself, applied when it starts (EventBridge StartReplay's times
  and its `FilterArns`; SQS message bodies delivered to functions verbatim), and one for speed
  (EventBridge's deliveries to SQS targets made as calls, not client requests).

The entry points in `pyproject.toml` are how LocalStack finds each of these.
"""

__version__ = "0.1.0"
