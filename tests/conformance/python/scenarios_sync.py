"""The conformance scenarios with the Python SDK's synchronous API (``e2b.Sandbox``,
``e2b_code_interpreter.Sandbox``), against a running ``stasis server`` configured through
``E2B_API_KEY``, ``E2B_API_URL`` and ``E2B_SANDBOX_URL``.

    python scenarios_sync.py [scenario-name ...]
"""

import os
import sys
import threading
import time

import httpx
import e2b
import e2b_code_interpreter
from e2b import (
    AuthenticationException,
    CommandExitException,
    NotFoundException,
    SandboxNotFoundException,
    SandboxNotRunningException,
    SandboxQuery,
    SandboxState,
)

os.environ.setdefault("STASIS_GEN", "python-sync")

from harness import (  # noqa: E402 - after the generation name is set
    COUNTER,
    RUN_TAG,
    SANDBOX_URL,
    STREAM_SERVER,
    Failure,
    Scenario,
    check,
    check_eq,
    check_near,
    describe,
    eventually,
    expect_error,
    rest,
    run_sync,
    within,
)

Sandbox = e2b.Sandbox


def info(cls, sandbox_id):
    """``SandboxInfo`` of a sandbox, or None when the API answers 404."""
    try:
        return cls.get_info(sandbox_id)
    except SandboxNotFoundException:
        return None


def list_all(cls, what, **kwargs):
    paginator = cls.list(**kwargs)
    pages = []
    while paginator.has_next:
        pages.append(paginator.next_items())
        check(len(pages) <= 20, f"{what}: more than 20 pages")
    return pages


def document(flavour):
    """The user's document (written for the JS beta) step by step with this SDK: create, pause,
    resume with the default and a 60 s timeout, list paused with the paginator, kill paused
    sandboxes by instance and by id, resume after kill."""
    cls = e2b_code_interpreter.Sandbox if flavour == "ci" else e2b.Sandbox

    def run(ctx):
        sbx = cls.create()
        a = ctx.track(sbx.sandbox_id)
        check_eq(sbx.pause(), True, "pause()")
        check_eq(getattr(info(cls, a), "state", None), SandboxState.PAUSED, f"state of {a} after pause")

        other = cls.create()
        b = ctx.track(other.sandbox_id)
        check_eq(other.pause(), True, "pause() of the second sandbox")
        same = cls.connect(b)
        resumed_at = time.time()
        check_eq(same.sandbox_id, b, "resumed sandbox id")
        b_info = info(cls, b)
        check_eq(getattr(b_info, "state", None), SandboxState.RUNNING, f"state of {b} after connect")
        check_near(b_info.end_at, resumed_at + 300, 15, "end_at after a resume with the default timeout")

        cls.connect(a, timeout=60)
        a_info = info(cls, a)
        check_eq(getattr(a_info, "state", None), SandboxState.RUNNING, f"state of {a} after connect(timeout=60)")
        check_near(a_info.end_at, time.time() + 60, 5, "end_at after connect(timeout=60)")
        check_eq(cls.pause(a), True, f"second pause of {a}")

        sandboxes = [s for page in list_all(cls, "paused", query=SandboxQuery(state=[SandboxState.PAUSED])) for s in page]
        listed = [s.sandbox_id for s in sandboxes]
        check(a in listed, f"paused {a} missing from the paused list {listed}")
        check(b not in listed, f"running {b} listed as paused")
        check_eq(len(set(listed)), len(listed), f"duplicates in the paused list {listed}")
        check(all(s.state == SandboxState.PAUSED for s in sandboxes), "states in the paused list")

        for by_id in (False, True):
            label = "by id" if by_id else "by instance"
            c = cls.create()
            c_id = ctx.track(c.sandbox_id)
            check_eq(c.pause(), True, f"pause() before kill {label}")
            check_eq(cls.kill(c_id) if by_id else c.kill(), True, f"kill of a paused sandbox {label}")
            check_eq(info(cls, c_id), None, f"{c_id} after kill {label} (None = 404)")
            check_eq(cls.kill(c_id), False, f"Sandbox.kill after kill {label}")

        check_eq(cls.kill(a), True, f"Sandbox.kill({a}) of a paused sandbox")
        with expect_error(NotFoundException, f"connect to killed {a}"):
            cls.connect(a)
        with expect_error(NotFoundException, f"connect(timeout=60) to killed {a}"):
            cls.connect(a, timeout=60)

    return Scenario("1-document" if flavour == "ci" else "1-document-e2b", run, timeout=240)


def state(ctx):
    sbx = Sandbox.create(timeout=300)
    sid = ctx.track(sbx.sandbox_id)
    text = f"written before pause by {RUN_TAG}\n"
    sbx.files.write("/home/user/state.txt", text)
    counter = sbx.commands.run(COUNTER, background=True, timeout=0)
    server = sbx.commands.run("python3 -m http.server 8000 --directory /home/user", background=True, timeout=0)
    curl = "curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:8000/state.txt"
    eventually(15, 0.2, "in-sandbox http.server on :8000 answers", lambda: sbx.commands.run(curl + " || true").stdout == "200")
    time.sleep(1)
    before = int(sbx.files.read("/tmp/counter").strip())
    check(before >= 5, f"counter before pause is {before}, expected ≥ 5 after a second")

    check_eq(sbx.pause(), True, "pause()")
    check_eq(getattr(info(Sandbox, sid), "state", None), SandboxState.PAUSED, "state after pause")
    time.sleep(1.5)
    again = Sandbox.connect(sid)

    check_eq(again.files.read("/home/user/state.txt"), text, "file written before pause")
    pids = [p.pid for p in again.commands.list()]
    check(counter.pid in pids, f"background counter pid {counter.pid} not in commands.list() {pids}")
    check(server.pid in pids, f"http.server pid {server.pid} not in commands.list() {pids}")
    c1 = int(again.files.read("/tmp/counter").strip())
    check(c1 >= before, f"counter went from {before} to {c1} across the pause: restarted, not restored")
    time.sleep(1)
    c2 = int(again.files.read("/tmp/counter").strip())
    check(c2 > c1, f"counter stopped after resume: {c1} then {c2} a second later")
    check_eq(again.commands.run(curl).stdout, "200", "in-sandbox curl of the http.server after resume")

    host = again.get_host(8000)
    r = httpx.get(f"{SANDBOX_URL}/state.txt", headers={"Host": host}, timeout=10)
    check_eq(r.status_code, 200, f"GET /state.txt with Host {host} after resume")
    check_eq(r.text, text, "body of /state.txt through the proxy")


def network(ctx):
    sbx = Sandbox.create(timeout=300)
    sid = ctx.track(sbx.sandbox_id)
    sbx.files.write("/home/user/stream.py", STREAM_SERVER)
    sbx.commands.run("python3 /home/user/stream.py 8080", background=True, timeout=0)
    by_host = {"Host": sbx.get_host(8080)}
    by_headers = {"E2b-Sandbox-Id": sid, "E2b-Sandbox-Port": "8080"}

    def ping(headers):
        return httpx.get(f"{SANDBOX_URL}/ping", headers=headers, timeout=10)

    eventually(15, 0.2, "GET /ping answers 200", lambda: ping(by_host).text == "pong")

    stream = {"lines": 0, "ended": None}
    opened = threading.Event()

    def consume():
        try:
            with httpx.stream("GET", f"{SANDBOX_URL}/stream", headers=by_host, timeout=httpx.Timeout(10, read=120)) as r:
                stream["status"] = r.status_code
                opened.set()
                for _ in r.iter_lines():
                    stream["lines"] += 1
            stream["ended"] = ("end of body", time.monotonic())
        except Exception as err:  # noqa: BLE001 - how the stream ended is the observation
            stream["ended"] = (f"error ({type(err).__name__}: {err})", time.monotonic())
        finally:
            opened.set()

    reader = threading.Thread(target=consume, daemon=True)
    reader.start()
    check(opened.wait(15), "GET /stream: no response head within 15 s")
    check_eq(stream.get("status"), 200, "GET /stream")
    eventually(10, 0.05, "three streamed lines before pause", lambda: stream["lines"] >= 3)

    check(stream["ended"] is None, f"the stream ended before the pause: {stream['ended']}")
    check_eq(sbx.pause(), True, "pause() while a client streams")
    paused_at = time.monotonic()
    reader.join(10)
    check(stream["ended"] is not None, "the streaming client is still connected 10 s after pause")
    how, at = stream["ended"]
    check(at <= paused_at + 5, f"stream ended {at - paused_at:.1f} s after pause returned")
    ctx.log(f"stream ended by {how} after {stream['lines']} lines")

    for style, headers in (("Host routing", by_host), ("E2b-Sandbox-* headers", by_headers)):
        r = ping(headers)
        check_eq(r.status_code, 502, f"GET /ping by {style} while paused (body {r.text[:200]!r})")
        try:
            body = r.json()
        except ValueError:
            raise Failure(f"502 body by {style} is not JSON: {r.text[:200]!r}")
        check_eq(body.get("code"), 502, f"502 body .code by {style}")
        check("not found" in str(body.get("message", "")).lower(), f"502 body .message {body.get('message')!r} lacks 'not found'")
        check_eq(body.get("sandboxId"), sid, f"502 body .sandboxId by {style}")
    check_eq(sbx.is_running(), False, "is_running() while paused")
    with expect_error(SandboxNotRunningException, "files.read() while paused"):
        sbx.files.read("/home/user/stream.py")

    again = Sandbox.connect(sid)
    for style, headers in (("Host routing", by_host), ("E2b-Sandbox-* headers", by_headers)):
        r = ping(headers)
        check_eq(r.status_code, 200, f"first GET /ping by {style} after resume")
        check_eq(r.text, "pong", f"body of /ping by {style} after resume")
    check_eq(again.is_running(), True, "is_running() after resume")
    lines = 0
    with httpx.stream("GET", f"{SANDBOX_URL}/stream", headers=by_headers, timeout=10) as r:
        check_eq(r.status_code, 200, "new GET /stream after resume")
        for _ in r.iter_lines():
            lines += 1
            if lines >= 3:
                break


def pagination(ctx):
    suite = f"{RUN_TAG}-4"
    label = "a b&c=d/é?%"

    def meta(i):
        m = {"suite": suite, "idx": str(i), "group": "odd" if i % 2 else "even"}
        if i == 0:
            m["label"] = label
        return m

    ids = [ctx.track(Sandbox.create(timeout=300, metadata=meta(i)).sandbox_id) for i in range(8)]
    paused, running = ids[:7], ids[7]
    for sid in paused:
        check_eq(Sandbox.pause(sid), True, f"pause of {sid}")

    pages = list_all(Sandbox, "paused, limit 3", query=SandboxQuery(state=[SandboxState.PAUSED], metadata={"suite": suite}), limit=3)
    sizes = [len(p) for p in pages]
    check(all(n <= 3 for n in sizes), f"paused, limit 3: page sizes {sizes}")
    check(len(pages) >= 3, f"paused, limit 3: {len(pages)} pages ({sizes}) for 7 sandboxes")
    items = [s for p in pages for s in p]
    got = [s.sandbox_id for s in items]
    check_eq(len(set(got)), len(got), f"paused, limit 3: duplicates across pages {got}")
    check_eq(sorted(got), sorted(paused), "paused, limit 3: the ids across all pages")
    check(all(s.state == SandboxState.PAUSED for s in items), "paused, limit 3: states")
    check(all(s.metadata.get("suite") == suite for s in items), "paused, limit 3: metadata")

    def by_meta(metadata, states=None):
        q = SandboxQuery(metadata=metadata, state=states)
        return sorted(s.sandbox_id for p in list_all(Sandbox, str(metadata), query=q, limit=3) for s in p)

    check_eq(by_meta({"suite": suite, "group": "even"}, [SandboxState.PAUSED]), sorted(ids[i] for i in (0, 2, 4, 6)), "paused with group=even")
    check_eq(by_meta({"suite": suite, "label": label}, [SandboxState.PAUSED]), [ids[0]], f"paused with label={label!r}")
    check_eq(by_meta({"suite": suite}, [SandboxState.RUNNING]), [running], "running with the suite metadata")
    check_eq(by_meta({"suite": suite}), sorted(ids), "no state filter (running and paused)")
    check_eq(by_meta({"suite": suite + "-none"}, [SandboxState.PAUSED]), [], "a metadata value nobody has")


def errors(ctx):
    sbx = Sandbox.create(timeout=300)
    sid = ctx.track(sbx.sandbox_id)

    with expect_error(CommandExitException, "commands.run('exit 3')") as e:
        sbx.commands.run("exit 3")
    check_eq(e.error.exit_code, 3, "CommandExitException.exit_code")
    with expect_error(CommandExitException, "exit 7") as e:
        sbx.commands.run("echo oops >&2; exit 7")
    check_eq((e.error.exit_code, e.error.stderr), (7, "oops\n"), "CommandExitException (exit_code, stderr)")

    check_eq(sbx.pause(), True, "first pause()")
    check_eq(sbx.pause(), False, "second pause()")
    r = rest("POST", f"/sandboxes/{sid}/pause", {})
    check_eq(r.status_code, 409, f"POST /sandboxes/{sid}/pause of a paused sandbox")
    check_eq(sbx.kill(), True, "kill() of a paused sandbox")
    check_eq(sbx.kill(), False, "second kill()")
    check_eq(Sandbox.kill(sid), False, "Sandbox.kill() after kill()")
    with expect_error(SandboxNotFoundException, "pause() of a killed sandbox"):
        sbx.pause()
    with expect_error(NotFoundException, "connect to a killed sandbox"):
        Sandbox.connect(sid)

    unknown = "stasisconformanceunknown"
    with expect_error(SandboxNotFoundException, "connect to an unknown id"):
        Sandbox.connect(unknown)
    with expect_error(SandboxNotFoundException, "get_info of an unknown id"):
        Sandbox.get_info(unknown)
    with expect_error(SandboxNotFoundException, "set_timeout of an unknown id"):
        Sandbox.set_timeout(unknown, 10)
    check_eq(Sandbox.kill(unknown), False, "Sandbox.kill() of an unknown id")

    wrong = "stasis-conformance-wrong-key"
    with expect_error(AuthenticationException, "create with a wrong API key"):
        Sandbox.create(api_key=wrong)
    with expect_error(AuthenticationException, "list with a wrong API key"):
        Sandbox.list(api_key=wrong).next_items()
    with expect_error(AuthenticationException, "kill with a wrong API key"):
        Sandbox.kill(sid, api_key=wrong)


def timeouts(ctx):
    failures = []

    def expiry():
        sbx = Sandbox.create(timeout=5)
        created = time.time()
        sid = ctx.track(sbx.sandbox_id)
        check_near(info(Sandbox, sid).end_at, created + 5, 3, "end_at of a 5 s sandbox")
        time.sleep(2)
        check_eq(sbx.is_running(), True, "is_running() 2 s into a 5 s timeout")
        eventually(15, 0.25, f"5 s sandbox {sid} gone", lambda: info(Sandbox, sid) is None)
        check(time.time() - created >= 4, f"5 s sandbox gone after only {time.time() - created:.1f} s")
        check_eq(sbx.is_running(), False, "is_running() after the timeout")
        check_eq(Sandbox.kill(sid), False, "Sandbox.kill() after the timeout")
        with expect_error(NotFoundException, "connect after the timeout killed it"):
            Sandbox.connect(sid)

    def extend():
        sbx = Sandbox.create(timeout=5)
        sid = ctx.track(sbx.sandbox_id)
        sbx.set_timeout(30)
        set_at = time.time()
        check_near(info(Sandbox, sid).end_at, set_at + 30, 3, "end_at after set_timeout(30)")
        time.sleep(8)
        check_eq(getattr(info(Sandbox, sid), "state", None), SandboxState.RUNNING, "state 8 s into a 5 s timeout extended to 30 s")
        check_eq(sbx.commands.run("echo alive").stdout, "alive\n", "a command after the extension")
        sbx.set_timeout(2)
        shortened = time.time()
        eventually(12, 0.25, f"sandbox {sid} gone after set_timeout(2)", lambda: info(Sandbox, sid) is None)
        check(time.time() - shortened >= 1, "gone less than a second after set_timeout(2)")

    def auto_pause():
        sbx = Sandbox.create(timeout=5, lifecycle={"on_timeout": "pause"})
        sid = ctx.track(sbx.sandbox_id)
        sbx.files.write("/home/user/auto.txt", "kept")
        eventually(15, 0.25, f"auto-pause of {sid} at its timeout", lambda: getattr(info(Sandbox, sid), "state", None) == SandboxState.PAUSED)
        again = Sandbox.connect(sid, timeout=5)
        check_eq(again.files.read("/home/user/auto.txt"), "kept", "file after auto-pause and connect")

        def paused_again():
            i = info(Sandbox, sid)
            if i is None:
                raise Failure(f"{sid} was killed at its second timeout instead of paused")
            return i.state == SandboxState.PAUSED

        eventually(15, 0.25, f"second auto-pause of {sid} after a resume", paused_again)

    def auto_resume():
        sbx = Sandbox.create(timeout=5, lifecycle={"on_timeout": "pause", "auto_resume": True})
        sid = ctx.track(sbx.sandbox_id)
        sbx.files.write("/home/user/index.html", "awake")
        sbx.commands.run("python3 -m http.server 8000 --directory /home/user", background=True, timeout=0)
        host = {"Host": sbx.get_host(8000)}
        eventually(10, 0.2, "GET /index.html before the timeout", lambda: httpx.get(f"{SANDBOX_URL}/index.html", headers=host, timeout=5).status_code == 200)
        eventually(15, 0.25, f"auto-pause of {sid}", lambda: getattr(info(Sandbox, sid), "state", None) == SandboxState.PAUSED)
        time.sleep(1)
        r = httpx.get(f"{SANDBOX_URL}/index.html", headers=host, timeout=20)
        check_eq(r.status_code, 200, "GET /index.html of an auto-paused sandbox with auto_resume")
        check_eq(r.text, "awake", "body served after auto-resume")
        check_eq(getattr(info(Sandbox, sid), "state", None), SandboxState.RUNNING, "state after traffic auto-resumed it")

    def guarded(fn):
        def run():
            try:
                fn()
            except BaseException as err:  # noqa: BLE001 - collected and reported below
                failures.append(f"{fn.__name__}: {err if isinstance(err, Failure) else describe(err)}")

        return threading.Thread(target=run, daemon=True)

    threads = [guarded(f) for f in (expiry, extend, auto_pause, auto_resume)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    if failures:
        raise Failure("; ".join(failures))
    check(not any(t.is_alive() for t in threads), "a timeout check still runs after 60 s")


def interpreter_state(ctx):
    """Loaded variables survive a pause: the document's promise, with the code interpreter."""
    cls = e2b_code_interpreter.Sandbox
    sbx = cls.create(timeout=300)
    sid = ctx.track(sbx.sandbox_id)
    first = sbx.run_code("x = 41 + 1\nx")
    check(first.error is None, f"run_code before pause: {first.error}")
    check_eq(first.text, "42", "run_code result before pause")
    check_eq(sbx.pause(), True, "pause()")
    again = cls.connect(sid)
    after = again.run_code("x")
    check(after.error is None, f"run_code('x') after resume: {after.error}")
    check_eq(after.text, "42", "run_code('x') after resume")


def abandoned_pause(ctx):
    """A client that gives up on pause() (a request timeout, a serverless function killed) must
    not leave the sandbox stuck: it ends up paused or running, and connect and kill work."""
    sbx = Sandbox.create(timeout=300)
    sid = ctx.track(sbx.sandbox_id)
    sbx.files.write("/home/user/kept.txt", "kept")
    try:
        outcome = f"answered {sbx.pause(request_timeout=0.04)!r}"
    except Exception as err:  # noqa: BLE001 - giving up is the point
        outcome = f"gave up ({type(err).__name__})"
    ctx.log(f"pause with request_timeout 0.04: {outcome}")

    def settled():
        s = getattr(info(Sandbox, sid), "state", None)
        return s in (SandboxState.PAUSED, SandboxState.RUNNING) and s

    state = eventually(15, 0.25, f"{sid} settles after an abandoned pause ({outcome})", settled)
    again = within(15, f"connect after an abandoned pause (state {state})", lambda: Sandbox.connect(sid))
    check_eq(again.files.read("/home/user/kept.txt"), "kept", "file after an abandoned pause and connect")
    check_eq(within(15, "kill after an abandoned pause", lambda: Sandbox.kill(sid)), True, "Sandbox.kill()")


def repeated_cycles(ctx):
    """Five pause/resume cycles in a row (E2B#736: the second cycle failed; E2B#884: files lost
    after repeated cycles): every write survives every cycle, the same process keeps running."""
    sbx = Sandbox.create(timeout=300)
    sid = ctx.track(sbx.sandbox_id)
    sleeper = sbx.commands.run("sleep infinity", background=True, timeout=0)
    current = sbx
    for i in range(1, 6):
        current.files.write(f"/home/user/cycle-{i}.txt", f"cycle {i}")
        current.commands.run(f"echo {i} >> /home/user/log.txt")
        check_eq(current.pause(), True, f"pause() #{i}")
        current = Sandbox.connect(sid)
        for j in range(1, i + 1):
            check_eq(current.files.read(f"/home/user/cycle-{j}.txt"), f"cycle {j}", f"cycle-{j}.txt after resume #{i}")
        check_eq(current.files.read("/home/user/log.txt"), "".join(f"{k}\n" for k in range(1, i + 1)), f"log.txt after resume #{i}")
        pids = [p.pid for p in current.commands.list()]
        check(sleeper.pid in pids, f"pid {sleeper.pid} missing after resume #{i}: {pids}")


EGRESS = "curl -sk -o /dev/null -m 8 -w '%{http_code}' https://pypi.org/simple/six/ || true"


def egress(ctx):
    """Internet on by default, off per sandbox, allow/deny lists on create and while running,
    and egress back after a pause/resume."""
    sbx = Sandbox.create(timeout=300)
    sid = ctx.track(sbx.sandbox_id)
    check_eq(sbx.commands.run(EGRESS).stdout, "200", "egress with the default network")
    sbx.update_network({"deny_out": ["0.0.0.0/0"]})
    check_eq(sbx.commands.run(EGRESS).stdout, "000", "egress after update_network(deny_out=['0.0.0.0/0'])")
    sbx.update_network({})
    check_eq(sbx.commands.run(EGRESS).stdout, "200", "egress after update_network({}) cleared the rules")
    check_eq(sbx.pause(), True, "pause()")
    again = Sandbox.connect(sid)
    check_eq(again.commands.run(EGRESS).stdout, "200", "egress after resume")

    closed = Sandbox.create(timeout=300, allow_internet_access=False)
    ctx.track(closed.sandbox_id)
    check_eq(closed.commands.run(EGRESS).stdout, "000", "egress with allow_internet_access=False")
    listed = Sandbox.create(timeout=300, network={"deny_out": ["0.0.0.0/0"], "allow_out": ["pypi.org"]})
    ctx.track(listed.sandbox_id)
    check_eq(listed.commands.run(EGRESS).stdout, "200", "egress to an allow_out name under deny_out ['0.0.0.0/0']")


SCENARIOS = [
    document("ci"),
    document("e2b"),
    Scenario("2-state", state),
    Scenario("3-network", network),
    Scenario("4-pagination", pagination),
    Scenario("5-errors", errors),
    Scenario("6-timeouts", timeouts),
    Scenario("7-interpreter-state", interpreter_state),
    Scenario("8-abandoned-pause", abandoned_pause),
    Scenario("9-repeated-cycles", repeated_cycles),
    Scenario("10-egress", egress),
]

if __name__ == "__main__":
    sys.exit(1 if run_sync(SCENARIOS, sys.argv[1:]) else 0)
