"""Wire-compatibility smoke test: the official E2B Python SDK (pinned in requirements.txt) drives
a stasis-envd on localhost:49983 in the SDK's debug mode (no control plane)."""
import os
import time

from e2b import Sandbox, CommandExitException, NotFoundException

home = os.path.join(os.environ["SMOKE_HOME"], f"py-{os.getpid()}-{time.time_ns()}")
sbx = Sandbox.create(debug=True)

r = sbx.commands.run("echo hi; echo err >&2")
assert (r.stdout, r.stderr, r.exit_code) == ("hi\n", "err\n", 0), r
try:
    sbx.commands.run("exit 3")
    raise AssertionError("expected CommandExitException")
except CommandExitException as e:
    assert e.exit_code == 3
assert sbx.commands.run("whoami", user="root").stdout == "root\n"
assert sbx.commands.run("echo $FOO", envs={"FOO": "bar"}, cwd="/tmp").stdout == "bar\n"

bg = sbx.commands.run("cat", background=True, stdin=True, timeout=0)
assert any(p.pid == bg.pid for p in sbx.commands.list())
sbx.commands.send_stdin(bg.pid, "piped\n")
sbx.commands.close_stdin(bg.pid)
assert bg.wait().stdout == "piped\n"
assert sbx.commands.kill(999999) is False

# stream_input is the client-streaming RPC (StreamInput)
cat = sbx.commands.run("cat", background=True, stdin=True, timeout=0)
sbx.commands.stream_input(cat.pid, iter(["one\n", b"two\n"]))
sbx.commands.close_stdin(cat.pid)
assert cat.wait().stdout == "one\ntwo\n"
try:
    sbx.commands.stream_input(999999, iter(["x"]))
    raise AssertionError("expected NotFoundException")
except NotFoundException:
    pass

sbx.files.write(f"{home}/pysmoke/a.txt", "hello")
assert sbx.files.read(f"{home}/pysmoke/a.txt") == "hello"
sbx.files.write(f"{home}/pysmoke/gz.txt", "zipped" * 1000, gzip=True)
assert sbx.files.read(f"{home}/pysmoke/gz.txt", gzip=True) == "zipped" * 1000
sbx.files.write_files([{"path": f"{home}/pysmoke/b.txt", "data": "b"}, {"path": f"{home}/pysmoke/c.txt", "data": "c"}])
assert sorted(e.name for e in sbx.files.list(f"{home}/pysmoke")) == ["a.txt", "b.txt", "c.txt", "gz.txt"]
assert sbx.files.exists(f"{home}/pysmoke/nope") is False
assert sbx.files.make_dir(f"{home}/pysmoke/d") is True
assert sbx.files.make_dir(f"{home}/pysmoke/d") is False
info = sbx.files.get_info(f"{home}/pysmoke/a.txt")
assert info.size == 5 and info.type.value == "file", info
sbx.files.remove(f"{home}/pysmoke/b.txt")
try:
    sbx.files.read(f"{home}/pysmoke/b.txt")
    raise AssertionError("expected NotFoundException")
except NotFoundException:
    pass

w = sbx.files.watch_dir(f"{home}/pysmoke")
sbx.files.write(f"{home}/pysmoke/watched.txt", "w")
seen = []
for _ in range(50):
    seen += w.get_new_events()
    if any(e.name == "watched.txt" for e in seen):
        break
    time.sleep(0.05)
w.stop()
assert any(e.name == "watched.txt" for e in seen), seen

print("python sdk smoke: ok")
