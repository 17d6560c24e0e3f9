//! `/files` and `filesystem.Filesystem` against a real envd, as root and as an unprivileged user.

mod common;

use common::*;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::Duration;

/// A directory the test user owns.
fn user_dir(name: &str) -> std::path::PathBuf {
    let d = scratch(name);
    std::fs::set_permissions(d.parent().unwrap(), std::fs::Permissions::from_mode(0o1777)).ok();
    let uid = user_uid();
    std::os::unix::fs::chown(&d, Some(uid), Some(uid_gid())).unwrap();
    d
}

fn uid_gid() -> u32 {
    let out = std::process::Command::new("id").arg("-g").arg(TEST_USER).output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

/// Deterministic pseudo-random bytes.
fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

#[tokio::test]
async fn octet_stream_upload_and_download_over_100mb() {
    let envd = Envd::start().await;
    let dir = user_dir("big");
    let path = dir.join("nested/dirs/big.bin");
    const LEN: usize = 110 << 20;
    // Stream the body in 1 MiB chunks (chunked transfer encoding, no Content-Length).
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = (0..110).map(|i| Ok(pattern(1 << 20, i))).collect();
    let mut expect = Sha256::new();
    for c in &chunks {
        expect.update(c.as_ref().unwrap());
    }
    let expect = expect.finalize();
    let resp = envd
        .req(reqwest::Method::POST, "/files")
        .query(&[("path", path.to_str().unwrap())])
        .header("Content-Type", "application/octet-stream")
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let info: Value = resp.json().await.unwrap();
    assert_eq!(info, json!([{"path": path.to_str().unwrap(), "name": "big.bin", "type": "file"}]));
    let meta = std::fs::metadata(&path).unwrap();
    assert_eq!(meta.len() as usize, LEN);
    assert_eq!(meta.uid(), user_uid(), "created as the requesting user");

    let mut resp = envd.req(reqwest::Method::GET, "/files").query(&[("path", path.to_str().unwrap())]).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/octet-stream");
    let mut got = Sha256::new();
    let mut n = 0;
    while let Some(c) = resp.chunk().await.unwrap() {
        n += c.len();
        got.update(&c);
    }
    assert_eq!(n, LEN);
    assert_eq!(got.finalize(), expect);
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn gzip_both_ways() {
    let envd = Envd::start().await;
    let dir = user_dir("gzip");
    let data = b"hello gzip world\n".repeat(10_000);
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut enc, &data).unwrap();
    let gz = enc.finish().unwrap();
    let path = dir.join("z.txt");
    let resp = envd
        .req(reqwest::Method::POST, "/files")
        .query(&[("path", path.to_str().unwrap())])
        .header("Content-Type", "application/octet-stream")
        .header("Content-Encoding", "gzip")
        .body(gz)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(std::fs::read(&path).unwrap(), data);

    let resp = envd
        .req(reqwest::Method::GET, "/files")
        .query(&[("path", path.to_str().unwrap())])
        .header("Accept-Encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-encoding"], "gzip");
    let body = resp.bytes().await.unwrap();
    assert!(body.len() < data.len() / 10);
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(&body[..]).read_to_end(&mut out).unwrap();
    assert_eq!(out, data);

    // A corrupt gzip body is a 400, not a crash.
    let resp = envd
        .req(reqwest::Method::POST, "/files")
        .query(&[("path", dir.join("bad").to_str().unwrap())])
        .header("Content-Type", "application/octet-stream")
        .header("Content-Encoding", "gzip")
        .body(b"not gzip at all".to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
}

#[tokio::test]
async fn multipart_single_multi_relative_and_metadata() {
    let envd = Envd::start().await;
    let dir = user_dir("multi");
    // Single file: the `path` query parameter wins over the part's filename.
    let target = dir.join("a/one.txt");
    let form = reqwest::multipart::Form::new().part("file", reqwest::multipart::Part::bytes(b"one".to_vec()).file_name("ignored.txt"));
    let resp = envd
        .req(reqwest::Method::POST, "/files")
        .query(&[("path", target.to_str().unwrap())])
        .header("X-Metadata-Owner-Team", "infra")
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let info: Value = resp.json().await.unwrap();
    assert_eq!(info[0]["path"], target.to_str().unwrap());
    assert_eq!(info[0]["metadata"]["owner-team"], "infra");
    assert_eq!(std::fs::read(&target).unwrap(), b"one");
    let (st, stat) = envd.unary("filesystem.Filesystem/Stat", json!({"path": target})).await;
    assert_eq!(st, 200);
    assert_eq!(stat["entry"]["metadata"]["owner-team"], "infra");

    // Several files: each part's filename is its destination; relative names are under home.
    let rel = "stasis-envd-multipart-test.txt";
    let form = reqwest::multipart::Form::new()
        .part("file", reqwest::multipart::Part::bytes(b"two".to_vec()).file_name(dir.join("b/two.txt").to_str().unwrap().to_string()))
        .part("file", reqwest::multipart::Part::bytes(b"three".to_vec()).file_name(rel));
    let resp = envd.req(reqwest::Method::POST, "/files").multipart(form).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let info: Value = resp.json().await.unwrap();
    assert_eq!(info.as_array().unwrap().len(), 2);
    assert_eq!(std::fs::read(dir.join("b/two.txt")).unwrap(), b"two");
    let home_file = Path::new(&user_home()).join(rel);
    assert_eq!(std::fs::read(&home_file).unwrap(), b"three");
    assert_eq!(info[1]["path"], home_file.to_str().unwrap());

    // Overwrite, and read back via a relative path.
    let resp = envd
        .req(reqwest::Method::POST, "/files")
        .query(&[("path", rel)])
        .header("Content-Type", "application/octet-stream")
        .body("four")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let resp = envd.req(reqwest::Method::GET, "/files").query(&[("path", rel)]).send().await.unwrap();
    assert_eq!(resp.text().await.unwrap(), "four");
    std::fs::remove_file(home_file).unwrap();
}

#[tokio::test]
async fn download_errors() {
    let envd = Envd::start().await;
    let dir = user_dir("dlerr");
    let resp = envd.req(reqwest::Method::GET, "/files").query(&[("path", dir.join("missing").to_str().unwrap())]).send().await.unwrap();
    assert_eq!(resp.status(), 404);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["code"], 404);
    assert!(body["message"].as_str().unwrap().contains("missing"));
    let resp = envd.req(reqwest::Method::GET, "/files").query(&[("path", dir.to_str().unwrap())]).send().await.unwrap();
    assert_eq!(resp.status(), 400);
    let resp = envd
        .req(reqwest::Method::GET, "/files")
        .query(&[("path", "/etc/hostname"), ("username", "no-such-user-xyz")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    // Uploading onto a directory
    let resp = envd
        .req(reqwest::Method::POST, "/files")
        .query(&[("path", dir.to_str().unwrap())])
        .header("Content-Type", "application/octet-stream")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
}

#[tokio::test]
async fn permissions_are_the_users() {
    let envd = Envd::start().await;
    let root_dir = scratch("rootonly");
    std::fs::set_permissions(&root_dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let secret = root_dir.join("secret");
    std::fs::write(&secret, "s").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    let readable = root_dir.join("readable");
    std::fs::write(&readable, "r").unwrap();
    std::fs::set_permissions(&readable, std::fs::Permissions::from_mode(0o644)).unwrap();

    // The default (unprivileged) user can read what is world-readable...
    let resp = envd.req(reqwest::Method::GET, "/files").query(&[("path", readable.to_str().unwrap())]).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    // ...but not root's private file, nor write into root's directory.
    let resp = envd.req(reqwest::Method::GET, "/files").query(&[("path", secret.to_str().unwrap())]).send().await.unwrap();
    assert_eq!(resp.status(), 403);
    let resp = envd
        .req(reqwest::Method::POST, "/files")
        .query(&[("path", root_dir.join("new").to_str().unwrap())])
        .header("Content-Type", "application/octet-stream")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    assert!(!root_dir.join("new").exists());
    let resp = envd
        .req(reqwest::Method::POST, "/files")
        .query(&[("path", readable.to_str().unwrap())])
        .header("Content-Type", "application/octet-stream")
        .body("overwrite")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    assert_eq!(std::fs::read_to_string(&readable).unwrap(), "r");

    for (method, body) in [
        ("MakeDir", json!({"path": root_dir.join("d")})),
        ("Remove", json!({"path": readable})),
        ("Move", json!({"source": readable, "destination": root_dir.join("moved")})),
    ] {
        let (st, r) = envd.unary(&format!("filesystem.Filesystem/{method}"), body).await;
        assert_eq!((st, r["code"].as_str()), (403, Some("permission_denied")), "{method}: {r}");
    }
    assert!(readable.exists());
    // A shell of the user cannot either (processes run as the user).
    let (events, _) = envd.run(&format!("cat {} 2>&1; echo x > {}/y 2>&1; echo rc=$?", secret.display(), root_dir.display())).await;
    let out = output(&events, "stdout");
    assert!(out.contains("Permission denied") && out.contains("rc=1"), "{out}");

    // As root (username parameter or Basic auth) the same operations succeed.
    let resp = envd
        .req(reqwest::Method::GET, "/files")
        .query(&[("path", secret.to_str().unwrap()), ("username", "root")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), "s");
    let (st, _) = envd.unary_as("filesystem.Filesystem/MakeDir", json!({"path": root_dir.join("d")}), Some("root")).await;
    assert_eq!(st, 200);
    assert_eq!(std::fs::metadata(root_dir.join("d")).unwrap().uid(), 0);
}

#[tokio::test]
async fn filesystem_rpcs() {
    let envd = Envd::start().await;
    let dir = user_dir("rpc");
    let d = dir.join("x/y");
    let (st, r) = envd.unary("filesystem.Filesystem/MakeDir", json!({"path": d})).await;
    assert_eq!(st, 200, "{r}");
    let e = &r["entry"];
    assert_eq!(e["name"], "y");
    assert_eq!(e["type"], "FILE_TYPE_DIRECTORY");
    assert_eq!(e["path"], d.to_str().unwrap());
    assert_eq!(e["owner"], TEST_USER);
    assert!(e["permissions"].as_str().unwrap().starts_with("drwx"));
    let (st, r) = envd.unary("filesystem.Filesystem/MakeDir", json!({"path": d})).await;
    assert_eq!((st, r["code"].as_str()), (409, Some("already_exists")));

    std::fs::write(d.join("f.txt"), "12345").unwrap();
    std::os::unix::fs::symlink(d.join("f.txt"), dir.join("link")).unwrap();
    let (st, r) = envd.unary("filesystem.Filesystem/Stat", json!({"path": d.join("f.txt")})).await;
    assert_eq!(st, 200);
    let e = &r["entry"];
    assert_eq!(e["type"], "FILE_TYPE_FILE");
    assert_eq!(e["size"], "5", "int64 as a string");
    assert_eq!(e["mode"], 0o644);
    assert_eq!(e["permissions"], "-rw-r--r--");
    assert_eq!(e["owner"], "root");
    assert_eq!(e["group"], "root");
    assert!(e["modifiedTime"].as_str().unwrap().ends_with('Z'));
    let (_, r) = envd.unary("filesystem.Filesystem/Stat", json!({"path": dir.join("link")})).await;
    assert_eq!(r["entry"]["type"], "FILE_TYPE_SYMLINK");
    assert_eq!(r["entry"]["symlinkTarget"], d.join("f.txt").to_str().unwrap());

    let (_, r) = envd.unary("filesystem.Filesystem/ListDir", json!({"path": dir, "depth": 1})).await;
    let names: Vec<&str> = r["entries"].as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["link", "x"]);
    let (_, r) = envd.unary("filesystem.Filesystem/ListDir", json!({"path": dir, "depth": 3})).await;
    let paths: Vec<&str> = r["entries"].as_array().unwrap().iter().map(|e| e["path"].as_str().unwrap()).collect();
    assert!(paths.contains(&d.join("f.txt").to_str().unwrap()), "{paths:?}");
    let (st, r) = envd.unary("filesystem.Filesystem/ListDir", json!({"path": d.join("f.txt"), "depth": 1})).await;
    assert_eq!((st, r["code"].as_str()), (400, Some("invalid_argument")));

    let (st, r) = envd
        .unary("filesystem.Filesystem/Move", json!({"source": d.join("f.txt"), "destination": dir.join("new/place.txt")}))
        .await;
    assert_eq!(st, 200, "{r}");
    assert_eq!(r["entry"]["path"], dir.join("new/place.txt").to_str().unwrap());
    assert!(!d.join("f.txt").exists());
    let (st, r) = envd.unary("filesystem.Filesystem/Move", json!({"source": d.join("f.txt"), "destination": dir.join("z")})).await;
    assert_eq!((st, r["code"].as_str()), (404, Some("not_found")));

    let (st, _) = envd.unary("filesystem.Filesystem/Remove", json!({"path": dir.join("x")})).await;
    assert_eq!(st, 200);
    assert!(!dir.join("x").exists());
    let (st, r) = envd.unary("filesystem.Filesystem/Stat", json!({"path": dir.join("x")})).await;
    assert_eq!((st, r["code"].as_str()), (404, Some("not_found")));
    let (st, r) = envd.unary("filesystem.Filesystem/Remove", json!({"path": dir.join("x")})).await;
    assert_eq!((st, r["code"].as_str()), (404, Some("not_found")));

    // Relative paths and ~ are the user's home.
    let (_, r) = envd.unary("filesystem.Filesystem/Stat", json!({"path": "~"})).await;
    assert_eq!(r["entry"]["path"], user_home());
}

fn fs_event(v: &Value) -> Option<(String, String)> {
    let f = v.get("filesystem")?;
    Some((f["name"].as_str()?.to_string(), f["type"].as_str()?.to_string()))
}

#[tokio::test]
async fn watch_dir_stream() {
    let envd = Envd::start().await;
    let dir = user_dir("watch");
    let mut s = envd
        .open_stream("filesystem.Filesystem/WatchDir", json!({"path": dir, "recursive": true, "includeEntry": true}), &[])
        .await;
    assert_eq!(s.data(5).await, json!({"start": {}}));
    std::fs::write(dir.join("a.txt"), "1").unwrap();
    // Created right after its directory, possibly before envd watches that directory: still seen.
    std::fs::create_dir(dir.join("sub")).unwrap();
    std::fs::write(dir.join("sub/b.txt"), "2").unwrap();
    std::fs::rename(dir.join("a.txt"), dir.join("c.txt")).unwrap();
    std::fs::remove_file(dir.join("c.txt")).unwrap();
    let mut seen = Vec::new();
    let mut entry_seen = false;
    while !seen.contains(&("c.txt".to_string(), "EVENT_TYPE_REMOVE".to_string())) {
        let v = s.data(5).await;
        if let Some(ev) = fs_event(&v) {
            // (a.txt is renamed at once, so only files that stay can be stat'ed for their entry)
            if ev.0 == "sub/b.txt" && ev.1 == "EVENT_TYPE_CREATE" {
                let e = &v["filesystem"]["entry"];
                entry_seen |= e["name"] == "b.txt" && e["path"] == dir.join("sub/b.txt").to_str().unwrap() && e["type"] == "FILE_TYPE_FILE";
            }
            seen.push(ev);
        }
    }
    let has = |n: &str, t: &str| seen.iter().any(|(a, b)| a == n && b == &format!("EVENT_TYPE_{t}"));
    assert!(has("a.txt", "CREATE") && has("a.txt", "WRITE"), "{seen:?}");
    assert!(has("sub", "CREATE") && has("sub/b.txt", "CREATE"), "recursive: {seen:?}");
    assert!(has("a.txt", "RENAME") && has("c.txt", "CREATE"), "{seen:?}");
    assert!(entry_seen, "includeEntry attaches the entry");

    let (events, end) = envd.stream("filesystem.Filesystem/WatchDir", json!({"path": dir.join("missing")}), &[]).await;
    assert!(events.is_empty());
    assert_eq!(end["error"]["code"], "not_found");
    std::fs::write(dir.join("file"), "").unwrap();
    let (_, end) = envd.stream("filesystem.Filesystem/WatchDir", json!({"path": dir.join("file")}), &[]).await;
    assert_eq!(end["error"]["code"], "invalid_argument");
}

#[tokio::test]
async fn polled_watchers() {
    let envd = Envd::start().await;
    let dir = user_dir("poll");
    let (st, r) = envd.unary("filesystem.Filesystem/CreateWatcher", json!({"path": dir, "recursive": false})).await;
    assert_eq!(st, 200, "{r}");
    let id = r["watcherId"].as_str().unwrap().to_string();
    std::fs::write(dir.join("p.txt"), "x").unwrap();
    let mut names = Vec::new();
    for _ in 0..50 {
        let (st, r) = envd.unary("filesystem.Filesystem/GetWatcherEvents", json!({"watcherId": id})).await;
        assert_eq!(st, 200);
        for e in r["events"].as_array().cloned().unwrap_or_default() {
            names.push((e["name"].as_str().unwrap().to_string(), e["type"].as_str().unwrap().to_string()));
        }
        if names.iter().any(|(n, t)| n == "p.txt" && t == "EVENT_TYPE_CREATE") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(names.iter().any(|(n, t)| n == "p.txt" && t == "EVENT_TYPE_CREATE"), "{names:?}");
    let (st, _) = envd.unary("filesystem.Filesystem/RemoveWatcher", json!({"watcherId": id})).await;
    assert_eq!(st, 200);
    let (st, r) = envd.unary("filesystem.Filesystem/GetWatcherEvents", json!({"watcher_id": id})).await;
    assert_eq!((st, r["code"].as_str()), (404, Some("not_found")));
}
