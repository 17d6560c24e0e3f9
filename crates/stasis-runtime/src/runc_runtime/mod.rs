//! The runc + CRIU implementation of [`Runtime`].
//!
//! On disk, one directory per sandbox under `<data>/sandboxes/<id>/`:
//! `sandbox.json` (what it was made from), `upper/` + `work/` (its overlay layer),
//! `bundle/` (OCI config; `rootfs/` is the overlay mount while running),
//! `checkpoint/` (CRIU images + manifest; present exactly when paused and not `parked`, see
//! `park.rs` for pauses kept in memory).
//! A pause writes `checkpoint.partial/` and renames it once CRIU has finished, so a crash of this
//! process leaves either a running sandbox or a complete checkpoint, never half of one; the
//! images and the upper dir are then flushed to disk (before the pause answers with
//! `sync_pause`, right after it otherwise) and `checkpoint/durable` marks it done.

use crate::error::IoContext;
use crate::manifest::CheckpointManifest;
use crate::net::policy::EgressPolicy;
use crate::net::{Network, NetworkConfig};
use crate::netns::NetNs;
use crate::oci::{build_spec, IdMap, SpecParams};
use crate::reaper::Reaper;
use crate::runc::{last_lines, Runc};
use crate::runtime::{ExecOutput, ExecRequest, Limits, Runtime, SandboxInfo, SandboxSpec, SandboxStats, SandboxStatus};
use crate::template::TemplateStore;
use crate::{overlay, sync, RuntimeError, SandboxId};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::net::TcpStream;
use tokio::sync::RwLock;

mod park;

#[derive(Clone, Debug)]
pub struct RuntimeConfig {
    /// Templates, sandboxes, images. Must be on a file system that supports overlayfs upper dirs.
    pub data_dir: PathBuf,
    /// Built templates (immutable, content-addressed: several data dirs may share them).
    pub templates_dir: PathBuf,
    /// runc's state directory.
    pub run_dir: PathBuf,
    pub runc_binary: PathBuf,
    pub criu_binary: PathBuf,
    /// The envd binary on the host; copied content-addressed into the data dir.
    pub envd_binary: PathBuf,
    pub id_map: IdMap,
    /// Debian mirror for template builds; default: the one this machine's apt uses.
    pub debian_mirror: Option<String>,
    /// Sandbox networking (veth, NAT, egress rules); `None`: sandboxes have only `lo`.
    pub network: Option<NetworkConfig>,
    /// Flush a pause's images to disk before reporting it done. Off: they are flushed right
    /// after, in the background; a pause survives a crash of the server either way, and with
    /// this on also a crash of the host in the second after it. On, no pause is kept in memory.
    pub sync_pause: bool,
    /// Keep a paused sandbox frozen in memory this long before writing its checkpoint (a resume
    /// before then thaws it). `None`: a pause writes the checkpoint before it answers.
    pub park_for: Option<Duration>,
    /// Parked sandboxes are checkpointed at once (their memory freed) while the host's
    /// MemAvailable is below this many bytes.
    pub park_reserve_bytes: u64,
}

impl RuntimeConfig {
    /// Defaults for a data directory: runc state under /run/stasis/<hash of data dir>, the
    /// runc and CRIU found on this machine.
    pub fn with_data_dir(data_dir: PathBuf, envd_binary: PathBuf) -> Self {
        RuntimeConfig {
            run_dir: PathBuf::from("/run/stasis").join(data_dir_tag(&data_dir)),
            templates_dir: data_dir.join("templates"),
            data_dir,
            runc_binary: find_binary("runc", &["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin"]),
            criu_binary: find_binary("criu", &["/usr/local/sbin", "/usr/local/bin", "/usr/sbin"]),
            envd_binary,
            id_map: IdMap::default(),
            debian_mirror: None,
            network: Some(NetworkConfig::default()),
            sync_pause: false,
            park_for: None,
            park_reserve_bytes: 2 << 30,
        }
    }
}

/// A short name for a data dir, unique enough on one host: names its runc state dir, its
/// nftables table and its sandboxes' host-side links.
fn data_dir_tag(data_dir: &Path) -> String {
    hex::encode(&Sha256::digest(data_dir.to_string_lossy().as_bytes())[..4])
}

/// The freezer of a sandbox's cgroup (`/stasis/<id>` in every hierarchy).
fn freezer_of(id: &SandboxId) -> crate::cgroup::Freezer {
    crate::cgroup::Freezer::of(&format!("stasis/{id}"))
}

fn find_binary(name: &str, dirs: &[&str]) -> PathBuf {
    dirs.iter().map(|d| Path::new(d).join(name)).find(|p| p.exists()).unwrap_or_else(|| PathBuf::from(name))
}

/// What a sandbox was made from; written once at create.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct SandboxRecord {
    id: SandboxId,
    template: String,
    template_rootfs: PathBuf,
    envd_binary: PathBuf,
    limits: Limits,
    env: BTreeMap<String, String>,
    created_at_ms: u64,
    /// Its network slot (addresses and link name), kept across pause and resume.
    #[serde(default)]
    net_slot: Option<u32>,
}

/// The live half of a running sandbox.
#[derive(Clone)]
struct Live {
    netns: NetNs,
    /// Host pid of the sandbox's init.
    pid: i32,
}

#[derive(Default)]
struct Slot {
    /// Create and pause take it exclusively (and fail with Busy when they can't); resume, kill
    /// and a parked sandbox's dump wait for it; exec shares it, so a sandbox is never
    /// checkpointed under a running `runc exec`.
    op: RwLock<()>,
    live: Mutex<Option<Live>>,
    /// Paused in memory: frozen, its checkpoint not written yet (see `park.rs`).
    parked: AtomicBool,
    /// A resume waits for `op`: a dump that finishes meanwhile keeps the sandbox in memory.
    resume_waiting: AtomicBool,
    /// Cuts a parked sandbox's wait for its checkpoint short (memory pressure).
    dump_now: tokio::sync::Notify,
}

pub struct RuncRuntime {
    cfg: RuntimeConfig,
    runc: Runc,
    templates: TemplateStore,
    envd: PathBuf,
    /// CRIU action script readying a sandbox's network before its sockets are restored.
    restore_hook: PathBuf,
    host_netns: String,
    nofile_limit: u64,
    slots: Mutex<HashMap<SandboxId, Arc<Slot>>>,
    reaper: Reaper,
    net: Option<Network>,
    /// Held for the runtime's life: two processes reconciling one data dir would undo each
    /// other's work.
    _data_lock: nix::fcntl::Flock<std::fs::File>,
    /// For the background dumps of parked sandboxes.
    me: Weak<RuncRuntime>,
    /// Dumps of parked sandboxes at once: one per CPU (CRIU is CPU-bound while it copies).
    dump_permits: tokio::sync::Semaphore,
}

/// CRIU options runc cannot express: drop established TCP connections (clients reconnect after
/// resume, as on E2B; the proxy closes its own first) and skip iptables network locking, which
/// only matters for connections that are kept.
const CRIU_CONFIG: &str = "tcp-close\nnetwork-lock skip\n";

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

impl RuncRuntime {
    /// Open (or initialise) a data directory and take over the sandboxes it holds: running ones
    /// are re-attached, half-finished operations of a crashed process are rolled back.
    pub async fn new(cfg: RuntimeConfig) -> Result<Arc<Self>, RuntimeError> {
        for dir in [cfg.data_dir.join("sandboxes"), cfg.data_dir.join("bin"), cfg.run_dir.clone()] {
            std::fs::create_dir_all(&dir).ctx(|| format!("create {}", dir.display()))?;
        }
        // Host users must not reach into sandbox roots (setuid files there map to sandbox uids);
        // the sandbox's own uids only need to traverse to their root.
        for dir in [&cfg.data_dir, &cfg.data_dir.join("sandboxes")] {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o711)).ctx(|| format!("chmod {}", dir.display()))?;
        }
        let lock_path = cfg.data_dir.join("runtime.lock");
        let lock_file = std::fs::File::create(&lock_path).ctx(|| format!("create {}", lock_path.display()))?;
        let data_lock = nix::fcntl::Flock::lock(lock_file, nix::fcntl::FlockArg::LockExclusiveNonblock).map_err(|(_, e)| {
            RuntimeError::io(format!("{} is in use by another stasis process", cfg.data_dir.display()), e.into())
        })?;
        // Sandboxes paused by an earlier version name this shared file in their OCI config.
        let criu_config = cfg.data_dir.join("criu-runc.conf");
        std::fs::write(&criu_config, CRIU_CONFIG).ctx(|| format!("write {}", criu_config.display()))?;
        let envd = install_envd(&cfg.envd_binary, &cfg.data_dir.join("bin"))?;
        let restore_hook = crate::net::restore_hook::install(&cfg.data_dir.join("bin"))?;
        let host_netns = crate::net::restore_hook::host_netns()?;
        let net = match &cfg.network {
            Some(n) => Some(Network::open(n.clone(), &data_dir_tag(&cfg.data_dir)[..6]).await?),
            None => None,
        };
        let nofile_limit = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
            .map(|(_, hard)| hard)
            .unwrap_or(1024);
        let reaper = Reaper::start().ctx(|| "become the child subreaper of sandbox inits".into())?;
        let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        let rt = Arc::new_cyclic(|me| RuncRuntime {
            runc: Runc { binary: cfg.runc_binary.clone(), root: cfg.run_dir.clone(), criu: cfg.criu_binary.clone() },
            templates: TemplateStore::new(cfg.templates_dir.clone(), cfg.id_map, cfg.debian_mirror.clone()),
            envd,
            restore_hook,
            host_netns,
            nofile_limit,
            slots: Mutex::new(HashMap::new()),
            reaper,
            net,
            _data_lock: data_lock,
            me: me.clone(),
            dump_permits: tokio::sync::Semaphore::new(cpus),
            cfg,
        });
        rt.recover().await?;
        if rt.cfg.park_for.is_some() {
            rt.watch_memory();
        }
        Ok(rt)
    }

    pub fn templates(&self) -> &TemplateStore {
        &self.templates
    }

    /// Sandbox networking, when it is on: the host side's names (nftables table, links).
    pub fn network(&self) -> Option<&Network> {
        self.net.as_ref()
    }

    /// A sandbox's addresses (kept while it is paused).
    pub fn network_slot(&self, id: &SandboxId) -> Option<crate::net::Slot> {
        Some(self.net.as_ref()?.slot(self.read_record(id).ok()?.net_slot?))
    }

    fn sandbox_dir(&self, id: &SandboxId) -> PathBuf {
        self.cfg.data_dir.join("sandboxes").join(id.as_str())
    }

    fn slot(&self, id: &SandboxId) -> Arc<Slot> {
        self.slots.lock().expect("slots lock").entry(id.clone()).or_default().clone()
    }

    /// The live half of a running sandbox (not of a parked one: it is paused).
    fn live(&self, id: &SandboxId) -> Option<Live> {
        let slot = self.slots.lock().expect("slots lock").get(id).cloned()?;
        if slot.parked.load(Ordering::SeqCst) {
            return None;
        }
        let live = slot.live.lock().expect("live lock").clone();
        live
    }

    /// The live half of a running or parked sandbox.
    fn live_any(&self, id: &SandboxId) -> Option<Live> {
        self.slots.lock().expect("slots lock").get(id).and_then(|s| s.live.lock().expect("live lock").clone())
    }

    fn is_parked(&self, id: &SandboxId) -> bool {
        self.slots.lock().expect("slots lock").get(id).is_some_and(|s| s.parked.load(Ordering::SeqCst))
    }

    fn read_record(&self, id: &SandboxId) -> Result<SandboxRecord, RuntimeError> {
        let path = self.sandbox_dir(id).join("sandbox.json");
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(RuntimeError::NotFound(id.clone())),
            Err(e) => return Err(RuntimeError::io(format!("read {}", path.display()), e)),
        };
        serde_json::from_slice(&bytes).map_err(|e| RuntimeError::BadManifest { path, detail: e.to_string() })
    }

    fn status_of(&self, id: &SandboxId) -> SandboxStatus {
        if self.is_parked(id) {
            SandboxStatus::Paused
        } else if self.live(id).is_some() {
            SandboxStatus::Running
        } else if self.sandbox_dir(id).join("checkpoint/manifest.json").exists() {
            SandboxStatus::Paused
        } else {
            SandboxStatus::Stopped
        }
    }

    /// Attach to a running container: open its network namespace and remember it.
    async fn attach(&self, id: &SandboxId, pid: i32, bring_lo_up: bool) -> Result<(), RuntimeError> {
        let netns = NetNs::of_pid(pid).ctx(|| format!("open network namespace of pid {pid}"))?;
        if bring_lo_up {
            netns.loopback_up().await.ctx(|| "bring lo up in the sandbox".into())?;
        }
        self.reaper.track(pid);
        *self.slot(id).live.lock().expect("live lock") = Some(Live { netns, pid });
        Ok(())
    }

    /// The sandbox's egress policy (`network.json`; the default when it has none).
    fn read_policy(&self, id: &SandboxId) -> Result<EgressPolicy, RuntimeError> {
        let path = self.sandbox_dir(id).join(NETWORK_FILE);
        match std::fs::read(&path) {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| RuntimeError::BadManifest { path, detail: e.to_string() }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(EgressPolicy::default()),
            Err(e) => Err(RuntimeError::io(format!("read {}", path.display()), e)),
        }
    }

    /// Give a running sandbox its link and egress rules (nothing to do without networking).
    async fn connect_network(&self, id: &SandboxId, pid: i32, record: &SandboxRecord, strict: bool, restored: bool) -> Result<(), RuntimeError> {
        let (Some(net), Some(index)) = (&self.net, record.net_slot) else { return Ok(()) };
        if !net.reclaim(index, &self.sandbox_dir(id))? {
            return Err(RuntimeError::Command {
                what: "network setup".into(),
                detail: format!("address slot {index} of sandbox {id} was taken by another sandbox while this one was down"),
            });
        }
        net.connect(pid, index, &self.read_policy(id)?, strict, restored).await
    }

    /// Remove a sandbox's link and rules; the address stays leased.
    async fn disconnect_network(&self, record: &SandboxRecord) -> Result<(), RuntimeError> {
        match (&self.net, record.net_slot) {
            (Some(net), Some(index)) => net.disconnect(index).await,
            _ => Ok(()),
        }
    }

    /// A pause that failed before the dump leaves the sandbox running: give its network back.
    async fn reconnect_after_failed_pause(&self, id: &SandboxId, record: &SandboxRecord, detail: &mut String) {
        if let Some(live) = self.live(id) {
            if let Err(e) = self.connect_network(id, live.pid, record, false, false).await {
                detail.push_str(&format!("; reconnecting its network failed too: {e}"));
            }
        }
    }

    /// Forget the live half; returns the init pid it had.
    fn detach(&self, id: &SandboxId) -> Option<i32> {
        let slot = self.slots.lock().expect("slots lock").get(id).cloned()?;
        let live = slot.live.lock().expect("live lock").take();
        live.map(|l| l.pid)
    }

    async fn recover(&self) -> Result<(), RuntimeError> {
        let dir = self.cfg.data_dir.join("sandboxes");
        let entries = std::fs::read_dir(&dir).ctx(|| format!("read {}", dir.display()))?;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Ok(id) = SandboxId::parse(&name) else { continue };
            let sdir = entry.path();
            // An operation the previous process started may still be running (runc and CRIU
            // outlive it): wait for it before judging the sandbox's state.
            wait_for_op_lock(&sdir.join(OP_LOCK)).await;
            let _ = std::fs::remove_dir_all(sdir.join(USED_CHECKPOINT));
            let state = self.runc.state(id.as_str()).await?;
            if !sdir.join("sandbox.json").exists() {
                // Crashed during create, before the record was written.
                self.runc.delete_force(id.as_str()).await?;
                overlay::unmount(&sdir.join("bundle/rootfs"))?;
                std::fs::remove_dir_all(&sdir).ctx(|| format!("remove {}", sdir.display()))?;
                continue;
            }
            let parked = sdir.join(park::PARKED_MARK).exists();
            match state {
                Some(s) if parked && (s.status == "running" || s.status == "paused") => self.recover_parked(&id, s.pid).await?,
                Some(s) if s.status == "running" || s.status == "paused" => {
                    // Frozen by a pause that never answered (or a resume that never thawed).
                    freezer_of(&id).thaw();
                    // Running wins: over a dump that failed (CRIU let the tasks go on) and over a
                    // checkpoint left by a crash after a restore.
                    let _ = std::fs::remove_dir_all(sdir.join("checkpoint.partial"));
                    let _ = std::fs::remove_dir_all(sdir.join("checkpoint"));
                    // A restore interrupted by the crash never brought lo up.
                    self.attach(&id, s.pid, true).await?;
                    let record = self.read_record(&id)?;
                    if let Err(e) = self.connect_network(&id, s.pid, &record, false, false).await {
                        tracing::error!(%id, %e, "could not reconnect a running sandbox's network");
                    }
                }
                other => {
                    if other.is_some() {
                        self.runc.delete_force(id.as_str()).await?;
                    }
                    // Parked, then checkpointed, and the process stopped before the mark went.
                    let _ = std::fs::remove_file(sdir.join(park::PARKED_MARK));
                    overlay::unmount(&sdir.join("bundle/rootfs"))?;
                    let partial = sdir.join("checkpoint.partial");
                    if !sdir.join("checkpoint/manifest.json").exists() && dump_succeeded(&partial) {
                        // The server died after CRIU had dumped and killed the tasks, before the
                        // images were made durable: finish that pause now, or the sandbox is lost.
                        let record = self.read_record(&id)?;
                        let (dir, id_map) = (sdir.clone(), self.cfg.id_map);
                        tokio::task::spawn_blocking(move || persist_checkpoint(&dir, &record, id_map, true)).await.expect("persist task")?;
                        tracing::warn!(%id, "completed a pause interrupted by a crash");
                    } else {
                        let _ = std::fs::remove_dir_all(&partial);
                    }
                    if sdir.join("checkpoint/manifest.json").exists() && !sdir.join("checkpoint").join(DURABLE_MARK).exists() {
                        // Paused just before a crash: its write-back never finished.
                        make_durable_in_background(id.clone(), sdir.clone());
                    }
                    // Keep a paused sandbox's address (its lease may be gone with /run after a reboot).
                    if let (Some(net), Ok(SandboxRecord { net_slot: Some(index), .. })) = (&self.net, self.read_record(&id)) {
                        if !net.reclaim(index, &sdir)? {
                            tracing::warn!(%id, index, "a paused sandbox's address slot is taken; its resume will fail");
                        }
                    }
                }
            }
        }
        Ok(())
    }

    async fn create_inner(&self, id: &SandboxId, spec: &SandboxSpec, dir: &Path) -> Result<(), RuntimeError> {
        let template_rootfs = self.templates.rootfs(&spec.template)?;
        let (upper, work, bundle) = (dir.join("upper"), dir.join("work"), dir.join("bundle"));
        let rootfs = bundle.join("rootfs");
        for d in [&upper, &work, &rootfs] {
            std::fs::create_dir_all(d).ctx(|| format!("create {}", d.display()))?;
        }
        // The overlay's root directory takes its owner from the upper dir: root of the sandbox.
        let base = self.cfg.id_map.host_base;
        std::os::unix::fs::chown(&upper, Some(base), Some(base)).ctx(|| "chown upper dir".into())?;
        std::fs::set_permissions(&upper, std::fs::Permissions::from_mode(0o755)).ctx(|| "chmod upper dir".into())?;

        // Its own CRIU configuration: a restore adds the network hook to it for that one run.
        let criu_config = dir.join(CRIU_CONFIG_FILE);
        std::fs::write(&criu_config, CRIU_CONFIG).ctx(|| format!("write {}", criu_config.display()))?;
        let oci = build_spec(&SpecParams {
            hostname: "sandbox",
            env: &spec.env,
            limits: &spec.limits,
            id_map: self.cfg.id_map,
            envd_host_path: &self.envd,
            criu_config: &criu_config,
            cgroups_path: PathBuf::from(format!("/stasis/{id}")),
            nofile_limit: self.nofile_limit,
        });
        oci.save(bundle.join("config.json"))
            .map_err(|e| RuntimeError::Command { what: "write config.json".into(), detail: e.to_string() })?;

        let net_slot = match &self.net {
            Some(net) => {
                let slot = net.acquire(dir)?;
                write_atomic(&dir.join(NETWORK_FILE), &serde_json::to_vec_pretty(&spec.network).expect("policy serialises"))?;
                write_resolv_conf(&upper, &net.resolv_conf(), base)?;
                Some(slot.index)
            }
            None => None,
        };
        let record = SandboxRecord {
            id: id.clone(),
            template: spec.template.clone(),
            template_rootfs: template_rootfs.clone(),
            envd_binary: self.envd.clone(),
            limits: spec.limits.clone(),
            env: spec.env.clone(),
            created_at_ms: now_ms(),
            net_slot,
        };
        write_atomic(&dir.join("sandbox.json"), &serde_json::to_vec_pretty(&record).expect("record serialises"))?;

        overlay::mount_overlay(&template_rootfs, &upper, &work, &rootfs)?;
        let pid = self.runc.run_detached(id.as_str(), &bundle, &dir.join(OP_LOCK)).await?;
        self.attach(id, pid, true).await?;
        self.connect_network(id, pid, &record, true, false).await?;
        let recipe = self.templates.recipe(&spec.template)?;
        if let Some(start) = recipe.start {
            self.start_template_command(id, dir, start, recipe.ready_port).await?;
        }
        Ok(())
    }

    /// Start a template's `start` command inside the sandbox and wait for its `ready_port`.
    ///
    /// The command must end up a child of the sandbox's init, so that CRIU dumps it with the
    /// sandbox: `runc exec --detach` would leave it to this process, the child subreaper of
    /// sandbox inits. So a shell backgrounds it in a session of its own and exits, and the
    /// kernel re-parents it to the init. Its stdio points at files inside the sandbox: CRIU
    /// refuses to dump a process whose stdio is a host file.
    async fn start_template_command(&self, id: &SandboxId, dir: &Path, start: &str, ready_port: Option<u16>) -> Result<(), RuntimeError> {
        use crate::template::{READY_TIMEOUT, START_LOG};
        let quoted = start.replace('\'', r"'\''");
        let script = format!("cd / && setsid /bin/sh -c '{quoted}' </dev/null >>{START_LOG} 2>&1 &");
        let argv = ["/bin/sh".to_owned(), "-c".to_owned(), script];
        let out = self.runc.exec(id.as_str(), &argv, &[], "/", (0, 0), Some(Duration::from_secs(10))).await?;
        if !out.status.success() {
            return Err(RuntimeError::Command { what: "start of the template's command".into(), detail: last_lines(&out.stderr, 4) });
        }
        let Some(port) = ready_port else { return Ok(()) };
        let netns = self.live(id).ok_or_else(|| RuntimeError::NotRunning(id.clone()))?.netns;
        let deadline = std::time::Instant::now() + READY_TIMEOUT;
        loop {
            match netns.connect(port, Duration::from_secs(1)).await {
                Ok(_) => return Ok(()),
                Err(_) if std::time::Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(100)).await,
                Err(e) => {
                    let log = std::fs::read(dir.join("upper").join(START_LOG.trim_start_matches('/'))).map(|b| last_lines(&b, 6)).unwrap_or_default();
                    return Err(RuntimeError::Command {
                        what: format!("template service on port {port}"),
                        detail: format!("not accepting connections {READY_TIMEOUT:?} after start ({e}); {START_LOG} ends with: {log}"),
                    });
                }
            }
        }
    }

    async fn remove_everything(&self, id: &SandboxId, dir: &Path) -> Result<(), RuntimeError> {
        if let Some(slot) = self.slots.lock().expect("slots lock").get(id) {
            slot.parked.store(false, Ordering::SeqCst);
        }
        let pid = self.detach(id);
        self.runc.delete_force(id.as_str()).await?;
        if let Some(pid) = pid {
            self.reaper.wait_gone(pid).await;
        }
        if let Ok(record) = self.read_record(id) {
            self.disconnect_network(&record).await?;
            if let (Some(net), Some(index)) = (&self.net, record.net_slot) {
                net.release(index, dir);
            }
        }
        overlay::unmount(&dir.join("bundle/rootfs"))?;
        let dir = dir.to_owned();
        tokio::task::spawn_blocking(move || {
            // A resume's background cleanup may be deleting inside it at the same time: retry.
            let mut tries = 0;
            loop {
                match std::fs::remove_dir_all(&dir) {
                    Ok(()) => return Ok(()),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
                    Err(_) if tries < 3 => tries += 1,
                    Err(e) => return Err(RuntimeError::io(format!("remove {}", dir.display()), e)),
                }
            }
        })
        .await
        .expect("remove task")
    }

    /// `runc restore` from `images` over the sandbox's (re)mounted overlay, then attach. On
    /// failure nothing of the attempt remains (no container, no mount).
    async fn restore_from(&self, id: &SandboxId, record: &SandboxRecord, images: &Path) -> Result<(), RuntimeError> {
        let started = std::time::Instant::now();
        let dir = self.sandbox_dir(id);
        let rootfs = dir.join("bundle/rootfs");
        if !overlay::is_mountpoint(&rootfs)? {
            overlay::mount_overlay(&record.template_rootfs, &dir.join("upper"), &dir.join("work"), &rootfs)?;
        }
        // The restored init runs as the mapped root and must be able to read the images.
        chown_tree(images, self.cfg.id_map.host_base)?;
        let work = dir.join("restore-work");
        let _ = std::fs::remove_dir_all(&work);
        std::fs::create_dir_all(&work).ctx(|| format!("create {}", work.display()))?;
        // Sandboxes made before per-sandbox CRIU configurations restore as they were paused.
        let criu_config = dir.join(CRIU_CONFIG_FILE);
        let mut env = Vec::new();
        if let (Some(net), Some(index), true) = (&self.net, record.net_slot, criu_config.exists()) {
            let hooked = format!("{CRIU_CONFIG}action-script {}\n", self.restore_hook.display());
            std::fs::write(&criu_config, hooked).ctx(|| format!("write {}", criu_config.display()))?;
            env.push(("STASIS_RESTORE_ADDR", net.slot(index).sandbox.to_string()));
            env.push(("STASIS_HOST_NETNS", self.host_netns.clone()));
        }
        let restored = self.runc.restore(id.as_str(), &dir.join("bundle"), images, &work, &dir.join(OP_LOCK), &env).await;
        if !env.is_empty() {
            // Checkpoints need no hook: do not make them run it for every action.
            if let Err(e) = std::fs::write(&criu_config, CRIU_CONFIG) {
                tracing::warn!(%id, %e, "could not take the restore hook out of the CRIU configuration");
            }
        }
        let pid = match restored {
            Ok(pid) => pid,
            Err(err) => {
                let detail = format!("{err}; criu: {}", Self::dump_log_tail(&work, "restore.log"));
                let _ = self.runc.delete_force(id.as_str()).await;
                let _ = overlay::unmount(&rootfs);
                return Err(RuntimeError::RestoreFailed { id: id.clone(), detail });
            }
        };
        let _ = std::fs::remove_dir_all(&work);
        let restored_ms = started.elapsed().as_millis();
        self.attach(id, pid, true).await?;
        let connected = self.connect_network(id, pid, record, false, true).await;
        tracing::debug!(%id, restored_ms, network_ms = started.elapsed().as_millis() - restored_ms, "restore steps");
        if let Err(e) = connected {
            // A sandbox without its network is not what was paused: undo the restore.
            self.detach(id);
            let _ = self.runc.delete_force(id.as_str()).await;
            self.reaper.wait_gone(pid).await;
            let _ = self.disconnect_network(record).await;
            let _ = overlay::unmount(&rootfs);
            return Err(RuntimeError::RestoreFailed { id: id.clone(), detail: format!("network: {e}") });
        }
        Ok(())
    }

    fn dump_log_tail(work: &Path, log: &str) -> String {
        std::fs::read(work.join(log)).map(|b| last_lines(&b, 8)).unwrap_or_default()
    }
}

/// A sandbox's CRIU configuration file (named in its OCI config for runc to pass on).
const CRIU_CONFIG_FILE: &str = "criu.conf";

/// Where a resume moves the checkpoint it restored from, to delete it in the background.
const USED_CHECKPOINT: &str = "checkpoint.used";

/// The sandbox's egress policy, beside `sandbox.json` (it changes; the record does not).
const NETWORK_FILE: &str = "network.json";

/// /etc/resolv.conf in the sandbox's own layer, owned by its root (`etc/` too, as in the template).
fn write_resolv_conf(upper: &Path, contents: &str, root_uid: u32) -> Result<(), RuntimeError> {
    let etc = upper.join("etc");
    std::fs::create_dir_all(&etc).ctx(|| format!("create {}", etc.display()))?;
    std::os::unix::fs::chown(&etc, Some(root_uid), Some(root_uid)).ctx(|| "chown etc".into())?;
    std::fs::set_permissions(&etc, std::fs::Permissions::from_mode(0o755)).ctx(|| "chmod etc".into())?;
    let path = etc.join("resolv.conf");
    std::fs::write(&path, contents).ctx(|| format!("write {}", path.display()))?;
    std::os::unix::fs::chown(&path, Some(root_uid), Some(root_uid)).ctx(|| "chown resolv.conf".into())?;
    Ok(())
}

/// Copy envd into `bin/stasis-envd-<hash>`: a paused sandbox's init maps that exact file, and
/// CRIU refuses to restore if it changed, so a rebuilt envd must not overwrite it.
fn install_envd(src: &Path, bin_dir: &Path) -> Result<PathBuf, RuntimeError> {
    let bytes = std::fs::read(src).ctx(|| format!("read envd binary {} (build it with `cargo build -p stasis-envd`)", src.display()))?;
    let dst = bin_dir.join(format!("stasis-envd-{}", hex::encode(&Sha256::digest(&bytes)[..8])));
    if !dst.exists() {
        let tmp = dst.with_extension("tmp");
        std::fs::write(&tmp, &bytes).ctx(|| format!("write {}", tmp.display()))?;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755)).ctx(|| "chmod envd".into())?;
        std::fs::rename(&tmp, &dst).ctx(|| format!("rename to {}", dst.display()))?;
    }
    Ok(dst)
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), RuntimeError> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp).ctx(|| format!("create {}", tmp.display()))?;
    f.write_all(bytes).and_then(|()| f.sync_all()).ctx(|| format!("write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).ctx(|| format!("rename to {}", path.display()))?;
    sync::fsync_dir(path.parent().expect("has a parent"))
}

fn dir_size(dir: &Path) -> u64 {
    walkdir::WalkDir::new(dir).into_iter().flatten().filter_map(|e| e.metadata().ok()).filter(|m| m.is_file()).map(|m| m.len()).sum()
}

fn chown_tree(dir: &Path, uid: u32) -> Result<(), RuntimeError> {
    for entry in walkdir::WalkDir::new(dir) {
        let entry = entry.map_err(|e| RuntimeError::io(format!("walk {}", dir.display()), e.into()))?;
        std::os::unix::fs::lchown(entry.path(), Some(uid), Some(uid)).ctx(|| format!("chown {}", entry.path().display()))?;
    }
    Ok(())
}

/// How long resume and kill wait for an operation under way (a parked sandbox's dump).
const OP_WAIT: Duration = Duration::from_secs(120);

/// Held by `flock(1)` around every runc create, checkpoint and restore of a sandbox.
const OP_LOCK: &str = "op.lock";

/// Wait (bounded) until no runc operation holds `lock`.
async fn wait_for_op_lock(lock: &Path) {
    if !lock.exists() {
        return;
    }
    let lock = lock.to_owned();
    let _ = tokio::task::spawn_blocking(move || {
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        while std::time::Instant::now() < deadline {
            let Ok(file) = std::fs::File::open(&lock) else { return };
            match nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock) {
                Ok(_held) => return,
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
        tracing::warn!(lock = %lock.display(), "an operation of the previous process is still running; going on");
    })
    .await;
}

/// CRIU's own word that a dump in `partial` completed.
fn dump_succeeded(partial: &Path) -> bool {
    partial.join("images").is_dir()
        && std::fs::read_to_string(partial.join("work/dump.log")).is_ok_and(|log| log.contains("Dumping finished successfully"))
}

/// Make a complete dump in `checkpoint.partial` durable and put it in place as `checkpoint`.
fn persist_checkpoint(dir: &Path, record: &SandboxRecord, id_map: IdMap, sync_now: bool) -> Result<(), RuntimeError> {
    let partial = dir.join("checkpoint.partial");
    let manifest = CheckpointManifest {
        sandbox_id: record.id.clone(),
        template: record.template.clone(),
        template_rootfs: record.template_rootfs.clone(),
        envd_binary: record.envd_binary.clone(),
        limits: record.limits.clone(),
        id_map,
        paused_at_ms: now_ms(),
        image_bytes: dir_size(&partial.join("images")),
    };
    std::fs::write(partial.join("manifest.json"), manifest.to_bytes()).ctx(|| "write manifest".into())?;
    std::fs::rename(&partial, dir.join("checkpoint")).ctx(|| "rename checkpoint into place".into())?;
    if sync_now {
        make_durable(dir)?;
    }
    Ok(())
}

/// Written into `checkpoint/` once its images, the upper dir and the rename are on disk.
const DURABLE_MARK: &str = "durable";

/// Flush a paused sandbox's checkpoint and upper dir to disk and mark the checkpoint durable.
/// Until then they live in the page cache: they survive a crash of this process, not of the host.
fn make_durable(dir: &Path) -> Result<(), RuntimeError> {
    let checkpoint = dir.join("checkpoint");
    sync::fsync_tree(&checkpoint)?;
    sync::syncfs(&dir.join("upper"))?;
    sync::fsync_dir(dir)?;
    let mark = checkpoint.join(DURABLE_MARK);
    std::fs::File::create(&mark).and_then(|f| f.sync_all()).ctx(|| format!("create {}", mark.display()))?;
    sync::fsync_dir(&checkpoint)
}

/// [`make_durable`] off the pause's path. Losing the race with a resume or a kill (the checkpoint
/// is gone) is fine; any other failure is logged.
fn make_durable_in_background(id: SandboxId, dir: PathBuf) {
    tokio::task::spawn_blocking(move || {
        let started = std::time::Instant::now();
        match make_durable(&dir) {
            Ok(()) => tracing::debug!(%id, ms = started.elapsed().as_millis(), "checkpoint is durable"),
            Err(e) if dir.join("checkpoint/manifest.json").exists() => {
                tracing::error!(%id, %e, "could not flush a paused sandbox's checkpoint to disk; it survives a server crash but not a host crash")
            }
            Err(_) => {}
        }
    });
}

#[async_trait]
impl Runtime for RuncRuntime {
    async fn create(&self, id: &SandboxId, spec: SandboxSpec) -> Result<(), RuntimeError> {
        spec.limits.validate()?;
        // A new sandbox may need the memory of those paused in memory.
        self.relieve_memory();
        spec.network.validate()?;
        self.templates.recipe(&spec.template)?;
        let dir = self.sandbox_dir(id);
        let slot = self.slot(id);
        let _op = slot.op.try_write().map_err(|_| RuntimeError::Busy(id.clone()))?;
        match std::fs::create_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Err(RuntimeError::AlreadyExists(id.clone())),
            Err(e) => return Err(RuntimeError::io(format!("create {}", dir.display()), e)),
        }
        if let Err(err) = self.create_inner(id, &spec, &dir).await {
            if let Err(cleanup) = self.remove_everything(id, &dir).await {
                tracing::error!(%id, %cleanup, "cleanup after failed create failed");
            }
            self.slots.lock().expect("slots lock").remove(id);
            return Err(err);
        }
        tracing::info!(%id, template = %spec.template, "sandbox created");
        Ok(())
    }

    async fn stats(&self, id: &SandboxId) -> Result<SandboxStats, RuntimeError> {
        if self.live(id).is_none() {
            self.read_record(id)?;
            return Err(RuntimeError::NotRunning(id.clone()));
        }
        let upper = self.sandbox_dir(id).join("upper");
        let cg = crate::cgroup::CgroupStats::read(&format!("stasis/{id}"));
        let disk = tokio::task::spawn_blocking(move || dir_size(&upper)).await.expect("disk usage task");
        Ok(SandboxStats {
            cpu_usage_ns: cg.cpu_usage_ns,
            memory_used_bytes: cg.memory_used_bytes,
            memory_cache_bytes: cg.memory_cache_bytes,
            memory_limit_bytes: cg.memory_limit_bytes,
            disk_used_bytes: disk,
        })
    }

    async fn exec(&self, id: &SandboxId, req: ExecRequest) -> Result<ExecOutput, RuntimeError> {
        if req.argv.is_empty() {
            return Err(RuntimeError::InvalidRequest("exec needs a command".into()));
        }
        let slot = self.slot(id);
        let _op = slot.op.try_read().map_err(|_| RuntimeError::Busy(id.clone()))?;
        if self.live(id).is_none() {
            self.read_record(id)?;
            return Err(RuntimeError::NotRunning(id.clone()));
        }
        let env: Vec<(String, String)> = req.env.into_iter().collect();
        let out = self
            .runc
            .exec(id.as_str(), &req.argv, &env, req.cwd.as_deref().unwrap_or("/"), req.user.unwrap_or((0, 0)), req.timeout)
            .await?;
        use std::os::unix::process::ExitStatusExt;
        let exit_code = out.status.code().unwrap_or_else(|| 128 + out.status.signal().unwrap_or(0));
        Ok(ExecOutput { exit_code, stdout: out.stdout, stderr: out.stderr })
    }

    async fn pause(&self, id: &SandboxId) -> Result<(), RuntimeError> {
        let slot = self.slot(id);
        let _op = slot.op.try_write().map_err(|_| RuntimeError::Busy(id.clone()))?;
        let record = self.read_record(id)?;
        let dir = self.sandbox_dir(id);
        match self.status_of(id) {
            SandboxStatus::Running => {}
            SandboxStatus::Paused => return Err(RuntimeError::AlreadyPaused(id.clone())),
            SandboxStatus::Stopped => return Err(RuntimeError::NotRunning(id.clone())),
        }
        if let (Some(after), false) = (self.cfg.park_for, self.cfg.sync_pause) {
            if self.park(id, &slot, after).await? {
                return Ok(());
            }
        }
        let started = std::time::Instant::now();
        let partial = dir.join("checkpoint.partial");
        let _ = std::fs::remove_dir_all(&partial);
        let (images, work) = (partial.join("images"), partial.join("work"));
        for d in [&images, &work] {
            std::fs::create_dir_all(d).ctx(|| format!("create {}", d.display()))?;
        }
        let freezer = freezer_of(id);
        if !freezer.freeze(Duration::from_millis(500)).await {
            // CRIU freezes it itself, only more slowly.
            freezer.thaw();
        }
        let frozen_ms = started.elapsed().as_millis();
        // CRIU kills the processes right after the dump (leaving them running would let them
        // write to the upper dir after their memory was saved, and the two would disagree).
        if let Err(err) = self.runc.checkpoint(id.as_str(), &images, &work, &dir.join(OP_LOCK), false).await {
            freezer.thaw();
            // A failed dump (disk full, an undumpable resource) leaves the processes running.
            let mut detail = format!("{err}; criu: {}", Self::dump_log_tail(&work, "dump.log"));
            let _ = std::fs::remove_dir_all(&partial);
            self.reconnect_after_failed_pause(id, &record, &mut detail).await;
            return Err(RuntimeError::CheckpointFailed { id: id.clone(), detail });
        }
        let dumped_ms = started.elapsed().as_millis();
        let pid = self.detach(id);
        self.runc.delete_force(id.as_str()).await?;
        if let Some(pid) = pid {
            self.reaper.wait_gone(pid).await;
        }
        let deleted_ms = started.elapsed().as_millis();
        // The link died with the namespace (it is made again on resume); the host-side rules go
        // while the images are made durable.
        let (persisted, disconnected) = tokio::join!(
            {
                let (dir, record, id_map, sync_now) = (dir.clone(), record.clone(), self.cfg.id_map, self.cfg.sync_pause);
                async move { tokio::task::spawn_blocking(move || persist_checkpoint(&dir, &record, id_map, sync_now)).await.expect("pause finish task") }
            },
            self.disconnect_network(&record)
        );
        if let Err(e) = disconnected {
            tracing::error!(%id, %e, "could not remove a paused sandbox's egress rules");
        }
        if let Err(err) = persisted {
            // The images are complete but not durable: bring the sandbox back from them, so a
            // failed pause still leaves it running.
            let images = if dir.join("checkpoint").exists() { dir.join("checkpoint/images") } else { images };
            let restored = self.restore_from(id, &record, &images).await;
            let _ = std::fs::remove_dir_all(&partial);
            let _ = std::fs::remove_dir_all(dir.join("checkpoint"));
            return Err(RuntimeError::CheckpointFailed {
                id: id.clone(),
                detail: match restored {
                    Ok(()) => format!("{err}; the sandbox was restored from its images and keeps running"),
                    Err(e) => format!("{err}; restoring it from its images failed too, the sandbox is lost: {e}"),
                },
            });
        }
        let persisted_ms = started.elapsed().as_millis();
        if !self.cfg.sync_pause {
            make_durable_in_background(id.clone(), dir.clone());
        }
        overlay::unmount(&dir.join("bundle/rootfs"))?;
        // Cumulative milliseconds at the end of each step: where a pause spends its time.
        tracing::info!(%id, frozen_ms, dumped_ms, deleted_ms, persisted_ms, total_ms = started.elapsed().as_millis(), "sandbox paused");
        Ok(())
    }

    async fn resume(&self, id: &SandboxId) -> Result<(), RuntimeError> {
        let slot = self.slot(id);
        // A parked sandbox's dump may hold the lock: wait for it, and tell it to keep the
        // sandbox in memory if it finishes meanwhile.
        slot.resume_waiting.store(true, Ordering::SeqCst);
        let op = tokio::time::timeout(OP_WAIT, slot.op.write()).await;
        slot.resume_waiting.store(false, Ordering::SeqCst);
        let _op = op.map_err(|_| RuntimeError::Busy(id.clone()))?;
        let record = self.read_record(id)?;
        if slot.parked.load(Ordering::SeqCst) {
            return self.unpark(id, &slot);
        }
        match self.status_of(id) {
            SandboxStatus::Paused => {}
            _ => return Err(RuntimeError::NotPaused(id.clone())),
        }
        let dir = self.sandbox_dir(id);
        let manifest = CheckpointManifest::load(&dir.join("checkpoint/manifest.json"))?;
        if manifest.sandbox_id != *id || !manifest.template_rootfs.exists() || !manifest.envd_binary.exists() {
            return Err(RuntimeError::BadManifest {
                path: dir.join("checkpoint/manifest.json"),
                detail: "it names another sandbox, or its template or envd binary is gone".into(),
            });
        }
        let started = std::time::Instant::now();
        self.restore_from(id, &record, &dir.join("checkpoint/images")).await?;
        let restored_ms = started.elapsed().as_millis();
        // Deleting a big image takes a while: move it out of the way (the sandbox is running
        // from now on) and delete it in the background; recovery deletes what a crash left.
        let used = dir.join(USED_CHECKPOINT);
        let _ = std::fs::remove_dir_all(&used);
        std::fs::rename(dir.join("checkpoint"), &used).ctx(|| "move the used checkpoint aside".into())?;
        tokio::task::spawn_blocking(move || {
            if let Err(e) = std::fs::remove_dir_all(&used) {
                tracing::warn!(path = %used.display(), %e, "could not remove a used checkpoint");
            }
        });
        tracing::info!(%id, restored_ms, total_ms = started.elapsed().as_millis(), "sandbox resumed");
        Ok(())
    }

    async fn kill(&self, id: &SandboxId) -> Result<(), RuntimeError> {
        let slot = self.slot(id);
        // Waits for a parked sandbox's dump under way.
        let _op = tokio::time::timeout(OP_WAIT, slot.op.write()).await.map_err(|_| RuntimeError::Busy(id.clone()))?;
        let dir = self.sandbox_dir(id);
        if !dir.exists() && self.runc.state(id.as_str()).await?.is_none() {
            self.slots.lock().expect("slots lock").remove(id);
            return Err(RuntimeError::NotFound(id.clone()));
        }
        self.remove_everything(id, &dir).await?;
        self.slots.lock().expect("slots lock").remove(id);
        tracing::info!(%id, "sandbox killed");
        Ok(())
    }

    async fn update_network(&self, id: &SandboxId, policy: EgressPolicy) -> Result<(), RuntimeError> {
        policy.validate()?;
        let slot = self.slot(id);
        // Waits for a pause or resume under way rather than failing: the new rules apply after it.
        let _op = slot.op.write().await;
        let record = self.read_record(id)?;
        let dir = self.sandbox_dir(id);
        let previous = self.read_policy(id)?;
        write_atomic(&dir.join(NETWORK_FILE), &serde_json::to_vec_pretty(&policy).expect("policy serialises"))?;
        // A parked sandbox still has its link: its rules change at once too.
        if let (Some(net), Some(index), true) = (&self.net, record.net_slot, self.live_any(id).is_some()) {
            if let Err(e) = net.apply(index, &policy).await {
                write_atomic(&dir.join(NETWORK_FILE), &serde_json::to_vec_pretty(&previous).expect("policy serialises"))?;
                return Err(e);
            }
        }
        tracing::info!(%id, "sandbox network updated");
        Ok(())
    }

    async fn connect(&self, id: &SandboxId, port: u16) -> Result<TcpStream, RuntimeError> {
        let Some(live) = self.live(id) else {
            self.read_record(id)?;
            return Err(RuntimeError::NotRunning(id.clone()));
        };
        match live.netns.connect(port, Duration::from_secs(5)).await {
            Ok(s) => Ok(s),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => Err(RuntimeError::PortNotOpen(id.clone(), port)),
            Err(e) => Err(RuntimeError::io(format!("connect to port {port} in sandbox {id}"), e)),
        }
    }

    async fn info(&self, id: &SandboxId) -> Result<SandboxInfo, RuntimeError> {
        let record = self.read_record(id)?;
        Ok(SandboxInfo { id: id.clone(), template: record.template, limits: record.limits, status: self.status_of(id) })
    }

    async fn list(&self) -> Result<Vec<SandboxInfo>, RuntimeError> {
        let dir = self.cfg.data_dir.join("sandboxes");
        let mut out = Vec::new();
        for entry in std::fs::read_dir(&dir).ctx(|| format!("read {}", dir.display()))?.flatten() {
            let Ok(id) = SandboxId::parse(&entry.file_name().to_string_lossy()) else { continue };
            match self.info(&id).await {
                Ok(info) => out.push(info),
                Err(RuntimeError::NotFound(_)) => {} // being created or removed right now
                Err(e) => return Err(e),
            }
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }
}
