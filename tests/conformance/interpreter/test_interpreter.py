"""Code interpreter conformance: the official `e2b-code-interpreter` Python SDK (sync API) against a
running `stasis server`, through the SDK's own environment variables (E2B_API_KEY, E2B_API_URL,
E2B_SANDBOX_URL). Prints `PASS <gen> <scenario>` or `FAIL <gen> <scenario>: <reason>` per scenario
(gen: $STASIS_GEN, default interp-python); exits non-zero when any failed.

    python test_interpreter.py [scenario ...]
"""

import base64
import os
import sys
import time
import traceback

from e2b import NotFoundException, TimeoutException
from e2b_code_interpreter import Sandbox

GEN = os.environ.get("STASIS_GEN", "interp-python")
DEBUG = os.environ.get("STASIS_CONFORMANCE_DEBUG") == "1"
SERVICE_LOG = "/var/log/stasis-template-start.log"


class Failure(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failure(what)


def check_eq(got, want, what):
    if got != want:
        raise Failure(f"{what}: got {got!r}, want {want!r}")


def debug(msg):
    if DEBUG:
        print(f"[{GEN}] {msg}", file=sys.stderr, flush=True)


def s_default_template(sbx):
    """Sandbox.create() with no template gives an interpreter; variables persist across calls."""
    first = sbx.run_code("x = 41\nprint('hello')")
    check_eq(first.error, None, "error of `x = 41`")
    check_eq(first.logs.stdout, ["hello\n"], "stdout of print")
    check(first.execution_count is not None, "execution_count is missing")
    second = sbx.run_code("x + 1")
    check_eq(second.text, "42", "text of `x + 1`")
    check_eq(second.execution_count, first.execution_count + 1, "execution_count after one more run")
    check(second.results and second.results[0].is_main_result, "the value of the last expression is the main result")
    quoted = sbx.run_code("'abc'")
    check_eq(quoted.text, "abc", "text of a string value (E2B unquotes it)")
    seen = []
    streamed = sbx.run_code("import sys\nfor i in range(3): print(i, flush=True)\nprint('err', file=sys.stderr)", on_stdout=lambda m: seen.append(m.line))
    check_eq("".join(seen), "0\n1\n2\n", "on_stdout callback lines")
    check_eq("".join(streamed.logs.stderr), "err\n", "stderr")


def s_rich_output(sbx):
    """A matplotlib figure comes back as a PNG result that decodes as an image; display() works."""
    ex = sbx.run_code(
        "import matplotlib.pyplot as plt\nimport numpy as np\n"
        "xs = np.linspace(0, 6.3, 50)\nplt.plot(xs, np.sin(xs))\nplt.title('sine')\nplt.show()"
    )
    check_eq(ex.error, None, "error of the plot")
    pngs = [r.png for r in ex.results if r.png]
    check(len(pngs) == 1, f"one PNG result, got formats {[list(r.formats()) for r in ex.results]}")
    raw = base64.b64decode(pngs[0])
    check(raw.startswith(b"\x89PNG\r\n\x1a\n"), "the PNG result decodes to PNG bytes")
    width, height = int.from_bytes(raw[16:20], "big"), int.from_bytes(raw[20:24], "big")
    check(width > 100 and height > 100, f"PNG size {width}x{height}")
    html = sbx.run_code("from IPython.display import display, HTML\ndisplay(HTML('<b>bold</b>'))\n7")
    check(any(r.html == "<b>bold</b>" and not r.is_main_result for r in html.results), f"display(HTML) result: {html.results}")
    check_eq(html.text, "7", "main result next to a display()")
    df = sbx.run_code("import pandas as pd\npd.DataFrame({'a': [1, 2], 'b': ['x', 'y']})")
    main = [r for r in df.results if r.is_main_result]
    check(main and main[0].html and "<table" in main[0].html, "a DataFrame has an HTML table")
    check_eq(main[0].data, {"a": [1, 2], "b": ["x", "y"]}, "a DataFrame's data")


def s_error(sbx):
    """An exception comes back as name, value and traceback; output before it is kept."""
    ex = sbx.run_code("print('before')\ndef f():\n    return 1 / 0\nf()")
    check(ex.error is not None, "no error for 1/0")
    check_eq(ex.error.name, "ZeroDivisionError", "error name")
    check_eq(ex.error.value, "division by zero", "error value")
    check(isinstance(ex.error.traceback, str) and "ZeroDivisionError" in ex.error.traceback and "f()" in ex.error.traceback, f"traceback: {ex.error.traceback!r}")
    check("\x1b[" not in ex.error.traceback, "traceback without terminal colours")
    check_eq(ex.logs.stdout, ["before\n"], "stdout before the error")
    after = sbx.run_code("1 + 1")
    check_eq(after.text, "2", "the kernel works after an error")


def s_contexts(sbx):
    """Contexts keep separate state; list, restart and remove work; env_vars are per execution."""
    a = sbx.create_code_context()
    b = sbx.create_code_context(cwd="/tmp")
    check_eq(a.language, "python", "default language of a context")
    check_eq(b.cwd, "/tmp", "cwd of a context")
    sbx.run_code("v = 'a'", context=a)
    sbx.run_code("v = 'b'", context=b)
    check_eq(sbx.run_code("v", context=a).text, "a", "v in context a")
    check_eq(sbx.run_code("v", context=b).text, "b", "v in context b")
    check_eq(sbx.run_code("import os; os.getcwd()", context=b).text, "/tmp", "cwd in context b")
    missing = sbx.run_code("v", context=None)
    check(missing.error is not None and missing.error.name == "NameError", "the default context does not see v")
    ids = {c.id for c in sbx.list_code_contexts()}
    check(a.id in ids and b.id in ids, f"list_code_contexts has both: {ids}")
    env = sbx.run_code("import os; os.environ.get('STASIS_T')", context=a, envs={"STASIS_T": "per-run"})
    check_eq(env.text, "per-run", "env_vars seen by the execution")
    gone = sbx.run_code("import os; os.environ.get('STASIS_T', 'unset')", context=a)
    check_eq(gone.text, "unset", "env_vars do not outlive their execution")
    sbx.restart_code_context(a)
    after = sbx.run_code("v", context=a)
    check(after.error is not None and after.error.name == "NameError", "state is gone after a restart")
    sbx.remove_code_context(b)
    check(b.id not in {c.id for c in sbx.list_code_contexts()}, "a removed context is not listed")
    js = sbx.run_code("const s = [1, 2, 3].map((n) => n * 2); s.length", language="javascript")
    check_eq(js.text, "3", "a JavaScript context")
    check_eq(sbx.run_code("s[2]", language="javascript").text, "6", "JavaScript state persists")
    sh = sbx.run_code("X=5; echo $((X * 2))", language="bash")
    check_eq("".join(sh.logs.stdout), "10\n", "a bash context")


def s_invalid_context(sbx):
    """An unknown context id is NotFound; context and language together are refused."""
    ctx = sbx.create_code_context()
    sbx.remove_code_context(ctx)
    try:
        sbx.run_code("1", context=ctx)
    except NotFoundException:
        pass
    else:
        raise Failure("run_code in a removed context did not raise NotFoundException")
    try:
        sbx.remove_code_context("no-such-context")
    except NotFoundException:
        pass
    else:
        raise Failure("remove_code_context of an unknown id did not raise NotFoundException")


def s_interrupt(sbx):
    """A client timeout interrupts an endless loop; the kernel and its state survive."""
    sbx.run_code("kept = 'still here'")
    started = time.monotonic()
    try:
        sbx.run_code("while True:\n    pass", timeout=3)
    except TimeoutException:
        pass
    else:
        raise Failure("an endless loop with timeout=3 did not raise TimeoutException")
    check(time.monotonic() - started < 30, "the timeout took too long")
    nxt = sbx.run_code("kept", timeout=30)
    check_eq(nxt.text, "still here", "the next execution after an interrupt")
    big = sbx.run_code("for i in range(200000): print(i)", timeout=120)
    out = "".join(big.logs.stdout)
    check(out.startswith("0\n1\n") and out.endswith("199999\n"), f"a large output arrives whole ({len(out)} chars)")
    died = sbx.run_code("import os; os._exit(1)", timeout=60)
    check(died.error is not None, "a kernel that exits is reported as an error")
    check_eq(sbx.run_code("40 + 2", timeout=60).text, "42", "the context works again after its kernel died")


def s_pause_resume(sbx):
    """Variables, imports, open files and the counter survive pause + connect."""
    sbx.run_code("import numpy as np\nx = 7\narr = np.arange(5)\nf = open('/tmp/held.txt', 'w+')\nf.write('abc'); f.flush()")
    before = sbx.run_code("x")
    check_eq(before.text, "7", "x before pause")
    check(sbx.pause(), "pause() returned False")
    again = sbx.connect()
    after = again.run_code("x")
    check_eq(after.error, None, "error of the first run_code after resume")
    check_eq(after.text, "7", "x after resume")
    check_eq(after.execution_count, before.execution_count + 1, "execution counter after resume")
    check_eq(again.run_code("int(arr.sum())").text, "10", "a numpy array after resume")
    f = again.run_code("f.seek(0); f.read()")
    check_eq(f.text, "abc", "an open file after resume")


SCENARIOS = {
    "default-template": s_default_template,
    "rich-output": s_rich_output,
    "error": s_error,
    "contexts": s_contexts,
    "invalid-context": s_invalid_context,
    "interrupt": s_interrupt,
    "pause-resume": s_pause_resume,
}


def main(names):
    names = names or list(SCENARIOS)
    failed = 0
    for name in names:
        fn = SCENARIOS.get(name)
        if fn is None:
            print(f"FAIL {GEN} {name}: unknown scenario (known: {' '.join(SCENARIOS)})", flush=True)
            failed += 1
            continue
        sbx = None
        started = time.monotonic()
        try:
            sbx = Sandbox.create(timeout=600)
            debug(f"{name}: sandbox {sbx.sandbox_id} ready after {time.monotonic() - started:.2f}s")
            fn(sbx)
            print(f"PASS {GEN} {name}", flush=True)
        except Exception as e:  # noqa: BLE001 - every failure is reported, then the next scenario runs
            failed += 1
            reason = str(e).replace("\n", " ")[:300]
            print(f"FAIL {GEN} {name}: {type(e).__name__}: {reason}", flush=True)
            if DEBUG:
                traceback.print_exc()
                if sbx is not None:
                    try:  # the interpreter service's own log, from inside the sandbox
                        print(sbx.commands.run(f"tail -n 40 {SERVICE_LOG}").stdout, file=sys.stderr)
                    except Exception as log_err:  # noqa: BLE001
                        print(f"({SERVICE_LOG} unreadable: {log_err})", file=sys.stderr)
        finally:
            debug(f"{name}: {time.monotonic() - started:.2f}s")
            if sbx is not None:
                try:
                    sbx.kill()
                except Exception:  # noqa: BLE001
                    pass
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
