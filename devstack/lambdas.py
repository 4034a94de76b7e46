"""A local Lambda ``Invoke`` API, so the app's own boto3 ``lambda`` client works unchanged.

In AWS the app starts its ``warm`` and ``generate`` functions with an asynchronous invoke
(``InvocationType=Event``): the warm timer's near path and every turn go through it. Locally the
app keeps making exactly that call; ``AWS_ENDPOINT_URL_LAMBDA`` points botocore here, and this
server runs the same handlers Lambda would run (``app.handler_map[...]``, middleware included).

Why a thread pool of daemon threads: a warm handler sleeps until its target (up to ~3 minutes) and
a generate handler streams a whole reply, so each invoke holds a thread for a long time. The pool
must be large (64 by default) so sleeping warms never delay a turn, and its threads must be daemons
so that stopping the stack (Ctrl-C) never waits for a warm that is asleep.

Fidelity notes: ``Event`` answers 202 before the handler starts; ``RequestResponse`` answers 200
with the JSON result, or 200 with ``X-Amz-Function-Error: Unhandled`` and Lambda's error document
when the handler raises; an unknown function is a 404 ``ResourceNotFoundException``; ``DryRun``
answers 204. Unlike Lambda, a failed asynchronous invoke is logged, not retried.
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import Executor, Future
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

log = logging.getLogger("devstack.lambdas")

Handler = Callable[[dict[str, Any], Any], Any]
T = TypeVar("T")

INVOKE_PATH_PREFIX = "/2015-03-31/functions/"
INVOKE_PATH_SUFFIX = "/invocations"
DEFAULT_WORKERS = 64
# Lambda's synchronous payload limit (6 MB) and asynchronous one (256 KB; raised to 1 MB in 2025).
MAX_SYNC_PAYLOAD = 6 * 1024 * 1024
MAX_ASYNC_PAYLOAD = 1024 * 1024
DEFAULT_TIMEOUT_S = 900


class DaemonThreadPool(Executor):
    """A ``ThreadPoolExecutor`` look-alike whose workers are daemon threads.

    ``concurrent.futures.ThreadPoolExecutor`` joins its workers at interpreter exit, so one warm
    asleep for three minutes would hold the stack's shutdown for three minutes. Threads are started
    on demand up to ``max_workers`` and reused; extra work waits in the queue.
    """

    def __init__(self, max_workers: int, name: str) -> None:
        if max_workers < 1:
            raise ValueError("max_workers must be at least 1")
        self.max_workers = max_workers
        self.name = name
        self._queue: queue.SimpleQueue[tuple[Future[Any], Callable[[], Any]] | None] = (
            queue.SimpleQueue()
        )
        self._idle = threading.Semaphore(0)
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._busy = 0
        self._shutdown = False

    @property
    def busy(self) -> int:
        """Workers currently running a task."""
        return self._busy

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        future: Future[T] = Future()
        with self._lock:
            if self._shutdown:
                raise RuntimeError(f"{self.name}: cannot submit after shutdown")
            self._queue.put((future, lambda: fn(*args, **kwargs)))
            if self._idle.acquire(timeout=0):
                pass  # an idle worker takes it
            elif len(self._threads) < self.max_workers:
                thread = threading.Thread(
                    target=self._work, name=f"{self.name}-{len(self._threads)}", daemon=True
                )
                self._threads.append(thread)
                thread.start()
            else:
                log.warning("%s: all %d workers busy; work is queued", self.name, self.max_workers)
        return future

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            future, call = item
            if future.set_running_or_notify_cancel():
                with self._lock:
                    self._busy += 1
                try:
                    result = call()
                except BaseException as error:  # noqa: BLE001 - delivered through the future
                    future.set_exception(error)
                else:
                    future.set_result(result)
                finally:
                    with self._lock:
                        self._busy -= 1
            self._idle.release()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop taking work; running tasks finish on their own (their threads are daemons).

        ``wait`` joins idle workers for at most a second each: a worker inside a long task is
        abandoned, never waited for.
        """
        with self._lock:
            if self._shutdown:
                return
            self._shutdown = True
            threads = list(self._threads)
        if cancel_futures:
            while True:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is not None:
                    item[0].cancel()
        for _ in threads:
            self._queue.put(None)
        if wait:
            for thread in threads:
                thread.join(timeout=1.0)


class LambdaContext:
    """The parts of Lambda's context object that handlers commonly read."""

    def __init__(self, function_name: str, timeout_s: int, memory_mb: int = 256) -> None:
        self._deadline = time.monotonic() + timeout_s
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = (
            f"arn:aws:lambda:us-east-1:123456789012:function:{function_name}"
        )
        self.memory_limit_in_mb = str(memory_mb)
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "devstack"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def function_key(function_name: str) -> str:
    """The handler key for a FunctionName: a name, a partial or full ARN, maybe URL-quoted.

    ``arn:aws:lambda:us-east-1:123456789012:function:warm`` -> ``warm``;
    ``cache-warming-dev-warm`` (Chalice's deployed name) -> ``cache-warming-dev-warm``, which
    ``LambdaEmulator.resolve`` then matches by its ``-warm`` suffix.
    """
    return unquote(function_name).rsplit(":", 1)[-1]


class LambdaEmulator:
    """Serves ``POST /2015-03-31/functions/{FunctionName}/invocations`` on loopback."""

    def __init__(
        self,
        functions: Mapping[str, Handler],
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        workers: int = DEFAULT_WORKERS,
        timeouts: Mapping[str, int] | None = None,
    ) -> None:
        self.functions = dict(functions)
        self.timeouts = dict(timeouts or {})
        self.host = host
        self.port = port
        self.pool = DaemonThreadPool(workers, "lambda")
        self.invocations: dict[str, int] = {}
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._stats_lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def resolve(self, function_name: str) -> str | None:
        """The handler name for a FunctionName, or None when no such function exists."""
        key = function_key(function_name)
        if key in self.functions:
            return key
        # Deployed names are `<app>-<stage>-<function>`; the longest matching suffix wins.
        matches = [name for name in self.functions if key.endswith(f"-{name}")]
        return max(matches, key=len) if matches else None

    def run(self, name: str, payload: Any) -> Any:
        """Run one invocation in the calling thread, as Lambda would run the handler."""
        with self._stats_lock:
            self.invocations[name] = self.invocations.get(name, 0) + 1
        context = LambdaContext(name, self.timeouts.get(name, DEFAULT_TIMEOUT_S))
        return self.functions[name](payload, context)

    def run_async(self, name: str, payload: Any) -> Future[Any]:
        """Queue one invocation on the pool; failures are logged (Lambda would retry twice)."""

        def call() -> Any:
            try:
                return self.run(name, payload)
            except Exception:
                log.exception("async invoke of %s failed", name)
                raise

        return self.pool.submit(call)

    def start(self) -> LambdaEmulator:
        if self._server is not None:
            return self
        handler = type("_BoundLambdaHandler", (_LambdaHandler,), {"emulator": self})
        self._server = _QuietServer((self.host, self.port), handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.2},
            name=f"lambda-emulator-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self.pool.shutdown(wait=False, cancel_futures=True)


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class _LambdaHandler(BaseHTTPRequestHandler):
    emulator: LambdaEmulator
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    def do_POST(self) -> None:
        path = urlsplit(self.path).path
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        if not (path.startswith(INVOKE_PATH_PREFIX) and path.endswith(INVOKE_PATH_SUFFIX)):
            self._error(404, "UnknownOperationException", f"unknown operation {path}")
            return
        raw_name = path[len(INVOKE_PATH_PREFIX) : -len(INVOKE_PATH_SUFFIX)]
        name = self.emulator.resolve(raw_name)
        if name is None:
            self._error(
                404,
                "ResourceNotFoundException",
                f"Function not found: {unquote(raw_name)}",
            )
            return
        invocation_type = self.headers.get("X-Amz-Invocation-Type") or "RequestResponse"
        limit = MAX_ASYNC_PAYLOAD if invocation_type == "Event" else MAX_SYNC_PAYLOAD
        if len(body) > limit:
            self._error(413, "RequestTooLargeException", "Request must be smaller than the limit")
            return
        try:
            payload = json.loads(body) if body.strip() else {}
        except (ValueError, UnicodeDecodeError):
            self._error(400, "InvalidRequestContentException", "Could not parse request body")
            return
        if invocation_type == "DryRun":
            self._send(204, b"")
        elif invocation_type == "Event":
            self.emulator.run_async(name, payload)
            self._send(202, b"")
        elif invocation_type == "RequestResponse":
            self._request_response(name, payload)
        else:
            self._error(400, "InvalidParameterValueException", "bad X-Amz-Invocation-Type")

    def _request_response(self, name: str, payload: Any) -> None:
        try:
            result = self.emulator.run(name, payload)
        except Exception as error:
            log.exception("invoke of %s failed", name)
            document = {
                "errorMessage": str(error),
                "errorType": type(error).__name__,
                "stackTrace": traceback.format_tb(error.__traceback__),
            }
            self._send(200, json.dumps(document).encode(), {"X-Amz-Function-Error": "Unhandled"})
            return
        self._send(200, json.dumps(result).encode())

    def _error(self, status: int, code: str, message: str) -> None:
        body = json.dumps({"Type": "User", "message": message}).encode()
        self._send(status, body, {"x-amzn-ErrorType": code})

    def _send(self, status: int, body: bytes, headers: Mapping[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        self.send_header("X-Amz-Executed-Version", "$LATEST")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        with contextlib.suppress(OSError):
            self.wfile.write(body)
