"""Stasis code interpreter: the E2B code-interpreter API on port 49999, inside the sandbox.

Speaks the wire contract the official `@e2b/code-interpreter` / `e2b-code-interpreter` SDKs use
(see shared/e2b-compat.md section 4): `POST /execute` streams one JSON object per line,
`/contexts` creates, lists, deletes and restarts contexts, `GET /health`.

Python contexts are IPython kernels (ipykernel) driven with jupyter_client over ZMQ's `ipc`
transport: Unix sockets, so the kernels and this service keep talking across a CRIU pause,
which closes every TCP connection inside the sandbox. JavaScript contexts are a Node process
running js_runner.js, bash contexts a persistent bash; both talk to this service over pipes.

Standard library plus Debian's python3-jupyter-client only. One thread per HTTP connection;
an execution holds its context's lock, so executions in one context run one after another.
"""

import datetime
import http.server
import json
import logging
import os
import queue
import select
import shutil
import signal
import socket
import socketserver
import subprocess
import sys
import threading
import time
import urllib.request
import uuid

from jupyter_client.manager import KernelManager

PORT = int(os.environ.get("STASIS_INTERPRETER_PORT", "49999"))
ENVD_ENVS_URL = os.environ.get("STASIS_ENVD_ENVS_URL", "http://127.0.0.1:49983/envs")
HERE = os.path.dirname(os.path.abspath(__file__))
RUN_DIR = os.environ.get("STASIS_INTERPRETER_RUN_DIR", "/run/stasis-interpreter")
DEFAULT_CWD = "/home/user"
KEEPALIVE_SECONDS = 5.0
POLL_SECONDS = 0.2
# How long an interrupted execution may take to stop before its kernel is restarted.
INTERRUPT_GRACE_SECONDS = 10.0

log = logging.getLogger("stasis-interpreter")


def now_iso():
    return datetime.datetime.now(datetime.timezone.utc).isoformat()


def normalize_language(language):
    if not language:
        return "python"
    language = str(language).strip().lower()
    return {"js": "javascript", "ts": "typescript", "sh": "bash"}.get(language, language)


SUPPORTED_LANGUAGES = ("python", "javascript", "typescript", "bash")


class ClientGone(Exception):
    """The HTTP client went away (closed its connection, timed out, or the sandbox paused)."""


class UnknownLanguage(Exception):
    pass


def fetch_envd_envs(access_token):
    """The sandbox's global environment, as E2B's interpreter reads it: envd's `GET /envs`."""
    req = urllib.request.Request(ENVD_ENVS_URL)
    if access_token:
        req.add_header("X-Access-Token", access_token)
    with urllib.request.urlopen(req, timeout=5) as resp:
        data = json.loads(resp.read() or b"{}")
    return {str(k): str(v) for k, v in (data or {}).items()}


def mime_bundle_to_result(data, is_main_result):
    """A Jupyter MIME bundle as the SDKs' `Result`: only the formats that are present."""
    data = dict(data)
    out = {"type": "result", "is_main_result": is_main_result}
    text = data.pop("text/plain", None)
    if text is not None:
        # E2B's service unquotes a string's repr, so `'abc'` comes back as `abc`.
        if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
            text = text[1:-1]
        out["text"] = text
    for mime, key in (
        ("text/html", "html"),
        ("text/markdown", "markdown"),
        ("image/svg+xml", "svg"),
        ("image/png", "png"),
        ("image/jpeg", "jpeg"),
        ("application/pdf", "pdf"),
        ("text/latex", "latex"),
        ("application/json", "json"),
        ("application/javascript", "javascript"),
        ("e2b/data", "data"),
        ("e2b/chart", "chart"),
    ):
        value = data.pop(mime, None)
        if value is not None:
            out[key] = value
    if data:
        out["extra"] = data
    return out


class Execution:
    """What one `/execute` request needs from a context: a way to emit lines and to notice
    that the client left."""

    def __init__(self, emit, client_gone):
        self.emit = emit
        self.client_gone = client_gone


class Context:
    language = "python"

    def __init__(self, context_id, cwd):
        self.id = context_id
        self.cwd = cwd
        self.lock = threading.Lock()
        self.global_envs = None
        self.closed = False
        # Told to the next execution: why the state it expects may be gone.
        self.notice = None

    def take_over(self):
        """Get the lock from another thread: stop a running execution first (it ends with an
        interrupt error), and kill the process if it will not stop. Returns with the lock held."""
        if self.lock.acquire(timeout=0.1):
            return
        self.signal_interrupt()
        if self.lock.acquire(timeout=INTERRUPT_GRACE_SECONDS):
            return
        self.kill_process()
        self.lock.acquire()

    def describe(self):
        return {"id": self.id, "language": self.language, "cwd": self.cwd}

    # Environment: envd's global variables once per context (as E2B does), plus the request's
    # own for the duration of one execution.
    def env_setup(self, env_vars, access_token):
        if self.global_envs is None:
            try:
                self.global_envs = fetch_envd_envs(access_token)
                if self.global_envs:
                    self.set_envs(self.global_envs)
            except Exception as e:  # envd not reachable or token refused: try again next time
                log.warning("could not read envd's environment: %s", e)
        if env_vars:
            self.set_envs(env_vars)

    def env_cleanup(self, env_vars):
        if not env_vars:
            return
        globals_ = self.global_envs or {}
        restore = {k: globals_[k] for k in env_vars if k in globals_}
        remove = [k for k in env_vars if k not in globals_]
        self.reset_envs(restore, remove)


class PythonContext(Context):
    language = "python"

    def __init__(self, context_id, cwd):
        super().__init__(context_id, cwd)
        self.km = None
        self.kc = None
        self.start()

    def start(self):
        ipc_dir = os.path.join(RUN_DIR, self.id)
        os.makedirs(ipc_dir, exist_ok=True)
        self.km = KernelManager(
            kernel_name="python3",
            transport="ipc",
            ip=os.path.join(ipc_dir, "kernel"),
            connection_file=os.path.join(ipc_dir, "connection.json"),
        )
        env = dict(os.environ)
        env.pop("STASIS_INTERPRETER_PORT", None)
        env["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
        env["PYDEVD_DISABLE_FILE_VALIDATION"] = "1"
        cwd = self.cwd if os.path.isdir(self.cwd) else "/"
        self.km.start_kernel(
            cwd=cwd,
            env=env,
            extra_arguments=[
                "--InteractiveShell.colors=NoColor",
                "--HistoryManager.enabled=False",
                "--PlainTextFormatter.max_seq_length=0",
                "--IPKernelApp.exec_files=%s" % os.path.join(HERE, "kernel_startup.py"),
            ],
        )
        self.kc = self.km.client()
        self.kc.start_channels(hb=False)
        self.kc.wait_for_ready(timeout=60)
        self.global_envs = None

    def shutdown(self):
        self.closed = True
        try:
            self.kc.stop_channels()
        except Exception:
            pass
        try:
            self.km.shutdown_kernel(now=True)
        except Exception:
            pass
        shutil.rmtree(os.path.join(RUN_DIR, self.id), ignore_errors=True)

    def restart(self):
        """Throw the kernel away and start a fresh one. Caller holds the lock."""
        try:
            self.kc.stop_channels()
        except Exception:
            pass
        try:
            self.km.shutdown_kernel(now=True)
        except Exception:
            pass
        self.start()

    def run_silent(self, code):
        """Run bookkeeping code (environment variables) without output or a history entry."""
        msg_id = self.kc.execute(code, silent=True, store_history=False, allow_stdin=False)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                msg = self.kc.get_iopub_msg(timeout=1)
            except queue.Empty:
                if not self.km.is_alive():
                    return
                continue
            if msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == "status" and msg["content"].get("execution_state") == "idle":
                return

    def set_envs(self, envs):
        self.run_silent("__import__('os').environ.update(%r)" % (dict(envs),))

    def reset_envs(self, restore, remove):
        code = "__import__('os').environ.update(%r)\nfor __stasis_k in %r: __import__('os').environ.pop(__stasis_k, None)\ndel __stasis_k" % (restore, remove)
        self.run_silent(code)

    def execute(self, code, ex):
        if not self.km.is_alive():
            self.restart()
        msg_id = self.kc.execute(code, silent=False, store_history=True, allow_stdin=False, stop_on_error=True)
        errored = False
        last_sent = time.monotonic()
        last_alive_check = time.monotonic()
        while True:
            if ex.client_gone():
                raise ClientGone()
            try:
                msg = self.kc.get_iopub_msg(timeout=POLL_SECONDS)
            except queue.Empty:
                now = time.monotonic()
                if now - last_alive_check > 0.5:
                    last_alive_check = now
                    if not self.km.is_alive():
                        self.kernel_died(ex)
                        return
                if now - last_sent > KEEPALIVE_SECONDS:
                    ex.emit({"type": "keepalive"})
                    last_sent = now
                continue
            if msg["parent_header"].get("msg_id") != msg_id:
                continue  # left over from an earlier, interrupted execution
            kind, content = msg["msg_type"], msg["content"]
            line = None
            if kind == "execute_input":
                line = {"type": "number_of_executions", "execution_count": content.get("execution_count")}
            elif kind == "stream":
                name = "stderr" if content.get("name") == "stderr" else "stdout"
                date = msg["header"].get("date")
                stamp = date.isoformat() if hasattr(date, "isoformat") else (date or now_iso())
                line = {"type": name, "text": content.get("text", ""), "timestamp": stamp}
            elif kind == "display_data":
                line = mime_bundle_to_result(content.get("data", {}), False)
            elif kind == "execute_result":
                line = mime_bundle_to_result(content.get("data", {}), True)
            elif kind == "error":
                if not errored:
                    errored = True
                    line = {
                        "type": "error",
                        "name": content.get("ename", ""),
                        "value": content.get("evalue", ""),
                        "traceback": "\n".join(content.get("traceback", [])),
                    }
            elif kind == "status" and content.get("execution_state") == "idle":
                self.drain_shell()
                return
            if line is not None:
                ex.emit(line)
                last_sent = time.monotonic()

    def drain_shell(self):
        """Execute replies are not needed (iopub carries everything): drop them."""
        try:
            while True:
                self.kc.get_shell_msg(timeout=0)
        except queue.Empty:
            pass

    def kernel_died(self, ex):
        code = self.km.provisioner.process.returncode if getattr(self.km, "provisioner", None) and self.km.provisioner.process else None
        ex.emit(
            {
                "type": "error",
                "name": "KernelDied",
                "value": "The Python kernel of context %s died (exit status %s); its state is lost. "
                "A fresh kernel was started: run the code again, or restart the context." % (self.id, code),
                "traceback": "",
            }
        )
        if not self.closed:
            self.restart()

    def signal_interrupt(self):
        try:
            self.km.interrupt_kernel()
        except Exception as e:
            log.warning("interrupt of %s failed: %s", self.id, e)

    def kill_process(self):
        try:
            self.km.provisioner.process.kill()
        except Exception as e:
            log.warning("kill of %s failed: %s", self.id, e)

    def interrupt(self):
        """Stop whatever runs now and wait until the kernel is idle again; restart it if not.
        Only the thread holding the lock may call this (it reads the kernel's sockets)."""
        self.signal_interrupt()
        deadline = time.monotonic() + INTERRUPT_GRACE_SECONDS
        while time.monotonic() < deadline:
            try:
                msg = self.kc.get_iopub_msg(timeout=POLL_SECONDS)
            except queue.Empty:
                if not self.km.is_alive():
                    self.restart()
                    return
                continue
            if msg["msg_type"] == "status" and msg["content"].get("execution_state") == "idle":
                return
        log.warning("context %s did not stop after an interrupt: restarting its kernel", self.id)
        self.notice = "The previous execution did not stop when interrupted, so this context's kernel was restarted: its state is lost.\n"
        self.restart()


class PipeContext(Context):
    """A language served by a helper process over pipes (Node for JavaScript, bash)."""

    def __init__(self, context_id, cwd):
        super().__init__(context_id, cwd)
        self.proc = None
        self.execution_count = 0
        self.start()

    def start(self):
        raise NotImplementedError

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def signal_interrupt(self):
        try:
            os.killpg(self.proc.pid, signal.SIGINT) if self.language == "bash" else os.kill(self.proc.pid, signal.SIGINT)
        except Exception:
            pass

    def kill_process(self):
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except Exception:
            pass

    def shutdown(self):
        self.closed = True
        self.kill()

    def kill(self):
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except Exception:
            pass
        try:
            self.proc.wait(timeout=5)
        except Exception:
            pass

    def restart(self):
        self.kill()
        self.execution_count = 0
        self.global_envs = None
        self.start()


class JavaScriptContext(PipeContext):
    """Node running js_runner.js: requests as JSON lines on its stdin, replies on a pipe of its
    own (its fd number is the runner's argument)."""

    language = "javascript"

    def start(self):
        r, w = os.pipe()
        cwd = self.cwd if os.path.isdir(self.cwd) else "/"
        self.proc = subprocess.Popen(
            ["node", os.path.join(HERE, "js_runner.js"), str(w)],
            stdin=subprocess.PIPE,
            stdout=sys.stderr,
            stderr=sys.stderr,
            cwd=cwd,
            pass_fds=(w,),
            start_new_session=True,
        )
        os.close(w)
        self.replies = os.fdopen(r, "rb", buffering=0)
        self.buf = b""

    def send(self, obj):
        self.proc.stdin.write((json.dumps(obj) + "\n").encode())
        self.proc.stdin.flush()

    def read_line(self, timeout):
        """One reply line, or None when nothing came within `timeout`."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([self.replies], [], [], left)
            if not ready:
                return None
            chunk = os.read(self.replies.fileno(), 65536)
            if not chunk:
                raise EOFError()
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def set_envs(self, envs):
        self.call({"op": "env", "set": dict(envs), "unset": []})

    def reset_envs(self, restore, remove):
        self.call({"op": "env", "set": restore, "unset": list(remove)})

    def call(self, req):
        if not self.alive():
            return
        req["id"] = str(uuid.uuid4())
        self.send(req)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            reply = self.read_line(1)
            if reply and reply.get("id") == req["id"] and reply.get("type") == "done":
                return

    def execute(self, code, ex):
        if not self.alive():
            self.restart()
        self.execution_count += 1
        req_id = str(uuid.uuid4())
        self.send({"op": "run", "id": req_id, "code": code, "count": self.execution_count})
        ex.emit({"type": "number_of_executions", "execution_count": self.execution_count})
        last_sent = time.monotonic()
        while True:
            if ex.client_gone():
                raise ClientGone()
            try:
                reply = self.read_line(POLL_SECONDS)
            except EOFError:
                self.died(ex)
                return
            if reply is None:
                if not self.alive():
                    self.died(ex)
                    return
                if time.monotonic() - last_sent > KEEPALIVE_SECONDS:
                    ex.emit({"type": "keepalive"})
                    last_sent = time.monotonic()
                continue
            if reply.get("id") != req_id:
                continue
            kind = reply.get("type")
            if kind == "done":
                return
            if kind in ("stdout", "stderr"):
                ex.emit({"type": kind, "text": reply.get("text", ""), "timestamp": now_iso()})
            elif kind == "result":
                ex.emit(mime_bundle_to_result(reply.get("data", {}), bool(reply.get("main"))))
            elif kind == "error":
                ex.emit({"type": "error", "name": reply.get("name", "Error"), "value": reply.get("value", ""), "traceback": reply.get("traceback", "")})
            last_sent = time.monotonic()

    def died(self, ex):
        ex.emit(
            {
                "type": "error",
                "name": "KernelDied",
                "value": "The JavaScript process of context %s exited; its state is lost. A fresh one was started: run the code again." % self.id,
                "traceback": "",
            }
        )
        if not self.closed:
            self.restart()

    def interrupt(self):
        self.signal_interrupt()
        deadline = time.monotonic() + INTERRUPT_GRACE_SECONDS
        while time.monotonic() < deadline:
            try:
                reply = self.read_line(POLL_SECONDS)
            except EOFError:
                break
            if reply and reply.get("type") == "done":
                return
        self.notice = "The previous execution did not stop when interrupted, so this context's Node process was restarted: its state is lost.\n"
        self.restart()


class BashContext(PipeContext):
    """A persistent bash. Each cell is sourced; its status comes back on a pipe of its own."""

    language = "bash"

    def start(self):
        r, w = os.pipe()
        cwd = self.cwd if os.path.isdir(self.cwd) else "/"
        self.proc = subprocess.Popen(
            ["bash", "--norc", "--noprofile"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=cwd,
            pass_fds=(w,),
            start_new_session=True,
        )
        self.status_fd_in_bash = w
        os.close(w)
        self.status = os.fdopen(r, "rb", buffering=0)
        self.cell_dir = os.path.join(RUN_DIR, self.id)
        os.makedirs(self.cell_dir, exist_ok=True)
        # A handler (not SIG_IGN, which children would inherit) keeps bash alive on ^C.
        self.proc.stdin.write(b"trap ':' INT\n")
        self.proc.stdin.flush()

    def shell(self, line):
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()

    @staticmethod
    def quote(s):
        return "'" + str(s).replace("'", "'\\''") + "'"

    def set_envs(self, envs):
        self.shell("; ".join("export %s=%s" % (k, self.quote(v)) for k, v in envs.items() if k.replace("_", "a").isalnum()))

    def reset_envs(self, restore, remove):
        self.set_envs(restore)
        names = [k for k in remove if k.replace("_", "a").isalnum()]
        if names:
            self.shell("unset " + " ".join(names))

    def execute(self, code, ex):
        if not self.alive():
            self.restart()
        self.execution_count += 1
        ex.emit({"type": "number_of_executions", "execution_count": self.execution_count})
        cell = os.path.join(self.cell_dir, "cell.sh")
        with open(cell, "w") as f:
            f.write(code + "\n")
        self.shell(". %s; printf '%%s\\n' \"$?\" >&%d" % (self.quote(cell), self.status_fd_in_bash))
        out, err = self.proc.stdout.fileno(), self.proc.stderr.fileno()
        status_fd = self.status.fileno()
        last_sent = time.monotonic()
        status = None
        while status is None:
            if ex.client_gone():
                raise ClientGone()
            ready, _, _ = select.select([out, err, status_fd], [], [], POLL_SECONDS)
            if not ready:
                if not self.alive():
                    self.died(ex)
                    return
                if time.monotonic() - last_sent > KEEPALIVE_SECONDS:
                    ex.emit({"type": "keepalive"})
                    last_sent = time.monotonic()
                continue
            for fd in ready:
                if fd == status_fd:
                    data = os.read(status_fd, 64)
                    if not data:
                        self.died(ex)
                        return
                    status = int(data.strip().splitlines()[-1] or b"0")
                else:
                    self.forward(fd, out, ex)
                    last_sent = time.monotonic()
        # Everything the cell wrote is in the pipes by now: take what is left.
        for fd in (out, err):
            while select.select([fd], [], [], 0)[0]:
                if not self.forward(fd, out, ex):
                    break
        if status != 0:
            ex.emit({"type": "error", "name": "ExitCode", "value": "exit status %d" % status, "traceback": ""})

    def forward(self, fd, out, ex):
        data = os.read(fd, 65536)
        if data:
            ex.emit({"type": "stdout" if fd == out else "stderr", "text": data.decode("utf-8", "replace"), "timestamp": now_iso()})
        return bool(data)

    def died(self, ex):
        ex.emit({"type": "error", "name": "KernelDied", "value": "The bash of context %s exited; a fresh one was started." % self.id, "traceback": ""})
        if not self.closed:
            self.restart()

    def interrupt(self):
        self.signal_interrupt()
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            if select.select([self.status.fileno()], [], [], POLL_SECONDS)[0]:
                os.read(self.status.fileno(), 64)
                for fd in (self.proc.stdout.fileno(), self.proc.stderr.fileno()):
                    while select.select([fd], [], [], 0)[0] and os.read(fd, 65536):
                        pass
                return
        # A loop of builtins ignores ^C: start over.
        self.notice = "The previous execution did not stop when interrupted, so this context's bash was restarted: its state is lost.\n"
        self.restart()


CONTEXT_TYPES = {"python": PythonContext, "javascript": JavaScriptContext, "typescript": JavaScriptContext, "bash": BashContext}


class Registry:
    def __init__(self):
        self.lock = threading.Lock()
        self.contexts = {}
        self.defaults = {}  # language -> context id
        self.default_lock = threading.Lock()

    def create(self, language, cwd):
        language = normalize_language(language)
        cls = CONTEXT_TYPES.get(language)
        if cls is None:
            raise UnknownLanguage(language)
        ctx = cls(str(uuid.uuid4()), cwd or DEFAULT_CWD)
        if language == "typescript":
            ctx.language = "typescript"
        with self.lock:
            self.contexts[ctx.id] = ctx
        log.info("context %s (%s) created in %s", ctx.id, ctx.language, ctx.cwd)
        return ctx

    def get(self, context_id):
        with self.lock:
            return self.contexts.get(context_id)

    def default(self, language):
        language = normalize_language(language)
        with self.default_lock:
            ctx = self.get(self.defaults.get(language, ""))
            if ctx is None:
                ctx = self.create(language, DEFAULT_CWD)
                self.defaults[language] = ctx.id
            return ctx

    def remove(self, context_id):
        with self.lock:
            ctx = self.contexts.pop(context_id, None)
            for lang, cid in list(self.defaults.items()):
                if cid == context_id:
                    del self.defaults[lang]
        return ctx

    def all(self):
        with self.lock:
            return list(self.contexts.values())


REGISTRY = Registry()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "stasis-interpreter"

    def log_message(self, fmt, *args):
        log.debug("%s %s", self.address_string(), fmt % args)

    # -- plumbing -------------------------------------------------------------------------
    def path_parts(self):
        path = self.path.split("?", 1)[0]
        return [p for p in path.split("/") if p]

    def read_json(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not raw.strip():
            return {}
        body = json.loads(raw)
        if not isinstance(body, dict):
            raise ValueError("the body must be a JSON object")
        return body

    def reply(self, status, body=None, content_type="application/json"):
        if body is None:
            data = b""
        elif isinstance(body, bytes):
            data = body
        elif isinstance(body, str):
            data = body.encode()
            content_type = "text/plain; charset=utf-8"
        else:
            data = json.dumps(body).encode()
        self.send_response(status)
        if data or status != 204:
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if data:
            self.wfile.write(data)

    # -- routes -----------------------------------------------------------------------------
    def do_GET(self):
        parts = self.path_parts()
        if parts == ["health"]:
            return self.reply(200, b'"OK"', content_type="application/json")
        if parts == ["contexts"]:
            return self.reply(200, [c.describe() for c in REGISTRY.all()])
        return self.reply(404, "Not found")

    def do_DELETE(self):
        parts = self.path_parts()
        if len(parts) == 2 and parts[0] == "contexts":
            ctx = REGISTRY.remove(parts[1])
            if ctx is None:
                return self.reply(404, "Context %s not found" % parts[1])
            ctx.closed = True
            ctx.take_over()
            try:
                ctx.shutdown()
            finally:
                ctx.lock.release()
            return self.reply(204)
        return self.reply(404, "Not found")

    def do_POST(self):
        parts = self.path_parts()
        try:
            body = self.read_json()
        except ValueError as e:
            return self.reply(400, "invalid JSON body: %s" % e)
        if parts == ["execute"]:
            return self.execute(body)
        if parts == ["contexts"]:
            language = normalize_language(body.get("language"))
            if language not in SUPPORTED_LANGUAGES:
                return self.reply(400, "language %r is not available in this sandbox (available: %s)" % (language, ", ".join(SUPPORTED_LANGUAGES)))
            try:
                ctx = REGISTRY.create(language, body.get("cwd") or DEFAULT_CWD)
            except Exception as e:
                log.exception("creating a context")
                return self.reply(500, "failed to create the context: %s" % e)
            return self.reply(200, ctx.describe())
        if len(parts) == 3 and parts[0] == "contexts" and parts[2] == "restart":
            ctx = REGISTRY.get(parts[1])
            if ctx is None:
                return self.reply(404, "Context %s not found" % parts[1])
            ctx.take_over()
            try:
                ctx.restart()
            except Exception as e:
                log.exception("restarting context %s", ctx.id)
                return self.reply(500, "failed to restart context %s: %s" % (ctx.id, e))
            finally:
                ctx.lock.release()
            return self.reply(204)
        return self.reply(404, "Not found")

    def execute(self, body):
        code = body.get("code")
        context_id = body.get("context_id")
        language = body.get("language")
        env_vars = body.get("env_vars") or {}
        if not isinstance(code, str):
            return self.reply(400, "code must be a string")
        if context_id and language:
            return self.reply(400, "Only one of context_id or language can be provided")
        if not isinstance(env_vars, dict):
            return self.reply(400, "env_vars must be an object")
        env_vars = {str(k): str(v) for k, v in env_vars.items()}
        if context_id:
            ctx = REGISTRY.get(context_id)
            if ctx is None:
                return self.reply(404, "Context %s not found" % context_id)
        else:
            if normalize_language(language) not in SUPPORTED_LANGUAGES:
                return self.reply(400, "language %r is not available in this sandbox (available: %s)" % (normalize_language(language), ", ".join(SUPPORTED_LANGUAGES)))
            try:
                ctx = REGISTRY.default(language)
            except Exception as e:
                log.exception("creating a default context")
                return self.reply(500, "failed to create the context: %s" % e)

        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        self.wfile.flush()

        sock = self.connection

        def emit(obj):
            data = (json.dumps(obj, default=str) + "\n").encode()
            try:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                self.wfile.flush()
            except (BrokenPipeError, ConnectionError, OSError):
                raise ClientGone()

        def client_gone():
            try:
                readable, _, _ = select.select([sock], [], [], 0)
                if readable:
                    return sock.recv(1, socket.MSG_PEEK) == b""
            except (ConnectionError, OSError):
                return True
            return False

        ex = Execution(emit, client_gone)
        with ctx.lock:
            if ctx.closed:
                emit({"type": "error", "name": "ContextNotFound", "value": "Context %s was removed" % ctx.id, "traceback": ""})
            else:
                try:
                    if ctx.notice:
                        emit({"type": "stderr", "text": ctx.notice, "timestamp": now_iso()})
                        ctx.notice = None
                    ctx.env_setup(env_vars, self.headers.get("X-Access-Token"))
                    ctx.execute(code, ex)
                except ClientGone:
                    log.info("client left during an execution in %s: interrupting it", ctx.id)
                    ctx.interrupt()
                    self.close_connection = True
                    ctx.env_cleanup(env_vars)
                    return
                except Exception as e:
                    log.exception("execution in %s failed", ctx.id)
                    try:
                        emit({"type": "error", "name": type(e).__name__, "value": str(e), "traceback": ""})
                    except ClientGone:
                        self.close_connection = True
                        return
                ctx.env_cleanup(env_vars)
        try:
            emit({"type": "end_of_execution"})
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (ClientGone, OSError):
            self.close_connection = True


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


def main():
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    os.makedirs(RUN_DIR, exist_ok=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    # A shell that starts us in the background leaves SIGINT ignored, and an ignored signal
    # stays ignored in every child (bash could not even trap it): interrupts need it back.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    started = time.monotonic()
    # The default Python context exists before the port opens: the sandbox is "ready" only
    # once the first runCode can start at once.
    REGISTRY.default("python")
    server = Server(("0.0.0.0", PORT), Handler)
    log.info("listening on :%d (default context ready after %.2fs)", PORT, time.monotonic() - started)
    try:
        server.serve_forever(poll_interval=0.5)
    finally:
        for ctx in REGISTRY.all():
            ctx.shutdown()


if __name__ == "__main__":
    main()
