"""A Lambda runtime executor that runs a function's `bootstrap` as a host process.

Selected with `LAMBDA_RUNTIME_EXECUTOR=process`. LocalStack's Docker executor needs a Docker
engine and downloads its Go init binary; neither exists here. This executor takes the Go init's
place, doing what AWS's sandbox does for a `provided.al2023` / `provided.al2` function:

- serves the Runtime API (`runtime_api`) and starts `bootstrap` from the unpacked zip, in its own
  session, with `AWS_LAMBDA_RUNTIME_API` pointing at that server;
- reports the environment ready at the runtime's first `/next`, or fails its start on
  `/init/error` or an early exit;
- enforces the function timeout: the process group is killed and the invoke returns a
  `Sandbox.Timedout` error; a crashed or killed runtime starts again on the next invoke;
- returns stdout/stderr with each result, framed by AWS's START/END/REPORT lines, which
  LocalStack stores in CloudWatch Logs (`/aws/lambda/<name>`) and in `--log-type Tail`.

LocalStack makes one executor per execution environment, and one environment per concurrent
invoke (up to the function's concurrency); idle ones are stopped after `LAMBDA_KEEPALIVE_MS`.

Limits: the binary runs natively (host architecture and glibc), with no layers, no extensions and
no memory limit.
"""

from __future__ import annotations

import atexit
import json
import logging
import math
import os
import select
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from localstack import config
from localstack.services.lambda_.invocation.executor_endpoint import (
    ShutdownDuringStartup,
    StatusErrorException,
)
from localstack.services.lambda_.invocation.lambda_models import FunctionVersion, InvocationResult
from localstack.services.lambda_.invocation.plugins import RuntimeExecutorPlugin
from localstack.services.lambda_.invocation.runtime_executor import (
    LambdaRuntimeException,
    RuntimeExecutor,
)

from orderflow_localstack.runtime_api import PendingInvoke, RuntimeApi

LOG = logging.getLogger(__name__)

# Keep at most this much of an environment's output in memory (for `get_logs`).
MAX_BUFFERED_OUTPUT = 1 << 20

# Every live executor, so that LocalStack's exit kills what its shutdown hooks missed.
_LIVE: set[ProcessRuntimeExecutor] = set()
_LIVE_LOCK = threading.Lock()


def _pid_dir() -> Path | None:
    """Where each running bootstrap's process group is recorded, so that `cargo xtask cloud down`
    can kill any that outlive a LocalStack that had to be SIGKILLed."""
    state = os.environ.get("ORDERFLOW_LOCALSTACK_STATE")
    if not state:
        return None
    path = Path(state) / "lambda-pids"
    path.mkdir(parents=True, exist_ok=True)
    return path


class OutputCapture:
    """Collects a process's combined stdout/stderr, and hands out what arrived since a mark.

    A reader thread keeps the pipe drained. Reads happen under `lock` on a non-blocking fd, so
    `take()` can drain what is left in the pipe itself: everything the runtime wrote before it
    posted its response is then part of that invocation's logs."""

    def __init__(self, pipe) -> None:
        self._fd = pipe.fileno()
        self._pipe = pipe  # keep the file object (and so the fd) alive
        os.set_blocking(self._fd, False)
        self.lock = threading.Lock()
        self._buf = bytearray()
        self._base = 0  # absolute offset of _buf[0]
        self._eof = False
        self._thread = threading.Thread(
            target=self._run, name="orderflow-lambda-output", daemon=True
        )
        self._thread.start()

    def _read_available(self) -> None:
        while not self._eof:
            try:
                chunk = os.read(self._fd, 65536)
            except BlockingIOError:
                return
            except OSError:
                chunk = b""
            if not chunk:
                self._eof = True
                return
            self._buf += chunk
            if len(self._buf) > MAX_BUFFERED_OUTPUT:
                drop = len(self._buf) - MAX_BUFFERED_OUTPUT
                del self._buf[:drop]
                self._base += drop

    def _run(self) -> None:
        while not self._eof:
            try:
                select.select([self._fd], [], [], 1.0)
            except (OSError, ValueError):
                return
            with self.lock:
                self._read_available()

    @property
    def offset(self) -> int:
        with self.lock:
            self._read_available()
            return self._base + len(self._buf)

    def take(self, since: int) -> tuple[str, int]:
        """The output after absolute offset `since`, and the new offset."""
        with self.lock:
            self._read_available()
            start = max(since - self._base, 0)
            text = bytes(self._buf[start:]).decode("utf-8", "replace")
            return text, self._base + len(self._buf)

    def all(self) -> str:
        with self.lock:
            return bytes(self._buf).decode("utf-8", "replace")

    def close(self, wait: float = 0.5) -> None:
        self._thread.join(timeout=wait)
        try:
            self._pipe.close()
        except OSError:
            pass


def _error_payload(error_type: str, message: str) -> bytes:
    return json.dumps({"errorType": error_type, "errorMessage": message}).encode()


def _ts() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class ProcessRuntimeExecutor(RuntimeExecutor):
    """One Lambda execution environment: one Runtime API server and one `bootstrap` process."""

    def __init__(self, id: str, function_version: FunctionVersion) -> None:  # noqa: A002
        super().__init__(id, function_version)
        self.api = RuntimeApi()
        self.env: dict[str, str] = {}
        self.proc: subprocess.Popen | None = None
        self.output: OutputCapture | None = None
        self.log_offset = 0
        self.generation = 0
        self.home = tempfile.mkdtemp(prefix=f"orderflow-lambda-{id[:8]}-")
        self.init_duration_ms: float | None = None
        self.stopped = threading.Event()
        self._pid_file: Path | None = None
        with _LIVE_LOCK:
            _LIVE.add(self)

    # ---- where things are

    def code_dir(self) -> Path:
        code = self.function_version.config.code
        if code is None:
            raise LambdaRuntimeException("the process executor runs zip-packaged functions only")
        return Path(code.get_unzipped_code_location())

    def get_address(self) -> str:
        return "127.0.0.1"

    def get_endpoint_from_executor(self) -> str:
        """LocalStack's gateway as a host process sees it."""
        host = config.GATEWAY_LISTEN[0].host
        return "127.0.0.1" if host in ("", "0.0.0.0", "::") else host

    def get_runtime_endpoint(self) -> str:
        return f"http://{self.api.address}"

    # ---- lifecycle

    def _environment(self, env_vars: dict[str, str]) -> dict[str, str]:
        """The function's environment, built from scratch (not from LocalStack's own): AWS's
        reserved variables, the function's configured ones, and what makes the AWS SDK inside
        the function reach LocalStack (AWS_ENDPOINT_URL, region, the role's credentials)."""
        code = str(self.code_dir())
        env = {
            "PATH": f"{code}:{code}/bin:/usr/local/bin:/usr/bin:/bin",
            "LD_LIBRARY_PATH": f"{code}/lib:{code}",
            "LANG": "en_US.UTF-8",
            "HOME": self.home,
        }
        endpoint = f"http://{self.get_endpoint_from_executor()}:{config.GATEWAY_LISTEN[0].port}"
        env["AWS_ENDPOINT_URL"] = endpoint
        for key, value in env_vars.items():
            # LocalStack's internal callback variables are for its Docker init, not for us.
            if key.startswith("LOCALSTACK_") and key != "LOCALSTACK_HOSTNAME":
                continue
            if value is None:
                continue
            env[key] = str(value)
        env.update(
            {
                "LAMBDA_TASK_ROOT": code,
                "LAMBDA_RUNTIME_DIR": code,
                "AWS_LAMBDA_RUNTIME_API": self.api.address,
            }
        )
        return env

    def start(self, env_vars: dict[str, str]) -> None:
        self.env = self._environment(env_vars)
        started = time.perf_counter()
        self._spawn_and_wait_ready(config.LAMBDA_RUNTIME_ENVIRONMENT_TIMEOUT)
        self.init_duration_ms = (time.perf_counter() - started) * 1000

    def _spawn_and_wait_ready(self, timeout_s: float) -> None:
        """Starts `bootstrap` and blocks until its first `/next`. Raises `StatusErrorException`
        on `/init/error` or an early exit, `ShutdownDuringStartup` if `stop()` was called."""
        if self.stopped.is_set():
            raise ShutdownDuringStartup("execution environment stopped before start")
        bootstrap = self.code_dir() / "bootstrap"
        if not bootstrap.is_file():
            raise StatusErrorException(
                "no bootstrap",
                _error_payload(
                    "Runtime.InvalidEntrypoint",
                    "Couldn't find valid bootstrap(s): [/var/task/bootstrap /opt/bootstrap]",
                ),
            )
        generation = self.api.new_generation()
        self.generation = generation
        try:
            proc = subprocess.Popen(
                [str(bootstrap)],
                cwd=str(self.code_dir()),
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, killed as a whole
                close_fds=True,
            )
        except OSError as err:
            raise StatusErrorException(
                "bootstrap failed to start",
                _error_payload("Runtime.InvalidEntrypoint", f"{type(err).__name__}: {err}"),
            ) from err
        self.proc = proc
        self.output = OutputCapture(proc.stdout)
        self.log_offset = 0
        self._record_pid(proc.pid, bootstrap)
        threading.Thread(
            target=self._watch, args=(proc, generation), name="orderflow-lambda-watch", daemon=True
        ).start()

        deadline = time.monotonic() + timeout_s
        api = self.api
        with api.cond:
            while True:
                if api.shutdown or self.stopped.is_set():
                    failure = "stopped"
                    break
                if api.init_error is not None:
                    failure = "init_error"
                    break
                if api.ready_generation == generation:
                    return
                if api.exited_generation >= generation:
                    failure = "exited"
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    failure = "timeout"
                    break
                api.cond.wait(remaining)
            init_error = api.init_error
        self._kill()
        if failure == "stopped":
            raise ShutdownDuringStartup("execution environment stopped during startup")
        if failure == "init_error":
            raise StatusErrorException("init error", init_error)
        if failure == "exited":
            raise StatusErrorException(
                "runtime exited during init",
                _error_payload(
                    "Runtime.ExitError",
                    f"RequestId: Error: Runtime exited with error: {self._exit_text()}",
                ),
            )
        raise StatusErrorException(
            "runtime init timed out",
            _error_payload("Sandbox.Timedout", f"Init did not finish within {timeout_s} seconds"),
        )

    def _watch(self, proc: subprocess.Popen, generation: int) -> None:
        proc.wait()
        self.api.process_exited(generation)

    def _exit_text(self) -> str:
        code = self.proc.returncode if self.proc else None
        if code is None:
            return "unknown"
        if code < 0:
            return f"signal: {signal.Signals(-code).name.lower().removeprefix('sig')}"
        return f"exit status {code}"

    def _record_pid(self, pid: int, bootstrap: Path) -> None:
        pid_dir = _pid_dir()
        if pid_dir is None:
            return
        self._pid_file = pid_dir / str(pid)
        try:
            self._pid_file.write_text(str(bootstrap))
        except OSError:
            self._pid_file = None

    def _kill(self) -> None:
        """Kills the runtime's whole process group, and waits for it."""
        proc = self.proc
        if proc is None:
            return
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                LOG.warning("lambda runtime %s did not die after SIGKILL", proc.pid)
        else:
            # The leader is gone; children it left in its group still go.
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        if self._pid_file is not None:
            self._pid_file.unlink(missing_ok=True)
            self._pid_file = None

    def stop(self) -> None:
        self.stopped.set()
        self.api.close()  # wakes start() and invoke(), and drops any /next long-poll
        self._kill()
        if self.output is not None:
            self.output.close()
        shutil.rmtree(self.home, ignore_errors=True)
        with _LIVE_LOCK:
            _LIVE.discard(self)

    # ---- invocations

    def _logs(
        self, request_id: str, started: float, extra: str = "", cold_ms: float | None = None
    ) -> str:
        output = ""
        if self.output is not None:
            output, self.log_offset = self.output.take(self.log_offset)
        if output and not output.endswith("\n"):
            output += "\n"
        duration = (time.perf_counter() - started) * 1000
        memory = self.function_version.config.memory_size
        init = f"Init Duration: {cold_ms:.2f} ms\t" if cold_ms is not None else ""
        return (
            f"START RequestId: {request_id} Version: {self.function_version.id.qualifier}\n"
            f"{output}{extra}"
            f"END RequestId: {request_id}\n"
            f"REPORT RequestId: {request_id}\tDuration: {duration:.2f} ms\t"
            f"Billed Duration: {max(1, math.ceil(duration))} ms\tMemory Size: {memory} MB\t"
            f"Max Memory Used: {memory} MB\t{init}\n"
        )

    def invoke(self, payload: dict[str, str]) -> InvocationResult:
        request_id = payload["invoke-id"]
        started = time.perf_counter()
        cold_ms = self.init_duration_ms
        self.init_duration_ms = None
        timeout_s = int(self.function_version.config.timeout)

        # A runtime that crashed or was killed (timeout) starts again, as AWS does.
        if self.proc is None or self.proc.poll() is not None:
            try:
                self._spawn_and_wait_ready(config.LAMBDA_RUNTIME_ENVIRONMENT_TIMEOUT)
            except StatusErrorException as err:
                return InvocationResult(
                    request_id, err.payload, True, self._logs(request_id, started)
                )
            cold_ms = (time.perf_counter() - started) * 1000

        api = self.api
        generation = self.generation
        deadline = time.monotonic() + timeout_s
        api.submit(
            PendingInvoke(
                request_id=request_id,
                payload=payload.get("payload", "").encode(),
                deadline_ms=int(time.time() * 1000) + timeout_s * 1000,
                function_arn=payload.get(
                    "invoked-function-arn", self.function_version.qualified_arn
                ),
                trace_id=payload.get("trace-id", ""),
            )
        )
        with api.cond:
            while True:
                if api.outcome is not None:
                    outcome = api.outcome
                    api.outcome = None
                    break
                if api.shutdown:
                    outcome = "stopped"
                    break
                if api.exited_generation >= generation:
                    outcome = "exited"
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    outcome = "timeout"
                    break
                api.cond.wait(remaining)

        if outcome == "timeout":
            self._kill()
            message = f"Task timed out after {timeout_s:.2f} seconds"
            logs = self._logs(request_id, started, f"{_ts()} {request_id} {message}\n", cold_ms)
            body = _error_payload("Sandbox.Timedout", f"RequestId: {request_id} Error: {message}")
            return InvocationResult(request_id, body, True, logs)
        if outcome == "exited":
            self._kill()
            message = (
                f"RequestId: {request_id} Error: Runtime exited with error: {self._exit_text()}"
            )
            logs = self._logs(request_id, started, f"{message}\nRuntime.ExitError\n", cold_ms)
            return InvocationResult(
                request_id, _error_payload("Runtime.ExitError", message), True, logs
            )
        if outcome == "stopped":
            logs = self._logs(request_id, started, "", cold_ms)
            body = _error_payload("Sandbox.Stopped", "the execution environment was stopped")
            return InvocationResult(request_id, body, True, logs)
        return InvocationResult(
            request_id,
            outcome.payload,
            outcome.is_error,
            self._logs(request_id, started, "", cold_ms),
        )

    def get_logs(self) -> str:
        return self.output.all() if self.output is not None else ""

    # ---- versions

    @classmethod
    def prepare_version(cls, function_version: FunctionVersion) -> None:
        """Unpacks the code (file modes kept). Unlike the Docker executor, nothing is downloaded."""
        if function_version.config.code is None:
            raise LambdaRuntimeException(
                "the process executor runs zip-packaged functions only (no container images)"
            )
        function_version.config.code.prepare_for_execution()

    @classmethod
    def cleanup_version(cls, function_version: FunctionVersion) -> None:
        """Nothing to undo: the environments were stopped by LocalStack, and the unpacked code is
        LocalStack's cache, which it destroys with the function."""

    @classmethod
    def validate_environment(cls) -> bool:
        return True


@atexit.register
def _kill_all() -> None:
    with _LIVE_LOCK:
        live = list(_LIVE)
    for executor in live:
        try:
            executor.stop()
        except Exception:  # noqa: BLE001 - best effort at exit
            pass


class ProcessRuntimeExecutorPlugin(RuntimeExecutorPlugin):
    """Entry point `process` in `localstack.lambda.runtime_executor`."""

    name = "process"

    def load(self, *args, **kwargs):
        return ProcessRuntimeExecutor
