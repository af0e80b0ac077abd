"""The Lambda Runtime API, served to one execution environment's `bootstrap`.

https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html: the runtime long-polls
`GET /2018-06-01/runtime/invocation/next`, then posts `…/{id}/response` or `…/{id}/error`;
`POST …/init/error` reports a failed init. One server per environment, on its own port, like
one Lambda sandbox.

Each process started in the environment gets a new *generation*. A `/next` long-poll belongs to
the generation that was current when it arrived, so the dangling request of a process that was
killed (timeout, crash) can never take the next invocation: it is woken and dropped instead.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOG = logging.getLogger(__name__)

PREFIX = "/2018-06-01/runtime"


@dataclasses.dataclass
class PendingInvoke:
    """An invocation waiting for the runtime's `/next`."""

    request_id: str
    payload: bytes
    deadline_ms: int
    function_arn: str
    trace_id: str
    client_context: str | None = None


@dataclasses.dataclass
class Outcome:
    """What the runtime answered for an invocation."""

    payload: bytes
    is_error: bool
    error_type: str | None = None


class RuntimeApi:
    """State shared between the executor and the HTTP handlers; guarded by `cond`."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.generation = 0
        self.ready_generation = -1  # the last generation that called /next
        self.exited_generation = -1  # the last generation whose process exited
        self.shutdown = False
        self.pending: PendingInvoke | None = None
        self.in_flight: str | None = None
        self.outcome: Outcome | None = None
        self.init_error: bytes | None = None
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.2},
            name="orderflow-runtime-api",
            daemon=True,
        )
        self._thread.start()

    @property
    def address(self) -> str:
        host, port = self._server.server_address[:2]
        return f"{host}:{port}"

    def new_generation(self) -> int:
        """A new process is about to start: forget everything the last one left behind."""
        with self.cond:
            self.generation += 1
            self.pending = None
            self.in_flight = None
            self.outcome = None
            self.init_error = None
            self.cond.notify_all()
            return self.generation

    def process_exited(self, generation: int) -> None:
        with self.cond:
            self.exited_generation = max(self.exited_generation, generation)
            self.cond.notify_all()

    def submit(self, invoke: PendingInvoke) -> None:
        with self.cond:
            self.outcome = None
            self.pending = invoke
            self.cond.notify_all()

    def close(self) -> None:
        with self.cond:
            self.shutdown = True
            self.cond.notify_all()
        self._server.shutdown()
        self._server.server_close()


def _error_body(body: bytes, error_type: str | None) -> bytes:
    """The error payload the caller sees: the runtime's JSON body, or one built like AWS does."""
    try:
        if isinstance(json.loads(body or b"null"), dict):
            return body
    except ValueError:
        pass
    return json.dumps(
        {
            "errorMessage": body.decode("utf-8", "replace"),
            "errorType": error_type or "Unhandled",
        }
    ).encode()


def _handler_for(api: RuntimeApi):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Small request/response pairs on a kept-alive connection: without TCP_NODELAY, and with
        # headers and body in separate writes, Nagle plus delayed ACKs stall each exchange.
        disable_nagle_algorithm = True

        def log_message(self, format, *args):  # noqa: A002 - the base class's name
            LOG.debug("runtime api: " + format, *args)

        def _reply(self, status: int, body: bytes = b"", headers: dict | None = None) -> None:
            self.send_response(status)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            # One write for headers and body (end_headers() would flush the headers alone).
            self._headers_buffer.append(b"\r\n" + body)
            self.flush_headers()

        def _body(self) -> bytes:
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            if self.path != f"{PREFIX}/invocation/next":
                self._reply(HTTPStatus.NOT_FOUND, b'{"errorType":"InvalidRequest"}')
                return
            with api.cond:
                generation = api.generation
                api.ready_generation = generation
                api.cond.notify_all()
                while not api.shutdown and generation == api.generation and api.pending is None:
                    api.cond.wait()
                if api.shutdown or generation != api.generation:
                    invoke = None
                else:
                    invoke = api.pending
                    api.pending = None
                    api.in_flight = invoke.request_id
            if invoke is None:
                # A stale long-poll: its process is gone or being replaced.
                self.close_connection = True
                self._reply(HTTPStatus.GONE, b'{"errorType":"Runtime.Stale"}')
                return
            headers = {
                "Lambda-Runtime-Aws-Request-Id": invoke.request_id,
                "Lambda-Runtime-Deadline-Ms": str(invoke.deadline_ms),
                "Lambda-Runtime-Invoked-Function-Arn": invoke.function_arn,
                "Lambda-Runtime-Trace-Id": invoke.trace_id,
            }
            if invoke.client_context:
                headers["Lambda-Runtime-Client-Context"] = invoke.client_context
            try:
                self._reply(HTTPStatus.OK, invoke.payload, headers)
            except OSError as err:
                LOG.debug("runtime api: could not deliver %s: %s", invoke.request_id, err)

        def do_POST(self) -> None:  # noqa: N802
            body = self._body()
            path = self.path
            error_type = self.headers.get("Lambda-Runtime-Function-Error-Type")
            if path == f"{PREFIX}/init/error":
                with api.cond:
                    api.init_error = _error_body(body, error_type or "Runtime.Unknown")
                    api.cond.notify_all()
                self._reply(HTTPStatus.ACCEPTED, b'{"status":"OK"}')
                return
            parts = path[len(PREFIX) :].strip("/").split("/")
            if (
                not path.startswith(PREFIX + "/invocation/")
                or len(parts) != 3
                or parts[2] not in ("response", "error")
            ):
                self._reply(HTTPStatus.NOT_FOUND, b'{"errorType":"InvalidRequest"}')
                return
            request_id, kind = parts[1], parts[2]
            with api.cond:
                if api.in_flight != request_id:
                    known = False
                else:
                    known = True
                    api.in_flight = None
                    if kind == "response":
                        api.outcome = Outcome(body, is_error=False)
                    else:
                        api.outcome = Outcome(
                            _error_body(body, error_type), is_error=True, error_type=error_type
                        )
                    api.cond.notify_all()
            if not known:
                self._reply(
                    HTTPStatus.BAD_REQUEST,
                    b'{"errorMessage":"Invalid request ID","errorType":"InvalidRequestID"}',
                )
                return
            self._reply(HTTPStatus.ACCEPTED, b'{"status":"OK"}')

    return Handler
