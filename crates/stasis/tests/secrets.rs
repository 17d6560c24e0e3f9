//! Keys stay out of logs: a server started without `STASIS_API_KEYS` generates a key, keeps it
//! in its data dir (mode 0600), and prints only where it is. (That no access token or API key
//! reaches the server's or envd's log under load is checked by `tests/load.rs`.)

use std::os::unix::fs::PermissionsExt as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Stops the server and removes its data dir, passing or failing.
struct Running {
    child: std::process::Child,
    data: PathBuf,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.data);
    }
}

#[test]
fn a_generated_api_key_is_kept_in_the_data_dir_and_not_logged() {
    assert!(nix::unistd::geteuid().is_root(), "the server tests need root (CI runs them as root)");
    let base = std::env::var("STASIS_TEST_DATA_DIR").unwrap_or_else(|_| "/var/lib/stasis-test".into());
    let data = PathBuf::from(format!("{base}-keygen"));
    let _ = std::fs::remove_dir_all(&data);
    std::fs::create_dir_all(&data).unwrap();
    let log_path = data.join("server.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let templates = std::env::var("STASIS_TEMPLATES_DIR").unwrap_or_else(|_| "/var/lib/stasis/templates".into());
    let addr = format!("127.0.0.1:{}", free_port());
    let child = Command::new(env!("CARGO_BIN_EXE_stasis"))
        .args(["--data-dir", data.to_str().unwrap(), "--templates-dir", &templates, "server", "--listen", &addr])
        .env_remove("STASIS_API_KEYS")
        .env("STASIS_LOG", "trace")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("start stasis server");
    let server = Running { child, data: data.clone() };

    let http = reqwest::blocking::Client::new();
    let url = format!("http://{addr}");
    let deadline = Instant::now() + Duration::from_secs(300);
    while http.get(format!("{url}/health")).send().is_err() {
        assert!(Instant::now() < deadline, "server did not come up: {}", std::fs::read_to_string(&log_path).unwrap_or_default());
        std::thread::sleep(Duration::from_millis(100));
    }

    let key_path = data.join("api-key");
    let key = std::fs::read_to_string(&key_path).expect("the generated key is kept in the data dir");
    assert!(key.starts_with("e2b_") && key.len() >= 40, "{key:?}");
    assert_eq!(std::fs::metadata(&key_path).unwrap().permissions().mode() & 0o777, 0o600);
    let status = |k: &str| http.get(format!("{url}/v2/sandboxes")).header("X-API-KEY", k).send().unwrap().status().as_u16();
    assert_eq!(status(&key), 200, "the generated key is accepted");
    assert_eq!(status("e2b_not-the-key"), 401);

    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(log.contains(&key_path.display().to_string()), "the log says where the key is:\n{log}");
    assert!(!log.contains(key.trim()), "the generated key is in the server's log:\n{log}");
    drop(server);
}
