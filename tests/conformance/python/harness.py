"""Shared pieces of the Python conformance scenarios: assertions that explain themselves, a raw
control-plane client for cleanup and the checks the SDK cannot express, the in-sandbox streaming
server, and the runners that print one ``PASS <gen> <scenario>`` / ``FAIL <gen> <scenario>: <reason>``
line per scenario."""

import asyncio
import os
import sys
import time
import traceback
from datetime import datetime, timezone
from typing import Any, Awaitable, Callable, Iterable, List, Optional, Set, Type

import httpx

GEN = os.environ.get("STASIS_GEN", "python-sync")
RUN_TAG = f"{os.environ.get('STASIS_RUN_ID', os.getpid())}-{GEN}"
API_URL = os.environ.get("E2B_API_URL", "").rstrip("/")
SANDBOX_URL = os.environ.get("E2B_SANDBOX_URL", "").rstrip("/")
DEBUG = bool(os.environ.get("STASIS_CONFORMANCE_DEBUG"))


class Failure(Exception):
    """A failed expectation; its message becomes the FAIL line's reason."""


def check(cond: Any, message: str) -> None:
    if not cond:
        raise Failure(message)


def check_eq(actual: Any, expected: Any, what: str) -> None:
    if actual != expected:
        raise Failure(f"{what}: expected {expected!r}, got {actual!r}")


def check_near(when: datetime, expected: float, tolerance: float, what: str) -> None:
    """``when`` lies within ``tolerance`` seconds of the epoch time ``expected``."""
    check(isinstance(when, datetime), f"{what}: not a datetime: {when!r}")
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    got = when.timestamp()
    exp = datetime.fromtimestamp(expected, timezone.utc).isoformat()
    check(
        abs(got - expected) <= tolerance,
        f"{what}: expected ≈ {exp} (±{tolerance} s), got {when.isoformat()} ({got - expected:+.1f} s)",
    )


def describe(err: BaseException) -> str:
    msg = " ".join(str(err).split())[:400]
    return f"{type(err).__name__}: {msg}"


class expect_error:
    """``with expect_error(Cls, "what") as e:`` — the block must raise ``Cls``; ``e.error`` is it."""

    def __init__(self, cls: Type[BaseException], what: str):
        self.cls = cls
        self.what = what
        self.error: Optional[BaseException] = None

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc is None:
            raise Failure(f"{self.what}: expected {self.cls.__name__}, but it succeeded")
        if isinstance(exc, Failure):
            return False
        if not isinstance(exc, self.cls):
            raise Failure(f"{self.what}: expected {self.cls.__name__}, got {describe(exc)}") from exc
        self.error = exc
        return True


def eventually(seconds: float, every: float, what: str, probe: Callable[[], Any]) -> Any:
    """Polls ``probe`` until it returns something truthy; errors count as "not yet", except Failure."""
    deadline = time.monotonic() + seconds
    last: Any = None
    while True:
        try:
            last = probe()
            if last:
                return last
        except Failure:
            raise
        except Exception as err:  # noqa: BLE001 - any error means "not yet"
            last = err
        if time.monotonic() > deadline:
            shown = describe(last) if isinstance(last, BaseException) else repr(last)
            raise Failure(f"{what}: not true within {seconds} s (last: {shown})")
        time.sleep(every)


async def aeventually(seconds: float, every: float, what: str, probe: Callable[[], Awaitable[Any]]) -> Any:
    deadline = time.monotonic() + seconds
    last: Any = None
    while True:
        try:
            last = await probe()
            if last:
                return last
        except Failure:
            raise
        except Exception as err:  # noqa: BLE001 - any error means "not yet"
            last = err
        if time.monotonic() > deadline:
            shown = describe(last) if isinstance(last, BaseException) else repr(last)
            raise Failure(f"{what}: not true within {seconds} s (last: {shown})")
        await asyncio.sleep(every)


def within(seconds: float, what: str, fn: Callable[[], Any]) -> Any:
    """``fn()`` in a helper thread; a Failure naming ``what`` if it takes longer than ``seconds``."""
    import threading

    out: List[Any] = []

    def run() -> None:
        try:
            out.append((True, fn()))
        except BaseException as err:  # noqa: BLE001 - re-raised in the caller
            out.append((False, err))

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(seconds)
    if not out:
        raise Failure(f"{what}: no answer within {seconds} s")
    ok, value = out[0]
    if not ok:
        raise value
    return value


def rest(method: str, path: str, json: Any = None, api_key: Optional[str] = None, timeout: float = 30) -> httpx.Response:
    """A raw control-plane request, for cleanup and for what the SDK cannot show."""
    headers = {"X-API-KEY": api_key or os.environ.get("E2B_API_KEY", "")}
    return httpx.request(method, API_URL + path, json=json, headers=headers, timeout=timeout)


def force_kill(sandbox_id: str) -> None:
    try:
        rest("DELETE", f"/sandboxes/{sandbox_id}", timeout=10)
    except Exception:  # noqa: BLE001 - cleanup only; the runner kills leftovers
        pass


# An in-sandbox HTTP/1.1 server: /ping answers "pong", /stream sends "<n>\n" every 100 ms.
STREAM_SERVER = r"""
import http.server, sys, time

class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'

    def log_message(self, *args):
        pass

    def do_GET(self):
        if self.path == '/ping':
            body = b'pong'
            self.send_response(200)
            self.send_header('Content-Length', str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        self.send_response(200)
        self.send_header('Content-Type', 'text/plain')
        self.send_header('Transfer-Encoding', 'chunked')
        self.end_headers()
        n = 0
        try:
            while True:
                line = b'%d\n' % n
                self.wfile.write(b'%x\r\n%s\r\n' % (len(line), line))
                self.wfile.flush()
                n += 1
                time.sleep(0.1)
        except OSError:
            pass

http.server.ThreadingHTTPServer(('0.0.0.0', int(sys.argv[1])), Handler).serve_forever()
"""

COUNTER = (
    "bash -c 'i=0; while true; do echo $i > /tmp/counter.new; mv /tmp/counter.new /tmp/counter; "
    "i=$((i+1)); sleep 0.1; done'"
)


class Scenario:
    def __init__(self, name: str, fn: Callable, timeout: float = 120):
        self.name = name
        self.fn = fn
        self.timeout = timeout


class Ctx:
    def __init__(self, name: str):
        self.name = name
        self.owned: Set[str] = set()

    def track(self, sandbox_id: str) -> str:
        self.owned.add(sandbox_id)
        return sandbox_id

    def log(self, *args: Any) -> None:
        if DEBUG:
            print(f"[{GEN}] {self.name}:", *args, file=sys.stderr)


def _where(err: BaseException) -> str:
    """`` (at scenarios_sync.py:123)``: the suite's own line an unexpected error came through."""
    ours = [f for f in traceback.extract_tb(err.__traceback__) if os.path.dirname(f.filename) == os.path.dirname(__file__)]
    return f" (at {os.path.basename(ours[-1].filename)}:{ours[-1].lineno})" if ours else ""


def _report(name: str, err: Optional[BaseException]) -> bool:
    if err is None:
        print(f"PASS {GEN} {name}", flush=True)
        return True
    if isinstance(err, Failure):
        reason = str(err)
    else:
        reason = f"unexpected {describe(err)}{_where(err)}"
        if DEBUG:
            traceback.print_exception(err)
    print(f"FAIL {GEN} {name}: {' '.join(reason.split())}", flush=True)
    return False


def run_sync(scenarios: Iterable[Scenario], only: List[str]) -> int:
    import threading

    failed = 0
    for s in scenarios:
        if only and s.name not in only:
            continue
        ctx = Ctx(s.name)
        started = time.monotonic()
        outcome: List[Optional[BaseException]] = []

        def body() -> None:
            try:
                s.fn(ctx)
                outcome.append(None)
            except BaseException as err:  # noqa: BLE001 - reported as the scenario's result
                outcome.append(err)

        worker = threading.Thread(target=body, daemon=True)
        worker.start()
        worker.join(s.timeout)
        err = outcome[0] if outcome else Failure(f"scenario: no answer within {s.timeout} s")
        if not _report(s.name, err):
            failed += 1
        for sandbox_id in ctx.owned:
            force_kill(sandbox_id)
        ctx.log(f"took {time.monotonic() - started:.1f} s")
    return failed


async def run_async(scenarios: Iterable[Scenario], only: List[str]) -> int:
    failed = 0
    for s in scenarios:
        if only and s.name not in only:
            continue
        ctx = Ctx(s.name)
        started = time.monotonic()
        err: Optional[BaseException] = None
        try:
            await asyncio.wait_for(s.fn(ctx), s.timeout)
        except BaseException as e:  # noqa: BLE001 - reported as the scenario's result
            err = e
            if isinstance(e, asyncio.TimeoutError) and time.monotonic() - started >= s.timeout:
                err = Failure(f"scenario: no answer within {s.timeout} s")
        if not _report(s.name, err):
            failed += 1
        await asyncio.to_thread(lambda: [force_kill(i) for i in ctx.owned])
        ctx.log(f"took {time.monotonic() - started:.1f} s")
    return failed
