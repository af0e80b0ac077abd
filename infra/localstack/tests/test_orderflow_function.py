"""One of orderflow's real Rust functions, run through the process executor.

ORDERFLOW_BOOTSTRAP names the binary: the workspace's release build of a function (or `cargo
lambda build`'s `bootstrap`). `cargo xtask test` builds it and sets it; without it this test
fails rather than skips, so the suite cannot pass without ever running real code.
"""

import os
from pathlib import Path

import pytest

from conftest import invoke, zip_code


def bootstrap_bytes() -> bytes:
    path = os.environ.get("ORDERFLOW_BOOTSTRAP")
    if not path:
        pytest.fail(
            "ORDERFLOW_BOOTSTRAP is not set: point it at a built orderflow function, e.g. "
            "`cargo build --release -p payment` then ORDERFLOW_BOOTSTRAP=target/release/payment "
            "(`-k 'not real_rust'` deselects this test)"
        )
    binary = Path(path)
    if not binary.is_file():
        pytest.fail(f"ORDERFLOW_BOOTSTRAP={path} is not a file")
    return binary.read_bytes()


def test_real_rust_function_handles_an_empty_sqs_batch(aws, make_function):
    name = make_function(zip_code({"bootstrap": bootstrap_bytes()}), timeout=10)
    response, body = invoke(aws("lambda"), name, {"Records": []}, LogType="Tail")
    assert response["StatusCode"] == 200
    assert "FunctionError" not in response, body
    assert body == {"batchItemFailures": []}
    # Warm: the same process answers again.
    response, body = invoke(aws("lambda"), name, {"Records": []})
    assert "FunctionError" not in response, body
