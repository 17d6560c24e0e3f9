//! The official E2B SDKs (JS `e2b@2.51.0`, Python `e2b==2.63.0`, pinned in `sdk-smoke/`) against
//! a real envd. The SDKs' debug mode talks to envd at `localhost:49983` without a control plane,
//! so this test needs that port free. It installs the SDKs from their registries (npm, PyPI);
//! it is skipped, loudly, only when `node`/`npm` or `python3` is not installed at all.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

fn have(tool: &str) -> bool {
    Command::new(tool).arg("--version").output().is_ok_and(|o| o.status.success())
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    print!("{}", String::from_utf8_lossy(&out.stdout));
}

/// Package installs reach a registry over the network: allow a transient failure.
fn install(make: impl Fn() -> Command) {
    for attempt in 1..=3 {
        let out = make().output().expect("run installer");
        if out.status.success() {
            return;
        }
        assert!(attempt < 3, "{:?} failed 3 times:\n{}", make(), String::from_utf8_lossy(&out.stderr));
        std::thread::sleep(std::time::Duration::from_secs(5));
    }
}

fn smoke_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("sdk-smoke")
}

#[tokio::test(flavor = "multi_thread")]
async fn official_sdks_drive_envd() {
    let envd = Envd::start_with(&["--port", "49983"]).await;
    assert!(envd.base.ends_with(":49983"));
    let home = user_home();
    let work = std::env::temp_dir().join("stasis-envd-sdk-smoke");
    std::fs::create_dir_all(&work).unwrap();

    if have("node") && have("npm") {
        let js = work.join("js");
        std::fs::create_dir_all(&js).unwrap();
        for f in ["package.json", "package-lock.json", "smoke.mjs"] {
            std::fs::copy(smoke_dir().join(f), js.join(f)).unwrap();
        }
        let js2 = js.clone();
        tokio::task::spawn_blocking(move || {
            install(|| {
                let mut c = Command::new("npm");
                c.args(["ci", "--no-audit", "--no-fund", "--silent"]).current_dir(&js2);
                c
            });
        })
        .await
        .unwrap();
        let h = home.clone();
        tokio::task::spawn_blocking(move || run(Command::new("node").arg("smoke.mjs").env("SMOKE_HOME", h).current_dir(&js)))
            .await
            .unwrap();
    } else {
        println!("SKIPPED: node/npm not installed, JS SDK smoke not run");
    }

    if have("python3") {
        let venv = work.join("venv");
        let py = venv.join("bin/python");
        let req = smoke_dir().join("requirements.txt");
        let script = smoke_dir().join("smoke.py");
        tokio::task::spawn_blocking(move || {
            if !py.exists() {
                run(Command::new("python3").args(["-m", "venv"]).arg(&venv));
            }
            install(|| {
                let mut c = Command::new(&py);
                c.args(["-m", "pip", "install", "-q", "-r"]).arg(&req);
                c
            });
            run(Command::new(&py).arg(&script).env("SMOKE_HOME", home));
        })
        .await
        .unwrap();
    } else {
        println!("SKIPPED: python3 not installed, Python SDK smoke not run");
    }
}
