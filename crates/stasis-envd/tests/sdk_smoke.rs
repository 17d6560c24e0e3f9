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
            run(Command::new("npm").args(["ci", "--no-audit", "--no-fund", "--silent"]).current_dir(&js2));
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
            run(Command::new(&py).args(["-m", "pip", "install", "-q", "-r"]).arg(&req));
            run(Command::new(&py).arg(&script).env("SMOKE_HOME", home));
        })
        .await
        .unwrap();
    } else {
        println!("SKIPPED: python3 not installed, Python SDK smoke not run");
    }
}
