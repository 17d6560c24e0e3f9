//! `process.Process` against a real envd.

mod common;

use common::*;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

#[tokio::test]
async fn start_streams_start_then_data_then_end() {
    let envd = Envd::start().await;
    let (events, end) = envd.run("echo out; echo err >&2; exit 3").await;
    assert_eq!(end, json!({}), "clean end envelope");
    let pid = events[0]["event"]["start"]["pid"].as_u64().expect("first event is start");
    assert!(pid > 1);
    assert!(events[1..events.len() - 1].iter().all(|e| e["event"].get("data").is_some()));
    assert_eq!(output(&events, "stdout"), "out\n");
    assert_eq!(output(&events, "stderr"), "err\n");
    let e = end_of(&events);
    assert_eq!(e["exitCode"], 3);
    assert_eq!(e["exited"], true);
    assert_eq!(e["status"], "exit status 3");
}

#[tokio::test]
async fn exit_zero_omits_default_exit_code_or_sends_zero() {
    let envd = Envd::start().await;
    let (events, _) = envd.run("true").await;
    let e = end_of(&events);
    assert_eq!(e["exitCode"].as_i64().unwrap_or(0), 0);
    assert_eq!(e["status"], "exit status 0");
}

#[tokio::test]
async fn large_output_arrives_complete_and_in_order() {
    // A small budget: the reading client is often behind, and output waits for it.
    let envd = Envd::start_with(&["--subscriber-buffer-bytes", "65536"]).await;
    let (events, _) = envd.run("seq 1 200000").await;
    let out = output(&events, "stdout");
    let expected: String = (1..=200_000).map(|i| format!("{i}\n")).collect();
    assert_eq!(out.len(), expected.len());
    assert!(out == expected);
}

#[tokio::test]
async fn runs_as_the_selected_user_with_layered_env() {
    let envd = Envd::start().await;
    // /init sets sandbox-wide variables (layer 2); the request's envs win (layer 3).
    let r = envd.req(reqwest::Method::POST, "/init").json(&json!({"envVars": {"A": "init", "B": "init"}})).send().await.unwrap();
    assert_eq!(r.status(), 204);
    let body = json!({"process": {"cmd": "/bin/bash", "args": ["-c", "echo $(id -u):$(id -g):$HOME:$USER:$A:$B:$PWD:$PATH"], "envs": {"B": "req"}}});
    let (events, _) = envd.stream("process.Process/Start", body.clone(), &[]).await;
    let out = output(&events, "stdout");
    let uid = user_uid();
    let home = user_home();
    assert!(out.starts_with(&format!("{uid}:")), "{out}");
    assert!(out.contains(&format!(":{home}:{TEST_USER}:init:req:{home}:")), "{out}");
    assert!(out.contains("/usr/bin"), "PATH from envd: {out}");

    // Authorization: Basic picks root.
    let resp = envd
        .req(reqwest::Method::POST, "/process.Process/Start")
        .header("Content-Type", "application/connect+json")
        .header("Authorization", basic("root"))
        .body(stasis_proto::connect::encode_envelope(0, start_body("id -u; echo $HOME; id -G").to_string().as_bytes()))
        .send()
        .await
        .unwrap();
    let bytes = resp.bytes().await.unwrap();
    let text = String::from_utf8_lossy(&bytes);
    assert!(text.contains("\"stdout\""));
    let mut dec = stasis_proto::connect::EnvelopeDecoder::new(1 << 20);
    dec.push(&bytes);
    let mut evs = Vec::new();
    while let Some(e) = dec.next_envelope().unwrap() {
        evs.push(serde_json::from_slice::<Value>(&e.data).unwrap());
    }
    assert!(output(&evs, "stdout").starts_with("0\n/root\n"));
}

#[tokio::test]
async fn supplementary_groups_are_set() {
    let envd = Envd::start().await;
    let (events, _) = envd.run("id -G").await;
    let expected = std::process::Command::new("id").args(["-G", TEST_USER]).output().unwrap();
    assert_eq!(output(&events, "stdout").trim(), String::from_utf8_lossy(&expected.stdout).trim());
}

#[tokio::test]
async fn cwd_default_explicit_and_invalid() {
    let envd = Envd::start().await;
    let (events, _) = envd.run("pwd").await;
    assert_eq!(output(&events, "stdout").trim(), user_home());
    let body = json!({"process": {"cmd": "pwd", "cwd": "/tmp"}});
    let (events, _) = envd.stream("process.Process/Start", body, &[]).await;
    assert_eq!(output(&events, "stdout").trim(), "/tmp");
    let body = json!({"process": {"cmd": "pwd", "cwd": "/does/not/exist"}});
    let (events, end) = envd.stream("process.Process/Start", body, &[]).await;
    assert!(events.is_empty());
    assert_eq!(end["error"]["code"], "invalid_argument");
}

#[tokio::test]
async fn unknown_command_is_an_error_in_the_end_envelope() {
    let envd = Envd::start().await;
    let (events, end) = envd.stream("process.Process/Start", json!({"process": {"cmd": "/no/such/binary"}}), &[]).await;
    assert!(events.is_empty());
    assert_eq!(end["error"]["code"], "internal");
    // envd is still healthy
    let (events, _) = envd.run("echo ok").await;
    assert_eq!(output(&events, "stdout"), "ok\n");
}

#[tokio::test]
async fn stdin_send_input_and_close_stdin() {
    let envd = Envd::start().await;
    let body = json!({"process": {"cmd": "cat"}, "stdin": true});
    let mut s = envd.open_stream("process.Process/Start", body, &[]).await;
    let pid = s.data(5).await["event"]["start"]["pid"].as_u64().unwrap();
    let (st, r) = envd.unary("process.Process/SendInput", json!({"process": {"pid": pid}, "input": {"stdin": "aGVsbG8K"}})).await;
    assert_eq!((st, r), (200, json!({})));
    let ev = s.data(5).await;
    assert_eq!(b64(&ev["event"]["data"]["stdout"]), b"hello\n");
    let (st, _) = envd.unary("process.Process/CloseStdin", json!({"process": {"pid": pid}})).await;
    assert_eq!(st, 200);
    let (events, end) = s.rest(5).await;
    assert_eq!(end, json!({}));
    assert_eq!(end_of(&events)["exitCode"].as_i64().unwrap_or(0), 0);
}

#[tokio::test]
async fn stdin_disabled_by_default() {
    let envd = Envd::start().await;
    let mut s = envd.open_stream("process.Process/Start", start_body("cat; echo done"), &[]).await;
    let pid = s.data(5).await["event"]["start"]["pid"].as_u64().unwrap();
    // cat reads /dev/null and ends at once
    let (events, _) = s.rest(5).await;
    assert_eq!(output(&events, "stdout"), "done\n");
    let (st, r) = envd.unary("process.Process/SendInput", json!({"process": {"pid": pid}, "input": {"stdin": "eA=="}})).await;
    assert_eq!(st, 404, "{r}");
    assert_eq!(r["code"], "not_found");
}

#[tokio::test]
async fn stream_input_client_streaming() {
    let envd = Envd::start().await;
    let mut s = envd.open_stream("process.Process/Start", json!({"process": {"cmd": "cat"}, "stdin": true, "tag": "si"}), &[]).await;
    let pid = s.data(5).await["event"]["start"]["pid"].as_u64().unwrap();
    let mut body = Vec::new();
    for m in [
        json!({"start": {"process": {"pid": pid}}}),
        json!({"data": {"input": {"stdin": "b25lCg=="}}}),
        json!({"keepalive": {}}),
        json!({"data": {"input": {"stdin": "dHdvCg=="}}}),
    ] {
        body.extend(stasis_proto::connect::encode_envelope(0, m.to_string().as_bytes()));
    }
    // Send it chunked, in small pieces, as the SDKs do.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = body.chunks(7).map(|c| Ok(c.to_vec())).collect();
    let resp = envd
        .req(reqwest::Method::POST, "/process.Process/StreamInput")
        .header("Content-Type", "application/connect+json")
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let bytes = resp.bytes().await.unwrap();
    let mut dec = stasis_proto::connect::EnvelopeDecoder::new(1024);
    dec.push(&bytes);
    let first = dec.next_envelope().unwrap().unwrap();
    assert_eq!(first.data, b"{}");
    let end = dec.next_envelope().unwrap().unwrap();
    assert!(end.is_end_stream());
    assert_eq!(end.data, b"{}");
    let mut got = Vec::new();
    while got.len() < 8 {
        got.extend(b64(&s.data(5).await["event"]["data"]["stdout"]));
    }
    assert_eq!(got, b"one\ntwo\n");
    let (st, _) = envd.unary("process.Process/SendSignal", json!({"process": {"tag": "si"}, "signal": "SIGNAL_SIGKILL"})).await;
    assert_eq!(st, 200);
    let (events, _) = s.rest(5).await;
    assert_eq!(end_of(&events)["status"], "signal: killed");
}

#[tokio::test]
async fn signals_and_unknown_pids() {
    let envd = Envd::start().await;
    let mut s = envd.open_stream("process.Process/Start", json!({"process": {"cmd": "sleep", "args": ["100"]}}), &[]).await;
    let pid = s.data(5).await["event"]["start"]["pid"].as_u64().unwrap();
    let (st, _) = envd.unary("process.Process/SendSignal", json!({"process": {"pid": pid}, "signal": "SIGNAL_SIGTERM"})).await;
    assert_eq!(st, 200);
    let (events, _) = s.rest(5).await;
    let e = end_of(&events);
    assert_eq!(e["exitCode"], -1);
    assert_eq!(e["exited"], false);
    assert_eq!(e["status"], "signal: terminated");

    for method in ["SendSignal", "SendInput", "CloseStdin", "Update"] {
        let body = json!({"process": {"pid": 999_999}, "signal": "SIGNAL_SIGKILL", "input": {"stdin": ""}, "pty": {"size": {"cols": 1, "rows": 1}}});
        let (st, r) = envd.unary(&format!("process.Process/{method}"), body).await;
        assert_eq!((st, r["code"].as_str()), (404, Some("not_found")), "{method}: {r}");
    }
    let (st, r) = envd.unary("process.Process/SendSignal", json!({"process": {"pid": pid}})).await;
    assert_eq!(st, 400, "signal unspecified: {r}");
}

#[tokio::test]
async fn list_connect_and_replay() {
    let envd = Envd::start().await;
    let body = json!({"process": {"cmd": "/bin/bash", "args": ["-c", "for i in $(seq 1 20); do echo tick$i; sleep 0.25; done"], "envs": {"X": "1"}}, "tag": "ticker"});
    let mut s = envd.open_stream("process.Process/Start", body, &[]).await;
    let pid = s.data(5).await["event"]["start"]["pid"].as_u64().unwrap();

    let (st, list) = envd.unary("process.Process/List", json!({})).await;
    assert_eq!(st, 200);
    let procs = list["processes"].as_array().unwrap();
    let me = procs.iter().find(|p| p["pid"] == pid).expect("listed");
    assert_eq!(me["tag"], "ticker");
    assert_eq!(me["config"]["cmd"], "/bin/bash");
    assert_eq!(me["config"]["envs"]["X"], "1");

    // The Start client goes away: the process keeps running.
    drop(s);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (_, list) = envd.unary("process.Process/List", json!({})).await;
    assert!(list["processes"].as_array().unwrap().iter().any(|p| p["pid"] == pid));

    // Re-attach by tag: start (same pid), then live output, then end.
    let (events, end) = envd.stream("process.Process/Connect", json!({"process": {"tag": "ticker"}}), &[]).await;
    assert_eq!(end, json!({}));
    assert_eq!(events[0]["event"]["start"]["pid"], pid);
    let out = output(&events, "stdout");
    assert!(out.contains("tick20\n"), "{out}");
    assert!(!out.contains("tick1\n"), "only output after attaching: {out}");
    assert_eq!(end_of(&events)["exitCode"].as_i64().unwrap_or(0), 0);

    // Exited: no longer listed, but Connect replays start + end.
    let (_, list) = envd.unary("process.Process/List", json!({})).await;
    assert!(!list["processes"].as_array().unwrap().iter().any(|p| p["pid"] == pid));
    let (events, end) = envd.stream("process.Process/Connect", json!({"process": {"pid": pid}}), &[]).await;
    assert_eq!(end, json!({}));
    assert_eq!(events.len(), 2);
    assert_eq!(events[0]["event"]["start"]["pid"], pid);
    assert_eq!(end_of(&events)["status"], "exit status 0");

    let (events, end) = envd.stream("process.Process/Connect", json!({"process": {"pid": 999_999}}), &[]).await;
    assert!(events.is_empty());
    assert_eq!(end["error"]["code"], "not_found");
}

#[tokio::test]
async fn pty_with_resize_and_input() {
    let envd = Envd::start().await;
    let body = json!({
        "process": {"cmd": "/bin/bash", "args": ["-c", "stty size; read x; stty size; echo got:$x"], "envs": {"TERM": "xterm"}},
        "pty": {"size": {"cols": 100, "rows": 30}}
    });
    let mut s = envd.open_stream("process.Process/Start", body, &[]).await;
    let pid = s.data(5).await["event"]["start"]["pid"].as_u64().unwrap();
    let mut out = String::new();
    while !out.contains("30 100") {
        out.push_str(&String::from_utf8_lossy(&b64(&s.data(5).await["event"]["data"]["pty"])));
    }
    let (st, r) = envd.unary("process.Process/Update", json!({"process": {"pid": pid}, "pty": {"size": {"cols": 120, "rows": 40}}})).await;
    assert_eq!(st, 200, "{r}");
    let (st, _) = envd.unary("process.Process/SendInput", json!({"process": {"pid": pid}, "input": {"pty": "aGVsbG8K"}})).await;
    assert_eq!(st, 200);
    let (events, _) = s.rest(5).await;
    let rest = output(&events, "pty");
    assert!(rest.contains("40 120"), "{rest}");
    assert!(rest.contains("got:hello"), "{rest}");
    // A PTY process has a controlling terminal and is a session leader.
    let (events, _) = envd
        .stream("process.Process/Start", json!({"process": {"cmd": "/bin/sh", "args": ["-c", "tty"]}, "pty": {}}), &[])
        .await;
    assert!(output(&events, "pty").starts_with("/dev/pts/"));
}

#[tokio::test]
async fn timeout_kills_the_process_and_ends_with_deadline_exceeded() {
    let envd = Envd::start().await;
    let started = Instant::now();
    let (events, end) = envd
        .stream("process.Process/Start", json!({"process": {"cmd": "sleep", "args": ["30"]}}), &[("Connect-Timeout-Ms", "500")])
        .await;
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(events[0]["event"].get("start").is_some());
    assert_eq!(end["error"]["code"], "deadline_exceeded");
    let pid = events[0]["event"]["start"]["pid"].as_u64().unwrap();
    let (_, list) = envd.unary("process.Process/List", json!({})).await;
    assert!(!list["processes"].as_array().unwrap().iter().any(|p| p["pid"] == pid));

    // A Connect deadline only ends that stream; the process lives on.
    let mut s = envd.open_stream("process.Process/Start", json!({"process": {"cmd": "sleep", "args": ["30"]}}), &[]).await;
    let pid = s.data(5).await["event"]["start"]["pid"].as_u64().unwrap();
    let (_, end) = envd
        .stream("process.Process/Connect", json!({"process": {"pid": pid}}), &[("Connect-Timeout-Ms", "300")])
        .await;
    assert_eq!(end["error"]["code"], "deadline_exceeded");
    let (_, list) = envd.unary("process.Process/List", json!({})).await;
    assert!(list["processes"].as_array().unwrap().iter().any(|p| p["pid"] == pid));
    envd.unary("process.Process/SendSignal", json!({"process": {"pid": pid}, "signal": "SIGNAL_SIGKILL"})).await;
}

#[tokio::test]
async fn keepalives_when_idle() {
    let envd = Envd::start().await;
    let (events, _) = envd
        .stream("process.Process/Start", json!({"process": {"cmd": "sleep", "args": ["2.5"]}}), &[("Keepalive-Ping-Interval", "1")])
        .await;
    let n = events.iter().filter(|e| e["event"].get("keepalive").is_some()).count();
    assert!(n >= 1, "{events:?}");
    assert!(events.last().unwrap()["event"].get("end").is_some());
}

fn zombies_of(pid: u32) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else { continue };
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r.trim().to_string()) else { continue };
        let f: Vec<&str> = rest.split_whitespace().collect();
        if f.len() > 2 && f[1] == pid.to_string() && f[0] == "Z" {
            out.push(stat);
        }
    }
    out
}

#[tokio::test]
async fn orphans_are_reaped_and_background_jobs_survive() {
    let envd = Envd::start().await;
    // The grandchild outlives bash and is re-parented to envd (subreaper on a host).
    let (events, _) = envd.run("(sleep 0.5; exit 7) & (sleep 0.3) & echo started").await;
    assert_eq!(output(&events, "stdout"), "started\n");
    assert_eq!(end_of(&events)["exitCode"].as_i64().unwrap_or(0), 0);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(zombies_of(envd.pid()).is_empty(), "zombies: {:?}", zombies_of(envd.pid()));
    // Many quick processes: every status reaches its stream.
    let mut handles = Vec::new();
    for i in 0..20 {
        let e = envd.client.clone();
        handles.push(tokio::spawn(async move {
            let (events, _) = e.run(&format!("exit {i}")).await;
            assert_eq!(end_of(&events)["exitCode"].as_i64().unwrap_or(0), i);
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
}

#[tokio::test]
async fn a_client_that_does_not_read_never_blocks_the_process() {
    let envd = Envd::start_with(&["--subscriber-buffer-bytes", "1048576"]).await;
    let marker = scratch("noread").join("done");
    let cmd = format!("head -c 30000000 /dev/zero; echo finished > {}", marker.display());
    let body = json!({"process": {"cmd": "/bin/bash", "args": ["-c", cmd]}});
    let mut s = envd.open_stream("process.Process/Start", body, &[("Authorization", &basic("root"))]).await;
    // Not reading: the process must still get all 30 MB out and finish.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !marker.exists() {
        assert!(Instant::now() < deadline, "process blocked on a client that does not read");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The lagging stream was cut with resource_exhausted after some of the output.
    let (events, end) = s.rest(20).await;
    assert!(events[0]["event"].get("start").is_some());
    assert_eq!(end["error"]["code"], "resource_exhausted", "{end}");
}

#[tokio::test]
async fn background_jobs_keep_their_stdout_after_the_command_ends() {
    let envd = Envd::start().await;
    let dir = scratch("bgjob");
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let marker = dir.join("alive");
    // The job writes to the inherited stdout after bash has exited; it must not die of SIGPIPE.
    let cmd = format!("(for i in $(seq 1 15); do echo bg$i; sleep 0.1; done; echo ok > {}) & echo started", marker.display());
    let (events, _) = envd.run(&cmd).await;
    assert!(output(&events, "stdout").starts_with("started\n"));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !marker.exists() {
        assert!(Instant::now() < deadline, "the background job died once its command ended");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
