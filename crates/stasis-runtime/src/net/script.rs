//! Feeding a script to a host tool (`nft -f -`, `ip -batch -`) and turning its failure into a
//! clear error that names the tool, what it printed and the script.

use crate::RuntimeError;
use std::process::Stdio;
use tokio::io::AsyncWriteExt;

/// Run `argv` with `script` on its standard input. `what` names the step in errors; `package`
/// is the Debian package that provides `argv[0]`.
pub async fn run(argv: &[&str], script: &str, what: &str, package: &str) -> Result<(), RuntimeError> {
    let mut child = tokio::process::Command::new(argv[0])
        .args(&argv[1..])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| RuntimeError::Command { what: what.into(), detail: format!("cannot run {}: {e}; install {package}", argv[0]) })?;
    let mut stdin = child.stdin.take().expect("piped stdin");
    stdin.write_all(script.as_bytes()).await.map_err(|e| RuntimeError::io(format!("write to {}", argv[0]), e))?;
    drop(stdin);
    let out = child.wait_with_output().await.map_err(|e| RuntimeError::io(format!("wait for {}", argv[0]), e))?;
    if !out.status.success() {
        return Err(RuntimeError::Command {
            what: what.into(),
            detail: format!("{}; script:\n{script}", String::from_utf8_lossy(&out.stderr).trim()),
        });
    }
    Ok(())
}
