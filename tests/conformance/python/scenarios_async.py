"""The conformance scenarios with the Python SDK's asynchronous API (``e2b.AsyncSandbox``,
``e2b_code_interpreter.AsyncSandbox``): the same steps as ``scenarios_sync.py``, awaited.

    python scenarios_async.py [scenario-name ...]
"""

import asyncio
import os
import sys
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

os.environ.setdefault("STASIS_GEN", "python-async")

from harness import (  # noqa: E402 - after the generation name is set
    COUNTER,
    RUN_TAG,
    SANDBOX_URL,
    STREAM_SERVER,
    Failure,
    Scenario,
    aeventually,
    check,
    check_eq,
    check_near,
    describe,
    expect_error,
    rest,
    run_async,
)

Sandbox = e2b.AsyncSandbox


async def info(cls, sandbox_id):
    """``SandboxInfo`` of a sandbox, or None when the API answers 404."""
    try:
        return await cls.get_info(sandbox_id)
    except SandboxNotFoundException:
        return None


async def state_of(cls, sandbox_id):
    return getattr(await info(cls, sandbox_id), "state", None)


async def list_all(cls, what, **kwargs):
    paginator = cls.list(**kwargs)
    pages = []
    while paginator.has_next:
        pages.append(await paginator.next_items())
        check(len(pages) <= 20, f"{what}: more than 20 pages")
    return pages


def document(flavour):
    """The user's document step by step with the async API (see scenarios_sync.document)."""
    cls = e2b_code_interpreter.AsyncSandbox if flavour == "ci" else e2b.AsyncSandbox

    async def run(ctx):
        sbx = await cls.create()
        a = ctx.track(sbx.sandbox_id)
        check_eq(await sbx.pause(), True, "pause()")
        check_eq(await state_of(cls, a), SandboxState.PAUSED, f"state of {a} after pause")

        other = await cls.create()
        b = ctx.track(other.sandbox_id)
        check_eq(await other.pause(), True, "pause() of the second sandbox")
        same = await cls.connect(b)
        resumed_at = time.time()
        check_eq(same.sandbox_id, b, "resumed sandbox id")
        b_info = await info(cls, b)
        check_eq(getattr(b_info, "state", None), SandboxState.RUNNING, f"state of {b} after connect")
        check_near(b_info.end_at, resumed_at + 300, 15, "end_at after a resume with the default timeout")

        await cls.connect(a, timeout=60)
        a_info = await info(cls, a)
        check_eq(getattr(a_info, "state", None), SandboxState.RUNNING, f"state of {a} after connect(timeout=60)")
        check_near(a_info.end_at, time.time() + 60, 5, "end_at after connect(timeout=60)")
        check_eq(await cls.pause(a), True, f"second pause of {a}")

        pages = await list_all(cls, "paused", query=SandboxQuery(state=[SandboxState.PAUSED]))
        sandboxes = [s for page in pages for s in page]
        listed = [s.sandbox_id for s in sandboxes]
        check(a in listed, f"paused {a} missing from the paused list {listed}")
        check(b not in listed, f"running {b} listed as paused")
        check_eq(len(set(listed)), len(listed), f"duplicates in the paused list {listed}")
        check(all(s.state == SandboxState.PAUSED for s in sandboxes), "states in the paused list")

        for by_id in (False, True):
            label = "by id" if by_id else "by instance"
            c = await cls.create()
            c_id = ctx.track(c.sandbox_id)
            check_eq(await c.pause(), True, f"pause() before kill {label}")
            check_eq(await (cls.kill(c_id) if by_id else c.kill()), True, f"kill of a paused sandbox {label}")
            check_eq(await info(cls, c_id), None, f"{c_id} after kill {label} (None = 404)")
            check_eq(await cls.kill(c_id), False, f"Sandbox.kill after kill {label}")

        check_eq(await cls.kill(a), True, f"Sandbox.kill({a}) of a paused sandbox")
        with expect_error(NotFoundException, f"connect to killed {a}"):
            await cls.connect(a)

    return Scenario("1-document" if flavour == "ci" else "1-document-e2b", run, timeout=240)


async def state(ctx):
    sbx = await Sandbox.create(timeout=300)
    sid = ctx.track(sbx.sandbox_id)
    text = f"written before pause by {RUN_TAG}\n"
    await sbx.files.write("/home/user/state.txt", text)
    counter = await sbx.commands.run(COUNTER, background=True, timeout=0)
    server = await sbx.commands.run("python3 -m http.server 8000 --directory /home/user", background=True, timeout=0)
    curl = "curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:8000/state.txt"

    async def up():
        return (await sbx.commands.run(curl + " || true")).stdout == "200"

    await aeventually(15, 0.2, "in-sandbox http.server on :8000 answers", up)
    await asyncio.sleep(1)
    before = int((await sbx.files.read("/tmp/counter")).strip())
    check(before >= 5, f"counter before pause is {before}, expected ≥ 5 after a second")

    check_eq(await sbx.pause(), True, "pause()")
    check_eq(await state_of(Sandbox, sid), SandboxState.PAUSED, "state after pause")
    await asyncio.sleep(1.5)
    again = await Sandbox.connect(sid)

    check_eq(await again.files.read("/home/user/state.txt"), text, "file written before pause")
    pids = [p.pid for p in await again.commands.list()]
    check(counter.pid in pids, f"background counter pid {counter.pid} not in commands.list() {pids}")
    check(server.pid in pids, f"http.server pid {server.pid} not in commands.list() {pids}")
    c1 = int((await again.files.read("/tmp/counter")).strip())
    check(c1 >= before, f"counter went from {before} to {c1} across the pause: restarted, not restored")
    await asyncio.sleep(1)
    c2 = int((await again.files.read("/tmp/counter")).strip())
    check(c2 > c1, f"counter stopped after resume: {c1} then {c2} a second later")
    check_eq((await again.commands.run(curl)).stdout, "200", "in-sandbox curl of the http.server after resume")

    async with httpx.AsyncClient(timeout=10) as client:
        r = await client.get(f"{SANDBOX_URL}/state.txt", headers={"Host": again.get_host(8000)})
    check_eq(r.status_code, 200, "GET /state.txt by Host routing after resume")
    check_eq(r.text, text, "body of /state.txt through the proxy")


async def network(ctx):
    sbx = await Sandbox.create(timeout=300)
    sid = ctx.track(sbx.sandbox_id)
    await sbx.files.write("/home/user/stream.py", STREAM_SERVER)
    await sbx.commands.run("python3 /home/user/stream.py 8080", background=True, timeout=0)
    by_host = {"Host": sbx.get_host(8080)}
    by_headers = {"E2b-Sandbox-Id": sid, "E2b-Sandbox-Port": "8080"}

    async with httpx.AsyncClient(timeout=httpx.Timeout(10, read=120)) as client:

        async def ping(headers):
            return await client.get(f"{SANDBOX_URL}/ping", headers=headers)

        async def pong():
            return (await ping(by_host)).text == "pong"

        await aeventually(15, 0.2, "GET /ping answers 200", pong)

        stream = {"lines": 0}
        opened = asyncio.Event()

        async def consume():
            try:
                async with client.stream("GET", f"{SANDBOX_URL}/stream", headers=by_host) as r:
                    stream["status"] = r.status_code
                    opened.set()
                    async for _ in r.aiter_lines():
                        stream["lines"] += 1
                return ("end of body", time.monotonic())
            except Exception as err:  # noqa: BLE001 - how the stream ended is the observation
                return (f"error ({type(err).__name__}: {err})", time.monotonic())
            finally:
                opened.set()

        reader = asyncio.create_task(consume())
        try:
            await asyncio.wait_for(opened.wait(), 15)
        except asyncio.TimeoutError:
            raise Failure("GET /stream: no response head within 15 s")
        check_eq(stream.get("status"), 200, "GET /stream")

        async def three():
            return stream["lines"] >= 3

        await aeventually(10, 0.05, "three streamed lines before pause", three)
        check(not reader.done(), f"the stream ended before the pause: {reader.result() if reader.done() else ''}")
        check_eq(await sbx.pause(), True, "pause() while a client streams")
        paused_at = time.monotonic()
        done, _ = await asyncio.wait({reader}, timeout=10)
        if not done:
            reader.cancel()
            raise Failure("the streaming client is still connected 10 s after pause")
        how, at = reader.result()
        check(at <= paused_at + 5, f"stream ended {at - paused_at:.1f} s after pause returned")
        ctx.log(f"stream ended by {how} after {stream['lines']} lines")

        for style, headers in (("Host routing", by_host), ("E2b-Sandbox-* headers", by_headers)):
            r = await ping(headers)
            check_eq(r.status_code, 502, f"GET /ping by {style} while paused (body {r.text[:200]!r})")
            try:
                body = r.json()
            except ValueError:
                raise Failure(f"502 body by {style} is not JSON: {r.text[:200]!r}")
            check_eq(body.get("code"), 502, f"502 body .code by {style}")
            check("not found" in str(body.get("message", "")).lower(), f"502 body .message {body.get('message')!r} lacks 'not found'")
            check_eq(body.get("sandboxId"), sid, f"502 body .sandboxId by {style}")
        check_eq(await sbx.is_running(), False, "is_running() while paused")
        with expect_error(SandboxNotRunningException, "files.read() while paused"):
            await sbx.files.read("/home/user/stream.py")

        again = await Sandbox.connect(sid)
        for style, headers in (("Host routing", by_host), ("E2b-Sandbox-* headers", by_headers)):
            r = await ping(headers)
            check_eq(r.status_code, 200, f"first GET /ping by {style} after resume")
            check_eq(r.text, "pong", f"body of /ping by {style} after resume")
        check_eq(await again.is_running(), True, "is_running() after resume")
        lines = 0
        async with client.stream("GET", f"{SANDBOX_URL}/stream", headers=by_headers) as r:
            check_eq(r.status_code, 200, "new GET /stream after resume")
            async for _ in r.aiter_lines():
                lines += 1
                if lines >= 3:
                    break


async def pagination(ctx):
    suite = f"{RUN_TAG}-4"
    label = "a b&c=d/é?%"

    def meta(i):
        m = {"suite": suite, "idx": str(i), "group": "odd" if i % 2 else "even"}
        if i == 0:
            m["label"] = label
        return m

    made = await asyncio.gather(*(Sandbox.create(timeout=300, metadata=meta(i)) for i in range(8)))
    ids = [ctx.track(s.sandbox_id) for s in made]
    paused, running = ids[:7], ids[7]
    answers = await asyncio.gather(*(Sandbox.pause(sid) for sid in paused))
    check_eq(answers, [True] * 7, "pause of 7 sandboxes at once")

    q = SandboxQuery(state=[SandboxState.PAUSED], metadata={"suite": suite})
    pages = await list_all(Sandbox, "paused, limit 3", query=q, limit=3)
    sizes = [len(p) for p in pages]
    check(all(n <= 3 for n in sizes), f"paused, limit 3: page sizes {sizes}")
    check(len(pages) >= 3, f"paused, limit 3: {len(pages)} pages ({sizes}) for 7 sandboxes")
    items = [s for p in pages for s in p]
    got = [s.sandbox_id for s in items]
    check_eq(len(set(got)), len(got), f"paused, limit 3: duplicates across pages {got}")
    check_eq(sorted(got), sorted(paused), "paused, limit 3: the ids across all pages")
    check(all(s.state == SandboxState.PAUSED for s in items), "paused, limit 3: states")

    async def by_meta(metadata, states=None):
        pages = await list_all(Sandbox, str(metadata), query=SandboxQuery(metadata=metadata, state=states), limit=3)
        return sorted(s.sandbox_id for p in pages for s in p)

    check_eq(await by_meta({"suite": suite, "group": "even"}, [SandboxState.PAUSED]), sorted(ids[i] for i in (0, 2, 4, 6)), "paused with group=even")
    check_eq(await by_meta({"suite": suite, "label": label}, [SandboxState.PAUSED]), [ids[0]], f"paused with label={label!r}")
    check_eq(await by_meta({"suite": suite}, [SandboxState.RUNNING]), [running], "running with the suite metadata")
    check_eq(await by_meta({"suite": suite}), sorted(ids), "no state filter (running and paused)")


async def errors(ctx):
    sbx = await Sandbox.create(timeout=300)
    sid = ctx.track(sbx.sandbox_id)

    with expect_error(CommandExitException, "commands.run('exit 3')") as e:
        await sbx.commands.run("exit 3")
    check_eq(e.error.exit_code, 3, "CommandExitException.exit_code")

    check_eq(await sbx.pause(), True, "first pause()")
    check_eq(await sbx.pause(), False, "second pause()")
    check_eq(await sbx.kill(), True, "kill() of a paused sandbox")
    check_eq(await sbx.kill(), False, "second kill()")
    with expect_error(SandboxNotFoundException, "pause() of a killed sandbox"):
        await sbx.pause()
    with expect_error(NotFoundException, "connect to a killed sandbox"):
        await Sandbox.connect(sid)

    unknown = "stasisconformanceunknown"
    with expect_error(SandboxNotFoundException, "connect to an unknown id"):
        await Sandbox.connect(unknown)
    with expect_error(SandboxNotFoundException, "get_info of an unknown id"):
        await Sandbox.get_info(unknown)
    check_eq(await Sandbox.kill(unknown), False, "Sandbox.kill() of an unknown id")

    wrong = "stasis-conformance-wrong-key"
    with expect_error(AuthenticationException, "create with a wrong API key"):
        await Sandbox.create(api_key=wrong)
    with expect_error(AuthenticationException, "list with a wrong API key"):
        await Sandbox.list(api_key=wrong).next_items()


async def timeouts(ctx):
    async def expiry():
        sbx = await Sandbox.create(timeout=5)
        created = time.time()
        sid = ctx.track(sbx.sandbox_id)
        check_near((await info(Sandbox, sid)).end_at, created + 5, 3, "end_at of a 5 s sandbox")
        await asyncio.sleep(2)
        check_eq(await sbx.is_running(), True, "is_running() 2 s into a 5 s timeout")

        async def gone():
            return await info(Sandbox, sid) is None

        await aeventually(15, 0.25, f"5 s sandbox {sid} gone", gone)
        check(time.time() - created >= 4, f"5 s sandbox gone after only {time.time() - created:.1f} s")
        check_eq(await sbx.is_running(), False, "is_running() after the timeout")
        check_eq(await Sandbox.kill(sid), False, "Sandbox.kill() after the timeout")

    async def extend():
        sbx = await Sandbox.create(timeout=5)
        sid = ctx.track(sbx.sandbox_id)
        await sbx.set_timeout(30)
        set_at = time.time()
        check_near((await info(Sandbox, sid)).end_at, set_at + 30, 3, "end_at after set_timeout(30)")
        await asyncio.sleep(8)
        check_eq(await state_of(Sandbox, sid), SandboxState.RUNNING, "state 8 s into a 5 s timeout extended to 30 s")
        await sbx.set_timeout(2)

        async def gone():
            return await info(Sandbox, sid) is None

        await aeventually(12, 0.25, f"sandbox {sid} gone after set_timeout(2)", gone)

    async def auto_pause():
        sbx = await Sandbox.create(timeout=5, lifecycle={"on_timeout": "pause"})
        sid = ctx.track(sbx.sandbox_id)

        async def paused():
            i = await info(Sandbox, sid)
            if i is None:
                raise Failure(f"{sid} was killed at its timeout instead of paused")
            return i.state == SandboxState.PAUSED

        await aeventually(15, 0.25, f"auto-pause of {sid} at its timeout", paused)
        await Sandbox.connect(sid, timeout=5)
        await aeventually(15, 0.25, f"second auto-pause of {sid} after a resume", paused)

    async def auto_resume():
        sbx = await Sandbox.create(timeout=5, lifecycle={"on_timeout": "pause", "auto_resume": True})
        sid = ctx.track(sbx.sandbox_id)
        await sbx.files.write("/home/user/index.html", "awake")
        await sbx.commands.run("python3 -m http.server 8000 --directory /home/user", background=True, timeout=0)
        host = {"Host": sbx.get_host(8000)}
        async with httpx.AsyncClient(timeout=20) as client:

            async def up():
                return (await client.get(f"{SANDBOX_URL}/index.html", headers=host)).status_code == 200

            async def paused():
                return await state_of(Sandbox, sid) == SandboxState.PAUSED

            await aeventually(10, 0.2, "GET /index.html before the timeout", up)
            await aeventually(15, 0.25, f"auto-pause of {sid}", paused)
            await asyncio.sleep(1)
            r = await client.get(f"{SANDBOX_URL}/index.html", headers=host)
        check_eq(r.status_code, 200, "GET /index.html of an auto-paused sandbox with auto_resume")
        check_eq(r.text, "awake", "body served after auto-resume")
        check_eq(await state_of(Sandbox, sid), SandboxState.RUNNING, "state after traffic auto-resumed it")

    checks = (expiry, extend, auto_pause, auto_resume)
    results = await asyncio.gather(*(f() for f in checks), return_exceptions=True)
    failures = [
        f"{f.__name__}: {r if isinstance(r, Failure) else describe(r)}"
        for f, r in zip(checks, results)
        if isinstance(r, BaseException)
    ]
    if failures:
        raise Failure("; ".join(failures))


async def interpreter_state(ctx):
    """Loaded variables survive a pause: the document's promise, with the code interpreter."""
    cls = e2b_code_interpreter.AsyncSandbox
    sbx = await cls.create(timeout=300)
    sid = ctx.track(sbx.sandbox_id)
    first = await sbx.run_code("x = 41 + 1\nx")
    check(first.error is None, f"run_code before pause: {first.error}")
    check_eq(first.text, "42", "run_code result before pause")
    check_eq(await sbx.pause(), True, "pause()")
    again = await cls.connect(sid)
    after = await again.run_code("x")
    check(after.error is None, f"run_code('x') after resume: {after.error}")
    check_eq(after.text, "42", "run_code('x') after resume")


async def abandoned_pause(ctx):
    """A client that gives up on pause() must not leave the sandbox stuck: it ends up paused or
    running, and connect and kill work."""
    sbx = await Sandbox.create(timeout=300)
    sid = ctx.track(sbx.sandbox_id)
    await sbx.files.write("/home/user/kept.txt", "kept")
    try:
        outcome = f"answered {await sbx.pause(request_timeout=0.04)!r}"
    except Exception as err:  # noqa: BLE001 - giving up is the point
        outcome = f"gave up ({type(err).__name__})"
    ctx.log(f"pause with request_timeout 0.04: {outcome}")

    async def settled():
        s = await state_of(Sandbox, sid)
        return s in (SandboxState.PAUSED, SandboxState.RUNNING) and s

    state = await aeventually(15, 0.25, f"{sid} settles after an abandoned pause ({outcome})", settled)
    try:
        again = await asyncio.wait_for(Sandbox.connect(sid), 15)
    except asyncio.TimeoutError:
        raise Failure(f"connect after an abandoned pause (state {state}): no answer within 15 s")
    check_eq(await again.files.read("/home/user/kept.txt"), "kept", "file after an abandoned pause and connect")
    try:
        check_eq(await asyncio.wait_for(Sandbox.kill(sid), 15), True, "Sandbox.kill()")
    except asyncio.TimeoutError:
        raise Failure("kill after an abandoned pause: no answer within 15 s")


async def repeated_cycles(ctx):
    """Five pause/resume cycles in a row: every write survives every cycle, the same process runs."""
    sbx = await Sandbox.create(timeout=300)
    sid = ctx.track(sbx.sandbox_id)
    sleeper = await sbx.commands.run("sleep infinity", background=True, timeout=0)
    current = sbx
    for i in range(1, 6):
        await current.files.write(f"/home/user/cycle-{i}.txt", f"cycle {i}")
        await current.commands.run(f"echo {i} >> /home/user/log.txt")
        check_eq(await current.pause(), True, f"pause() #{i}")
        current = await Sandbox.connect(sid)
        for j in range(1, i + 1):
            check_eq(await current.files.read(f"/home/user/cycle-{j}.txt"), f"cycle {j}", f"cycle-{j}.txt after resume #{i}")
        check_eq(await current.files.read("/home/user/log.txt"), "".join(f"{k}\n" for k in range(1, i + 1)), f"log.txt after resume #{i}")
        pids = [p.pid for p in await current.commands.list()]
        check(sleeper.pid in pids, f"pid {sleeper.pid} missing after resume #{i}: {pids}")


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
]

if __name__ == "__main__":
    sys.exit(1 if asyncio.run(run_async(SCENARIOS, sys.argv[1:])) else 0)
