//! The Rust SDK (`stasis-sdk`) against a real `stasis server`: every call, on real sandboxes.

mod common;

use stasis_sdk::{
    CommandEvent, CommandOptions, ConnectOptions, ConnectionConfig, Error, EventType, FileType, ListOptions, NetworkRules, PtyOptions, PtySize, Sandbox,
    SandboxOptions, SandboxState,
};
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn config() -> ConnectionConfig {
    common::server("sdk").config()
}

/// Kills the sandbox when the test ends, passing or failing.
struct Cleanup(String);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let id = self.0.clone();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            let _ = rt.block_on(Sandbox::kill_by_id(&id, &config()));
        })
        .join();
    }
}

async fn create(opts: SandboxOptions) -> (Sandbox, Cleanup) {
    let sbx = Sandbox::create(opts.config(config())).await.expect("create a sandbox");
    let guard = Cleanup(sbx.sandbox_id().to_owned());
    (sbx, guard)
}

fn connect_opts() -> ConnectOptions {
    ConnectOptions::new().config(config())
}

#[tokio::test(flavor = "multi_thread")]
async fn lifecycle_create_info_timeout_pause_resume_kill() {
    let (sbx, _guard) = create(SandboxOptions::new().metadata("purpose", "lifecycle").timeout(Duration::from_secs(120))).await;
    let id = sbx.sandbox_id().to_owned();
    assert_eq!(sbx.template_id(), "base");
    assert!(!sbx.envd_version().is_empty());

    let info = sbx.info().await.unwrap();
    assert_eq!((info.sandbox_id.as_str(), info.state), (id.as_str(), SandboxState::Running));
    assert_eq!(info.metadata.get("purpose").map(String::as_str), Some("lifecycle"));
    assert!(info.cpu_count > 0 && info.memory_mb > 0);
    let left = (info.end_at - chrono::Utc::now()).num_seconds();
    assert!((100..=120).contains(&left), "created with 120 s, {left} s left");

    sbx.set_timeout(Duration::from_secs(30)).await.unwrap();
    let left = (sbx.info().await.unwrap().end_at - chrono::Utc::now()).num_seconds();
    assert!((20..=30).contains(&left), "set_timeout shortens: {left} s left");
    Sandbox::set_timeout_by_id(&id, Duration::from_secs(600), &config()).await.unwrap();

    let samples = sbx.metrics(None, None).await.unwrap();
    assert!(!samples.is_empty() && samples.iter().all(|m| m.mem_total > 0 && m.cpu_count == info.cpu_count), "{samples:?}");

    assert!(sbx.is_running().await.unwrap());
    assert!(sbx.pause().await.unwrap(), "first pause");
    assert!(!sbx.pause().await.unwrap(), "second pause is a no (409)");
    assert!(!Sandbox::pause_by_id(&id, &config()).await.unwrap());
    assert_eq!(Sandbox::info_by_id(&id, &config()).await.unwrap().state, SandboxState::Paused);
    assert!(!sbx.is_running().await.unwrap(), "a paused sandbox serves nothing");
    assert!(matches!(sbx.commands().run("true").await, Err(Error::SandboxNotRunning { .. })));

    // Attaching leaves it paused; resuming brings it back with the default 300 s.
    let attached = Sandbox::attach(&id, &config()).await.unwrap();
    assert_eq!(attached.info().await.unwrap().state, SandboxState::Paused);
    let resumed = Sandbox::resume(&id, connect_opts()).await.unwrap();
    assert_eq!(resumed.sandbox_id(), id);
    let info = resumed.info().await.unwrap();
    assert_eq!(info.state, SandboxState::Running);
    let left = (info.end_at - chrono::Utc::now()).num_seconds();
    assert!((280..=300).contains(&left), "resume timeout defaults to 300 s: {left} s left");
    assert_eq!(resumed.commands().run("echo back").await.unwrap().stdout, "back\n");
    // Connecting to a running sandbox works too, through the same call.
    Sandbox::connect(&id, connect_opts().timeout(Duration::from_secs(400))).await.unwrap();

    assert!(resumed.kill().await.unwrap());
    assert!(!Sandbox::kill_by_id(&id, &config()).await.unwrap(), "second kill is a no (404)");
    assert!(matches!(Sandbox::connect(&id, connect_opts()).await, Err(Error::NotFound { .. })));
    assert!(matches!(Sandbox::info_by_id(&id, &config()).await, Err(Error::NotFound { .. })));
    assert!(matches!(sbx.pause().await, Err(Error::NotFound { .. })));
}

#[tokio::test(flavor = "multi_thread")]
async fn list_filters_by_state_and_metadata_and_pages() {
    let tag = format!("list-{}", std::process::id());
    let mut sandboxes = Vec::new();
    for i in 0..3 {
        sandboxes.push(create(SandboxOptions::new().metadata("suite", &tag).metadata("n", i.to_string())).await);
    }
    assert!(sandboxes[0].0.pause().await.unwrap());
    let ids: Vec<String> = sandboxes.iter().map(|(s, _)| s.sandbox_id().to_owned()).collect();

    let all = Sandbox::list(ListOptions::new().config(config()).metadata("suite", &tag)).all().await.unwrap();
    let mut found: Vec<String> = all.iter().map(|s| s.sandbox_id.clone()).collect();
    found.sort();
    let mut want = ids.clone();
    want.sort();
    assert_eq!(found, want, "metadata filter");

    let paused = Sandbox::list(ListOptions::new().config(config()).metadata("suite", &tag).state(SandboxState::Paused)).all().await.unwrap();
    assert_eq!(paused.iter().map(|s| s.sandbox_id.as_str()).collect::<Vec<_>>(), vec![ids[0].as_str()]);
    assert_eq!(paused[0].state, SandboxState::Paused);

    let running = Sandbox::list(ListOptions::new().config(config()).metadata("suite", &tag).state(SandboxState::Running)).all().await.unwrap();
    assert_eq!(running.len(), 2);
    assert!(running.iter().all(|s| s.state == SandboxState::Running));

    let both = Sandbox::list(ListOptions::new().config(config()).metadata("suite", &tag).metadata("n", "2")).all().await.unwrap();
    assert_eq!(both.iter().map(|s| s.sandbox_id.as_str()).collect::<Vec<_>>(), vec![ids[2].as_str()], "filters combine with AND");

    // Pages of one.
    let mut pages = Sandbox::list(ListOptions::new().config(config()).metadata("suite", &tag).limit(1));
    let mut seen = Vec::new();
    let mut calls = 0;
    while pages.has_next() {
        let items = pages.next_items().await.unwrap();
        assert!(items.len() <= 1);
        seen.extend(items.into_iter().map(|s| s.sandbox_id));
        calls += 1;
        assert!(calls <= 4, "paging does not end");
    }
    seen.sort();
    assert_eq!(seen, want);
    assert!(matches!(pages.next_items().await, Err(Error::InvalidArgument { .. })));
}

#[tokio::test(flavor = "multi_thread")]
async fn commands_run_stream_stdin_kill_list_connect() {
    let (sbx, _guard) = create(SandboxOptions::new().env("FROM_CREATE", "c")).await;
    let cmds = sbx.commands();

    let out = cmds.run("echo hi").await.unwrap();
    assert_eq!((out.exit_code, out.stdout.as_str(), out.stderr.as_str()), (0, "hi\n", ""));

    match cmds.run("echo partial; echo oops >&2; exit 3").await {
        Err(Error::CommandExit { exit_code, stdout, stderr, .. }) => {
            assert_eq!((exit_code, stdout.as_str(), stderr.as_str()), (3, "partial\n", "oops\n"));
        }
        other => panic!("expected CommandExit, got {other:?}"),
    }

    let opts = CommandOptions::new().env("FROM_RUN", "r").cwd("/tmp").user("root");
    let out = cmds.run_with("echo $FROM_CREATE $FROM_RUN $(pwd) $(whoami)", opts).await.unwrap();
    assert_eq!(out.stdout, "c r /tmp root\n");

    // Output callbacks see the stream as it comes.
    let seen = Arc::new(Mutex::new(String::new()));
    let sink = seen.clone();
    let opts = CommandOptions::new().on_stdout(move |s| sink.lock().unwrap().push_str(s)).on_stderr(|_| {});
    cmds.run_with("for i in 1 2 3; do echo $i; sleep 0.1; done", opts).await.unwrap();
    assert_eq!(*seen.lock().unwrap(), "1\n2\n3\n");

    // Events, in order, on a background handle.
    let mut h = cmds.run_background("echo out; sleep 0.2; echo err >&2; exit 4", CommandOptions::new()).await.unwrap();
    let mut events = Vec::new();
    while let Some(e) = h.next_event().await {
        events.push(e.unwrap());
    }
    assert_eq!(
        events,
        vec![CommandEvent::Stdout(b"out\n".to_vec()), CommandEvent::Stderr(b"err\n".to_vec()), CommandEvent::Exit { exit_code: 4, error: None }]
    );

    // stdin.
    let h = cmds.run_background("cat", CommandOptions::new().stdin(true)).await.unwrap();
    h.send_stdin("hello ").await.unwrap();
    cmds.send_stdin(h.pid(), b"stdin").await.unwrap();
    h.close_stdin().await.unwrap();
    assert_eq!(h.wait().await.unwrap().stdout, "hello stdin");

    // A background process: listed, reachable by pid from a new handle, killed.
    let sleeper = cmds.run_background("sleep 600", CommandOptions::new().no_timeout()).await.unwrap();
    let pid = sleeper.pid();
    let listed = cmds.list().await.unwrap();
    let me = listed.iter().find(|p| p.pid == pid).expect("background process listed");
    assert_eq!(me.config.args.last().map(String::as_str), Some("sleep 600"));
    sleeper.disconnect();
    let again = cmds.connect(pid, CommandOptions::new().no_timeout()).await.unwrap();
    assert_eq!(again.pid(), pid);
    assert!(again.kill().await.unwrap());
    match again.wait().await {
        Err(Error::CommandExit { exit_code, .. }) => assert_ne!(exit_code, 0),
        other => panic!("a killed process does not succeed: {other:?}"),
    }
    assert!(!cmds.kill(pid).await.unwrap(), "killing a gone process answers false");
    assert!(!cmds.list().await.unwrap().iter().any(|p| p.pid == pid));
    assert!(matches!(cmds.connect(999_999, CommandOptions::new()).await, Err(Error::NotFound { .. })));

    // The command timeout is the process's lifetime.
    let started = std::time::Instant::now();
    let r = cmds.run_with("sleep 30", CommandOptions::new().timeout(Duration::from_secs(1))).await;
    assert!(r.is_err() && started.elapsed() < Duration::from_secs(20), "timeout kills: {r:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn processes_and_files_survive_pause_and_resume() {
    let (sbx, _guard) = create(SandboxOptions::new()).await;
    sbx.files().write("/home/user/state.txt", "hello").await.unwrap();
    let counter = sbx
        .commands()
        // Written aside and renamed, so a read never catches the file truncated and empty.
        .run_background("i=0; while true; do i=$((i+1)); echo $i > /tmp/count.new; mv /tmp/count.new /tmp/count; sleep 0.1; done", CommandOptions::new().no_timeout())
        .await
        .unwrap();
    let pid = counter.pid();
    counter.disconnect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(sbx.pause().await.unwrap());
    let before: u64 = sbx.files().read_to_string("/tmp/count").await.map_or(0, |s| s.trim().parse().unwrap_or(0));
    assert_eq!(before, 0, "files cannot be read while paused");

    let sbx = Sandbox::connect(sbx.sandbox_id(), connect_opts()).await.unwrap();
    assert_eq!(sbx.files().read_to_string("/home/user/state.txt").await.unwrap(), "hello");
    assert!(sbx.commands().list().await.unwrap().iter().any(|p| p.pid == pid), "the loop survived");
    let a: u64 = sbx.files().read_to_string("/tmp/count").await.unwrap().trim().parse().unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let b: u64 = sbx.files().read_to_string("/tmp/count").await.unwrap().trim().parse().unwrap();
    assert!(b > a && a > 1, "the counter goes on from where it was: {a} then {b}");
    assert!(sbx.commands().kill(pid).await.unwrap());
}

#[tokio::test(flavor = "multi_thread")]
async fn files_read_write_list_stat_remove_watch() {
    let (sbx, _guard) = create(SandboxOptions::new()).await;
    let files = sbx.files();

    let info = files.write("/home/user/dir/a.txt", "alpha").await.unwrap();
    assert_eq!(info.path, "/home/user/dir/a.txt");
    assert_eq!(files.read("/home/user/dir/a.txt").await.unwrap(), b"alpha");
    files.write("dir/b.bin", vec![0u8, 159, 146, 150]).await.unwrap();
    assert_eq!(files.read("/home/user/dir/b.bin").await.unwrap(), vec![0u8, 159, 146, 150], "relative to home, binary intact");
    assert!(matches!(files.read_to_string("/home/user/dir/b.bin").await, Err(Error::InvalidArgument { .. })));

    let mut names: Vec<String> = files.list("/home/user/dir").await.unwrap().into_iter().map(|e| e.name).collect();
    names.sort();
    assert_eq!(names, ["a.txt", "b.bin"]);
    assert!(files.make_dir("/home/user/dir/sub/deeper").await.unwrap());
    assert!(!files.make_dir("/home/user/dir/sub/deeper").await.unwrap(), "exists already");
    let deep = files.list_depth("/home/user/dir", 2).await.unwrap();
    assert!(deep.iter().any(|e| e.path == "/home/user/dir/sub/deeper"));
    assert!(matches!(files.list_depth("/home/user", 0).await, Err(Error::InvalidArgument { .. })));

    let st = files.stat("/home/user/dir/a.txt").await.unwrap();
    assert_eq!((st.file_type, st.size, st.name.as_str()), (FileType::File, 5, "a.txt"));
    assert_eq!(files.stat("/home/user/dir").await.unwrap().file_type, FileType::Directory);
    assert!(files.exists("/home/user/dir/a.txt").await.unwrap());
    assert!(!files.exists("/home/user/nothing").await.unwrap());
    assert!(matches!(files.read("/home/user/nothing").await, Err(Error::NotFound { .. })));
    assert!(matches!(files.stat("/home/user/nothing").await, Err(Error::NotFound { .. })));

    let moved = files.rename("/home/user/dir/a.txt", "/home/user/dir/c.txt").await.unwrap();
    assert_eq!(moved.path, "/home/user/dir/c.txt");
    assert!(!files.exists("/home/user/dir/a.txt").await.unwrap());
    files.remove("/home/user/dir/c.txt").await.unwrap();
    assert!(!files.exists("/home/user/dir/c.txt").await.unwrap());

    // Root owns /etc; the default user cannot write there, root can.
    assert!(matches!(files.write("/etc/stasis-test", "x").await, Err(Error::PermissionDenied { .. })));
    files.clone().as_user("root").write("/etc/stasis-test", "x").await.unwrap();
    assert_eq!(files.stat("/etc/stasis-test").await.unwrap().owner, "root");

    // Watching: events for changes made after the watch started.
    let mut watch = files.watch_dir("/home/user/dir", false).await.unwrap();
    files.write("/home/user/dir/new.txt", "n").await.unwrap();
    let ev = tokio::time::timeout(Duration::from_secs(10), watch.next_event()).await.expect("a watch event").unwrap().unwrap();
    assert_eq!(ev.name, "new.txt");
    assert!(matches!(ev.event_type, EventType::Create | EventType::Write), "{ev:?}");
    files.remove("/home/user/dir/new.txt").await.unwrap();
    let mut saw_remove = false;
    while let Ok(Some(ev)) = tokio::time::timeout(Duration::from_secs(10), watch.next_event()).await {
        if ev.unwrap().event_type == EventType::Remove {
            saw_remove = true;
            break;
        }
    }
    assert!(saw_remove);
    watch.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn pty_input_output_and_resize() {
    let (sbx, _guard) = create(SandboxOptions::new()).await;
    let pty = sbx.pty();
    let mut shell = pty.create(PtyOptions { size: PtySize { cols: 80, rows: 24 }, ..Default::default() }).await.unwrap();
    let pid = shell.pid();
    let mut screen = String::new();
    async fn until(shell: &mut stasis_sdk::CommandHandle, screen: &mut String, want: &str) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while !screen.contains(want) {
            match tokio::time::timeout_at(deadline, shell.next_event()).await {
                Ok(Some(Ok(CommandEvent::Pty(b)))) => screen.push_str(&String::from_utf8_lossy(&b)),
                Ok(Some(Ok(other))) => panic!("unexpected {other:?} waiting for {want:?} in {screen:?}"),
                other => panic!("no {want:?} in {screen:?}: {other:?}"),
            }
        }
    }
    pty.send_input(pid, "stty size; tty\n").await.unwrap();
    until(&mut shell, &mut screen, "24 80").await;
    until(&mut shell, &mut screen, "/dev/pts/").await;
    pty.resize(pid, PtySize { cols: 132, rows: 43 }).await.unwrap();
    pty.send_input(pid, "stty size\n").await.unwrap();
    until(&mut shell, &mut screen, "43 132").await;
    pty.send_input(pid, "exit 5\n").await.unwrap();
    loop {
        match shell.next_event().await {
            Some(Ok(CommandEvent::Exit { exit_code, .. })) => {
                assert_eq!(exit_code, 5);
                break;
            }
            Some(Ok(_)) => {}
            other => panic!("shell did not exit: {other:?}"),
        }
    }

    let shell = pty.create(PtyOptions::default()).await.unwrap();
    assert!(pty.kill(shell.pid()).await.unwrap());
}

#[tokio::test(flavor = "multi_thread")]
async fn errors_for_bad_keys_missing_keys_and_no_server() {
    let server = common::server("sdk");
    let wrong = ConnectionConfig::new(&server.url, "not-the-key");
    assert!(matches!(Sandbox::create(SandboxOptions::new().config(wrong.clone())).await, Err(Error::Auth { .. })));
    assert!(matches!(Sandbox::list(ListOptions::new().config(wrong)).next_items().await, Err(Error::Auth { .. })));

    let nobody = ConnectionConfig::new("http://127.0.0.1:9", "k");
    match Sandbox::info_by_id("whatever", &nobody).await {
        Err(Error::Transport(e)) => assert!(e.is_connect()),
        other => panic!("expected a transport error, got {other:?}"),
    }
    assert!(matches!(Sandbox::connect("doesnotexist", connect_opts()).await, Err(Error::NotFound { .. })));
    assert!(!Sandbox::kill_by_id("doesnotexist", &config()).await.unwrap());
}

#[tokio::test(flavor = "multi_thread")]
async fn usage_counts_running_and_paused_time() {
    let (sbx, _guard) = create(SandboxOptions::new()).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(sbx.pause().await.unwrap());
    let report = stasis_sdk::usage(&config()).await.unwrap();
    let mine = report.sandboxes.iter().find(|s| s.sandbox_id == sbx.sandbox_id()).expect("sandbox in the usage report");
    assert!(mine.running_seconds >= 1.0, "{mine:?}");
    assert!(report.running_seconds >= mine.running_seconds);
}

/// Needs template `code-interpreter-v1` (the Jupyter server on port 49999). When it is not
/// built, this test says so on stderr and checks nothing else.
#[tokio::test(flavor = "multi_thread")]
async fn run_code_keeps_variables_across_pause() {
    // The server builds missing templates when it starts: ask only once it is up.
    common::server("sdk");
    if !common::template_built("code-interpreter-v1") {
        eprintln!("SKIPPED run_code_keeps_variables_across_pause: template code-interpreter-v1 is not built (stasis template list)");
        return;
    }
    let (sbx, _guard) = create(SandboxOptions::new().template("code-interpreter-v1")).await;
    let exec = sbx.run_code("x = 41 + 1\nprint('hi')").await.unwrap();
    assert_eq!(exec.logs.stdout.concat(), "hi\n");
    assert!(exec.error.is_none());
    assert!(sbx.pause().await.unwrap());
    let sbx = Sandbox::connect(sbx.sandbox_id(), connect_opts()).await.unwrap();
    assert_eq!(sbx.run_code("x").await.unwrap().text(), Some("42"));
    let failed = sbx.run_code("1/0").await.unwrap();
    assert_eq!(failed.error.map(|e| e.name).as_deref(), Some("ZeroDivisionError"));
}

#[tokio::test(flavor = "multi_thread")]
async fn network_rules_on_create_and_update() {
    const EGRESS: &str = "curl -sk -o /dev/null -m 8 -w '%{http_code}' https://pypi.org/simple/six/ || true";
    let (sbx, _guard) = create(SandboxOptions::new().allow_internet_access(false)).await;
    assert_eq!(sbx.commands().run(EGRESS).await.unwrap().stdout, "000", "internet off");
    sbx.update_network(None, NetworkRules::default()).await.unwrap();
    assert_eq!(sbx.commands().run(EGRESS).await.unwrap().stdout, "200", "internet back on");
    let deny = NetworkRules { deny_out: vec!["0.0.0.0/0".into()], allow_out: vec!["pypi.org".into()] };
    sbx.update_network(None, deny).await.unwrap();
    assert_eq!(sbx.commands().run(EGRESS).await.unwrap().stdout, "200", "allowOut wins over denyOut");
    let bad = NetworkRules { deny_out: vec!["pypi.org".into()], ..Default::default() };
    assert!(matches!(sbx.update_network(None, bad).await, Err(Error::InvalidArgument { .. })), "a domain in denyOut is refused");
}
