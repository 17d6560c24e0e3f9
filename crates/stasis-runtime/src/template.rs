//! Templates: read-only root file systems that sandboxes overlay.
//!
//! A template is built once from a recipe by debootstrap, its ownership shifted into the sandbox
//! user namespace (container uid 0 is host uid `id_map.host_base`), and kept under
//! `templates/<name>/<recipe hash>/rootfs`. A changed recipe gets a new hash and so a new build;
//! older builds stay for the paused sandboxes whose upper dirs were made against them.

use crate::error::IoContext;
use crate::oci::IdMap;
use crate::RuntimeError;
use nix::fcntl::{Flock, FlockArg};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::io::{BufRead, BufReader};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

/// Bumped when the build procedure itself changes in a way that changes the result.
const BUILD_FORMAT: u32 = 1;

#[derive(Clone, Debug, Serialize)]
pub struct TemplateRecipe {
    pub name: &'static str,
    pub suite: &'static str,
    pub packages: &'static [&'static str],
    /// Shell run with `chroot` in the new root after debootstrap, as root.
    pub setup: &'static str,
    /// Files written into the root before `setup` runs: (absolute path, contents, mode). Part of
    /// the hash, so editing one of them rebuilds the template.
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub files: &'static [TemplateFile],
    /// A command started (as root, by `/bin/sh -c`, in `/`) inside every new sandbox of this
    /// template, right after its init. It is checkpointed and restored with the sandbox.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start: Option<&'static str>,
    /// When set, creating a sandbox returns only once this port accepts connections inside it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ready_port: Option<u16>,
}
// (The three optional fields are left out of the hash input when unset, so adding them did not
// change the hash, and force a rebuild, of templates that do not use them.)

/// A file a recipe puts into its root: absolute path inside the root, contents, mode.
pub type TemplateFile = (&'static str, &'static str, u32);

/// Where a template's `start` command writes its output, inside the sandbox.
pub const START_LOG: &str = "/var/log/stasis-template-start.log";

/// How long `create` waits for a template's `ready_port`.
pub const READY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

macro_rules! common_setup {
    () => {
        r#"set -eu
id -u user >/dev/null 2>&1 || useradd --create-home --uid 1000 --shell /bin/bash user
echo 'user ALL=(ALL:ALL) NOPASSWD: ALL' > /etc/sudoers.d/user
chmod 0440 /etc/sudoers.d/user
printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\tsandbox\n' > /etc/hosts
echo sandbox > /etc/hostname
apt-get clean
rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/*.log
"#
    };
}

/// Shared by every template: the E2B-style user and the files runc does not provide.
const COMMON_SETUP: &str = common_setup!();

const BASE_PACKAGES: &[&str] = &["bash", "coreutils", "procps", "python3", "curl", "ca-certificates", "iproute2", "sudo"];

pub const BASE: TemplateRecipe = TemplateRecipe {
    name: "base",
    suite: "bookworm",
    packages: BASE_PACKAGES,
    setup: COMMON_SETUP,
    files: &[],
    start: None,
    ready_port: None,
};

/// The port the E2B code interpreter SDKs talk to.
pub const INTERPRETER_PORT: u16 = 49999;

/// The E2B code interpreter SDKs' default template: `base` plus IPython kernels (with numpy,
/// pandas, matplotlib), Node.js and the interpreter service on port 49999. Its packages come
/// from Debian through apt (debootstrap's own resolver does not handle their dependencies).
pub const CODE_INTERPRETER: TemplateRecipe = TemplateRecipe {
    name: "code-interpreter-v1",
    suite: "bookworm",
    packages: BASE_PACKAGES,
    setup: concat!(
        r#"set -eu
export DEBIAN_FRONTEND=noninteractive
# No documentation, manual pages or translations in the image.
printf '%s\n' 'path-exclude=/usr/share/doc/*' 'path-exclude=/usr/share/man/*' 'path-exclude=/usr/share/locale/*' \
    > /etc/dpkg/dpkg.cfg.d/01-stasis-nodoc
apt-get update -q
apt-get install -y -q --no-install-recommends \
    python3-ipykernel python3-jupyter-client python3-matplotlib-inline \
    python3-numpy python3-pandas python3-matplotlib python3-pil nodejs
mkdir -p /home/user
# Build matplotlib's font cache now, not in every sandbox's first plot.
HOME=/root MPLBACKEND=agg python3 -c 'import matplotlib.pyplot'
"#,
        common_setup!()
    ),
    files: &[
        ("/opt/stasis-interpreter/server.py", include_str!("../../../templates/code-interpreter-v1/server.py"), 0o644),
        ("/opt/stasis-interpreter/js_runner.js", include_str!("../../../templates/code-interpreter-v1/js_runner.js"), 0o644),
        ("/opt/stasis-interpreter/kernel_startup.py", include_str!("../../../templates/code-interpreter-v1/kernel_startup.py"), 0o644),
    ],
    start: Some("cd /home/user && HOME=/root exec python3 /opt/stasis-interpreter/server.py"),
    ready_port: Some(INTERPRETER_PORT),
};

pub fn builtin_recipes() -> Vec<TemplateRecipe> {
    vec![BASE, CODE_INTERPRETER]
}

impl TemplateRecipe {
    pub fn hash(&self) -> String {
        let json = serde_json::to_string(&(BUILD_FORMAT, self)).expect("recipe serialises");
        hex::encode(&Sha256::digest(json.as_bytes())[..8])
    }
}

#[derive(Clone, Debug)]
pub struct TemplateStore {
    root: PathBuf,
    id_map: IdMap,
    mirror: String,
    recipes: Vec<TemplateRecipe>,
}

impl TemplateStore {
    pub fn new(root: PathBuf, id_map: IdMap, mirror: Option<String>) -> Self {
        let mirror = mirror.unwrap_or_else(system_debian_mirror);
        TemplateStore { root, id_map, mirror, recipes: builtin_recipes() }
    }

    pub fn recipe(&self, name: &str) -> Result<&TemplateRecipe, RuntimeError> {
        self.recipes.iter().find(|r| r.name == name).ok_or_else(|| {
            let known: Vec<&str> = self.recipes.iter().map(|r| r.name).collect();
            RuntimeError::UnknownTemplate(name.into(), known.join(", "))
        })
    }

    pub fn names(&self) -> Vec<&'static str> {
        self.recipes.iter().map(|r| r.name).collect()
    }

    fn dir(&self, recipe: &TemplateRecipe) -> PathBuf {
        self.root.join(recipe.name).join(recipe.hash())
    }

    /// The built root of the current recipe of `name`.
    pub fn rootfs(&self, name: &str) -> Result<PathBuf, RuntimeError> {
        let recipe = self.recipe(name)?;
        let dir = self.dir(recipe);
        if dir.join("ready").exists() {
            Ok(dir.join("rootfs"))
        } else {
            Err(RuntimeError::TemplateNotBuilt(name.into()))
        }
    }

    pub fn is_built(&self, name: &str) -> bool {
        self.rootfs(name).is_ok()
    }

    /// Build `name` unless its current recipe is already built. Blocking; safe to call from
    /// several processes at once (the second waits for the first and then finds it built).
    pub fn build(&self, name: &str, progress: &dyn Fn(&str)) -> Result<PathBuf, RuntimeError> {
        let recipe = self.recipe(name)?.clone();
        let dir = self.dir(&recipe);
        std::fs::create_dir_all(&self.root).ctx(|| format!("create {}", self.root.display()))?;
        let lock_path = self.root.join(format!(".{}.lock", recipe.name));
        let lock_file = std::fs::File::create(&lock_path).ctx(|| format!("create {}", lock_path.display()))?;
        let _lock = Flock::lock(lock_file, FlockArg::LockExclusive)
            .map_err(|(_, e)| RuntimeError::io(format!("lock {}", lock_path.display()), e.into()))?;
        if dir.join("ready").exists() {
            return Ok(dir.join("rootfs"));
        }
        let started = Instant::now();
        let say = |msg: &str| progress(&format!("[template {} {:>5.1}s] {msg}", recipe.name, started.elapsed().as_secs_f64()));
        let tmp = dir.with_extension("partial");
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp).ctx(|| format!("remove stale {}", tmp.display()))?;
        }
        if dir.exists() {
            // A build that crashed between its rename and its ready marker.
            std::fs::remove_dir_all(&dir).ctx(|| format!("remove unfinished {}", dir.display()))?;
        }
        let rootfs = tmp.join("rootfs");
        std::fs::create_dir_all(&rootfs).ctx(|| format!("create {}", rootfs.display()))?;

        say(&format!("debootstrap {} from {} (about a minute)", recipe.suite, self.mirror));
        let mut cmd = Command::new("debootstrap");
        cmd.arg("--variant=minbase")
            .arg(format!("--include={}", recipe.packages.join(",")))
            .arg(recipe.suite)
            .arg(&rootfs)
            .arg(&self.mirror);
        run_streaming(cmd, "debootstrap", &say)?;

        for (path, contents, mode) in recipe.files {
            let dst = rootfs.join(path.trim_start_matches('/'));
            let parent = dst.parent().expect("a file path has a parent");
            std::fs::create_dir_all(parent).ctx(|| format!("create {}", parent.display()))?;
            std::fs::write(&dst, contents).ctx(|| format!("write {}", dst.display()))?;
            std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(*mode)).ctx(|| format!("chmod {}", dst.display()))?;
        }

        say("running the recipe's setup script (user `user`, sudo, hosts, packages)");
        let mut cmd = Command::new("chroot");
        cmd.arg(&rootfs).args(["/bin/sh", "-c", recipe.setup]).env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin");
        run_streaming(cmd, "template setup script", &say)?;

        say(&format!("shifting ownership into the sandbox id map (+{})", self.id_map.host_base));
        shift_ownership(&rootfs, self.id_map)?;

        std::fs::rename(&tmp, &dir).ctx(|| format!("rename {} to {}", tmp.display(), dir.display()))?;
        std::fs::write(dir.join("ready"), recipe.hash()).ctx(|| "write ready marker".into())?;
        crate::sync::fsync_dir(&dir)?;
        say("ready");
        Ok(dir.join("rootfs"))
    }
}

fn run_streaming(mut cmd: Command, what: &str, say: &dyn Fn(&str)) -> Result<(), RuntimeError> {
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().ctx(|| format!("start {what} (is it installed? run scripts/setup.sh)"))?;
    let stderr = child.stderr.take().expect("piped");
    let err_thread = std::thread::spawn(move || {
        let mut tail = Vec::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            tail.push(line);
            if tail.len() > 20 {
                tail.remove(0);
            }
        }
        tail
    });
    let stdout = child.stdout.take().expect("piped");
    // debootstrap prints a line per package and step: show each new kind of step once, and
    // otherwise a line every few seconds, so a long build visibly moves without flooding.
    let mut seen = std::collections::HashSet::new();
    let mut last_shown = Instant::now();
    for line in BufReader::new(stdout).lines().map_while(Result::ok) {
        let verb = line.split_whitespace().nth(1).unwrap_or("").to_owned();
        if seen.insert(verb) || last_shown.elapsed().as_secs() >= 5 {
            say(&line);
            last_shown = Instant::now();
        }
    }
    let status = child.wait().ctx(|| format!("wait for {what}"))?;
    let tail = err_thread.join().unwrap_or_default();
    if status.success() {
        Ok(())
    } else {
        Err(RuntimeError::Command { what: what.into(), detail: format!("{status}: {}", tail.join(" | ")) })
    }
}

/// Shift every file's owner by the id map's base. chown clears setuid/setgid bits, so the mode is
/// set again afterwards (sudo must stay setuid root *inside* the sandbox).
pub fn shift_ownership(root: &Path, id_map: IdMap) -> Result<(), RuntimeError> {
    // Hard links are one inode seen under several names: shift each inode once.
    let mut linked = std::collections::HashSet::new();
    for entry in walkdir::WalkDir::new(root) {
        let entry = entry.map_err(|e| RuntimeError::io(format!("walk {}", root.display()), e.into()))?;
        let meta = entry.path().symlink_metadata().ctx(|| format!("stat {}", entry.path().display()))?;
        if !meta.is_dir() && meta.nlink() > 1 && !linked.insert((meta.dev(), meta.ino())) {
            continue;
        }
        if meta.uid() >= id_map.size || meta.gid() >= id_map.size {
            return Err(RuntimeError::InvalidRequest(format!(
                "{} is owned by {}:{}, outside the id map",
                entry.path().display(),
                meta.uid(),
                meta.gid()
            )));
        }
        std::os::unix::fs::lchown(entry.path(), Some(meta.uid() + id_map.host_base), Some(meta.gid() + id_map.host_base))
            .ctx(|| format!("chown {}", entry.path().display()))?;
        if !meta.file_type().is_symlink() {
            std::fs::set_permissions(entry.path(), std::fs::Permissions::from_mode(meta.mode() & 0o7777))
                .ctx(|| format!("chmod {}", entry.path().display()))?;
        }
    }
    Ok(())
}

/// The Debian mirror this machine's apt already uses (only package registries are reachable).
pub fn system_debian_mirror() -> String {
    let mut texts = Vec::new();
    if let Ok(t) = std::fs::read_to_string("/etc/apt/sources.list") {
        texts.push(t);
    }
    if let Ok(dir) = std::fs::read_dir("/etc/apt/sources.list.d") {
        for e in dir.flatten() {
            if let Ok(t) = std::fs::read_to_string(e.path()) {
                texts.push(t);
            }
        }
    }
    for text in &texts {
        for line in text.lines() {
            let line = line.trim();
            if line.starts_with('#') {
                continue;
            }
            for word in line.split_whitespace() {
                if (word.starts_with("http://") || word.starts_with("https://")) && word.trim_end_matches('/').ends_with("/debian") {
                    return word.trim_end_matches('/').to_owned();
                }
            }
        }
    }
    "http://deb.debian.org/debian".into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipe_hash_is_stable_and_changes_with_the_recipe() {
        assert_eq!(BASE.hash(), BASE.hash());
        let mut other = BASE.clone();
        other.packages = &["bash"];
        assert_ne!(BASE.hash(), other.hash());
    }

    #[test]
    fn a_changed_service_file_changes_the_interpreter_hash() {
        let mut edited = CODE_INTERPRETER.clone();
        let files: Vec<TemplateFile> = CODE_INTERPRETER
            .files
            .iter()
            .map(|&(path, contents, mode)| {
                let contents: &'static str = if path.ends_with("server.py") { Box::leak(format!("{contents}\n# edited\n").into_boxed_str()) } else { contents };
                (path, contents, mode)
            })
            .collect();
        edited.files = Box::leak(files.into_boxed_slice());
        assert_ne!(CODE_INTERPRETER.hash(), edited.hash());
        let mut other_start = CODE_INTERPRETER.clone();
        other_start.start = Some("exec sleep infinity");
        assert_ne!(CODE_INTERPRETER.hash(), other_start.hash());
    }

    #[test]
    fn optional_fields_do_not_change_the_hash_of_recipes_without_them() {
        // The hash `base` had before recipes could carry files, a start command and a ready port:
        // unchanged, so existing `base` builds stay valid.
        let json = serde_json::to_string(&(BUILD_FORMAT, &BASE)).unwrap();
        assert!(!json.contains("files") && !json.contains("start") && !json.contains("ready_port"), "{json}");
    }

    #[test]
    fn the_interpreter_recipe_carries_its_service() {
        let store = TemplateStore::new("/nonexistent".into(), IdMap::default(), Some("http://x/debian".into()));
        let recipe = store.recipe("code-interpreter-v1").unwrap();
        assert_eq!(recipe.ready_port, Some(INTERPRETER_PORT));
        let start = recipe.start.unwrap();
        for (path, contents, _) in recipe.files {
            assert!(path.starts_with('/'), "{path} must be absolute");
            assert!(!contents.is_empty(), "{path} is empty");
        }
        assert!(recipe.files.iter().any(|(path, _, _)| start.contains(path)), "the start command runs one of the recipe's files: {start}");
    }

    #[test]
    fn unknown_template_is_a_clear_error() {
        let store = TemplateStore::new("/nonexistent".into(), IdMap::default(), Some("http://x/debian".into()));
        let err = store.rootfs("nope").unwrap_err();
        assert!(matches!(err, RuntimeError::UnknownTemplate(..)));
        assert!(err.to_string().contains("base"), "{err}");
    }
}
