//! The client commands of the `stasis` binary (`stasis sandbox ...`, `stasis usage`) against a
//! real server, including an interactive `shell` driven through a pseudo-terminal.

mod common;

use rustix::fs::{Mode, OFlags};
use rustix::pty::OpenptFlags;
use rustix::termios::Winsize;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn stasis() -> Command {
    let server = common::server("cli");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_stasis"));
    for var in ["E2B_API_KEY", "E2B_API_URL", "E2B_SANDBOX_URL", "E2B_DOMAIN"] {
        cmd.env_remove(var);
    }
    cmd.env("STASIS_URL", &server.url).env("STASIS_API_KEY", common::KEY).env("STASIS_DATA_DIR", &server.data).stdin(Stdio::null());
    cmd
}

fn run(args: &[&str]) -> Output {
    stasis().args(args).output().expect("run stasis")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Run and insist on success; stdout.
fn ok(args: &[&str]) -> String {
    let o = run(args);
    assert!(o.status.success(), "stasis {args:?} failed: {}{}", stdout(&o), stderr(&o));
    stdout(&o)
}

/// Kills the sandbox when the test ends.
struct Cleanup(String);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = run(&["sandbox", "kill", &self.0]);
    }
}

fn create(extra: &[&str]) -> (String, Cleanup) {
    let mut args = vec!["sandbox", "create"];
    args.extend_from_slice(extra);
    let id = ok(&args).trim().to_owned();
    assert!(!id.is_empty() && !id.contains(char::is_whitespace), "create prints the id: {id:?}");
    (id.clone(), Cleanup(id))
}

#[test]
fn create_list_info_timeout_pause_resume_kill_usage() {
    let tag = format!("cli-{}", std::process::id());
    let (id, _guard) = create(&["--metadata", &format!("suite={tag}"), "--timeout", "200"]);

    let table = ok(&["sandbox", "list"]);
    let header = table.lines().next().unwrap();
    for col in ["ID", "TEMPLATE", "STATE", "STARTED", "ENDS", "CPU", "MEMORY", "RUNNING TIME"] {
        assert!(header.contains(col), "{col} in {header:?}");
    }
    let row = table.lines().find(|l| l.starts_with(&id)).unwrap_or_else(|| panic!("{id} in\n{table}"));
    assert!(row.contains("base") && row.contains("running") && row.contains("MiB"), "{row}");

    let json: serde_json::Value = serde_json::from_str(&ok(&["sandbox", "list", "--json", "--metadata", &format!("suite={tag}")])).unwrap();
    let items = json.as_array().unwrap();
    assert_eq!(items.len(), 1, "{json}");
    assert_eq!(items[0]["sandbox_id"], id.as_str());
    assert_eq!(items[0]["state"], "running");
    assert_eq!(items[0]["metadata"]["suite"], tag.as_str());

    let info = ok(&["sandbox", "info", &id]);
    assert!(info.contains(&format!("id:        {id}")) && info.contains("state:     running") && info.contains(&format!("suite={tag}")), "{info}");

    ok(&["sandbox", "timeout", &id, "900"]);
    let info: serde_json::Value = serde_json::from_str(&ok(&["sandbox", "info", "--json", &id])).unwrap();
    let end = chrono::DateTime::parse_from_rfc3339(info["end_at"].as_str().unwrap()).unwrap();
    let left = (end.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_seconds();
    assert!((850..=900).contains(&left), "timeout applied: {left}");

    let o = run(&["sandbox", "pause", &id]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains(&format!("paused {id} in")), "{}", stderr(&o));
    assert!(stderr(&run(&["sandbox", "pause", &id])).contains("paused already"));
    let paused = ok(&["sandbox", "list", "--state", "paused", "--metadata", &format!("suite={tag}")]);
    assert!(paused.lines().any(|l| l.starts_with(&id) && l.contains("paused")), "{paused}");
    let running = ok(&["sandbox", "list", "--state", "running", "--metadata", &format!("suite={tag}")]);
    assert!(!running.contains(&id), "{running}");

    // exec into a paused sandbox: one error line and a hint, exit 1.
    let o = run(&["sandbox", "exec", &id, "true"]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.lines().count() == 2 && err.starts_with("error: ") && err.contains("\nhint: ") && err.contains("resume"), "{err}");

    let o = run(&["sandbox", "resume", &id, "--timeout", "120"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o).trim(), id);
    assert!(ok(&["sandbox", "info", &id]).contains("state:     running"));

    let usage = ok(&["usage"]);
    assert!(usage.contains(&id) && usage.contains("running time:") && usage.contains("paused time:"), "{usage}");
    let usage: serde_json::Value = serde_json::from_str(&ok(&["usage", "--json"])).unwrap();
    assert!(usage["sandboxes"].as_array().unwrap().iter().any(|s| s["sandboxID"] == id.as_str()));

    let o = run(&["sandbox", "kill", &id]);
    assert!(o.status.success() && stderr(&o).contains(&format!("killed {id}")));
    let o = run(&["sandbox", "info", &id]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.starts_with("error: look up sandbox") && err.contains("hint: `stasis sandbox list`"), "{err}");
}

#[test]
fn exec_streams_output_and_returns_the_exit_code() {
    let (id, _guard) = create(&[]);
    let o = run(&["sandbox", "exec", &id, "--", "sh", "-c", "echo out; echo err >&2; exit 7"]);
    assert_eq!(o.status.code(), Some(7));
    assert_eq!((stdout(&o).as_str(), stderr(&o).as_str()), ("out\n", "err\n"));

    let o = run(&["sandbox", "exec", &id, "echo $((6 * 7)) | tr 4 x"]);
    assert_eq!((o.status.code(), stdout(&o).as_str()), (Some(0), "x2\n"));
    let o = run(&["sandbox", "exec", "--user", "root", "--cwd", "/etc", "-e", "A=b", &id, "--", "echo", "$A", "$(whoami)"]);
    assert_eq!(stdout(&o), "$A $(whoami)\n", "several words are quoted, not interpreted");
    let o = run(&["sandbox", "exec", "--user", "root", "--cwd", "/etc", "-e", "A=b", &id, "echo $A $(whoami) $(pwd)"]);
    assert_eq!(stdout(&o), "b root /etc\n");

    // Output arrives as it is written, not at the end.
    let mut child = stasis()
        .args(["sandbox", "exec", &id, "echo first; sleep 3; echo second"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 6];
    out.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"first\n");
    assert!(started.elapsed() < Duration::from_millis(2500), "streamed, not buffered: {:?}", started.elapsed());
    assert!(child.wait().unwrap().success());

    // ^C stops the remote command, and exec exits as an interrupted program does.
    let child = stasis().args(["sandbox", "exec", &id, "sleep 120; echo not-interrupted"]).stdout(Stdio::piped()).spawn().unwrap();
    std::thread::sleep(Duration::from_secs(2));
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGINT).unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!((o.status.code(), stdout(&o).as_str()), (Some(130), ""));
    let ps = ok(&["sandbox", "exec", &id, "ps -eo args"]);
    assert!(!ps.contains("sleep 120"), "the remote command was killed:\n{ps}");

    // -i: local stdin to the command.
    let mut child = stasis().args(["sandbox", "exec", "-i", &id, "tr a-z A-Z"]).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(b"hello from stdin\n").unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!((o.status.code(), stdout(&o).as_str()), (Some(0), "HELLO FROM STDIN\n"));
}

#[test]
fn errors_are_one_line_with_a_hint() {
    let o = stasis().args(["sandbox", "list"]).env("STASIS_URL", "http://127.0.0.1:9").output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.starts_with("error: list sandboxes") && err.contains("hint: no server answers at http://127.0.0.1:9"), "{err}");

    let o = stasis().args(["sandbox", "list"]).env("STASIS_API_KEY", "wrong").output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("authentication failed") && stderr(&o).contains("hint: the server at"), "{}", stderr(&o));

    let o = run(&["sandbox", "kill", "doesnotexist"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).starts_with("error: kill sandbox doesnotexist: not found"), "{}", stderr(&o));

    let o = run(&["sandbox", "list", "--state", "gone"]);
    assert_eq!(o.status.code(), Some(2), "clap rejects bad arguments");
}

/// A pseudo-terminal: the test holds the master side, the program under test gets the slave
/// as its stdin, stdout, stderr and controlling terminal (through `setsid --ctty`).
struct Terminal {
    master: std::fs::File,
    screen: Arc<Mutex<Vec<u8>>>,
}

impl Terminal {
    fn open(rows: u16, cols: u16) -> (Terminal, OwnedFd) {
        let master = rustix::pty::openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).unwrap();
        rustix::pty::grantpt(&master).unwrap();
        rustix::pty::unlockpt(&master).unwrap();
        let name = rustix::pty::ptsname(&master, Vec::new()).unwrap();
        let slave = rustix::fs::open(name.as_c_str(), OFlags::RDWR | OFlags::NOCTTY, Mode::empty()).unwrap();
        rustix::termios::tcsetwinsize(&master, Winsize { ws_row: rows, ws_col: cols, ws_xpixel: 0, ws_ypixel: 0 }).unwrap();
        let master = std::fs::File::from(master);
        let screen = Arc::new(Mutex::new(Vec::new()));
        let (mut reader, sink) = (master.try_clone().unwrap(), screen.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            // Ends with EIO once the last slave descriptor is closed.
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        (Terminal { master, screen }, slave)
    }

    fn type_in(&mut self, s: &str) {
        self.master.write_all(s.as_bytes()).unwrap();
    }

    fn resize(&self, rows: u16, cols: u16) {
        rustix::termios::tcsetwinsize(&self.master, Winsize { ws_row: rows, ws_col: cols, ws_xpixel: 0, ws_ypixel: 0 }).unwrap();
    }

    /// Wait until `want` is on screen after `from`; the offset just past it.
    fn expect(&self, from: usize, want: &str) -> usize {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let screen = String::from_utf8_lossy(&self.screen.lock().unwrap()[from..]).into_owned();
            if let Some(at) = screen.find(want) {
                return from + at + want.len();
            }
            assert!(Instant::now() < deadline, "{want:?} never appeared; screen:\n{screen}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[test]
fn shell_is_interactive_on_a_pty_and_follows_resizes() {
    let (id, _guard) = create(&[]);
    let (mut term, slave) = Terminal::open(24, 80);
    let mut child = {
        let mut cmd = stasis();
        cmd.args(["sandbox", "shell", &id]);
        let program = cmd.get_program().to_owned();
        let mut wrapped = Command::new("setsid");
        wrapped.arg("--ctty").arg(program).args(cmd.get_args());
        for (k, v) in cmd.get_envs() {
            match v {
                Some(v) => wrapped.env(k, v),
                None => wrapped.env_remove(k),
            };
        }
        wrapped
            .stdin(Stdio::from(slave.try_clone().unwrap()))
            .stdout(Stdio::from(slave.try_clone().unwrap()))
            .stderr(Stdio::from(slave))
            .spawn()
            .unwrap()
    };

    // Raw mode: the remote shell, not the local terminal, echoes and interprets keys.
    term.type_in("stty size; echo marker-$((40 + 2))\n");
    let at = term.expect(0, "24 80");
    let at = term.expect(at, "marker-42");

    // Resizing the local terminal sends SIGWINCH to the client, which resizes the remote PTY.
    term.resize(40, 120);
    std::thread::sleep(Duration::from_millis(500));
    term.type_in("stty size\n");
    let at = term.expect(at, "40 120");

    // Ctrl-C reaches the remote foreground process, not the client.
    term.type_in("sleep 100\n");
    std::thread::sleep(Duration::from_millis(500));
    term.type_in("\x03");
    term.type_in("echo after-$((1 + 1))\n");
    term.expect(at, "after-2");

    term.type_in("exit 3\n");
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "shell did not end");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(status.code(), Some(3), "the shell's exit code");
}
