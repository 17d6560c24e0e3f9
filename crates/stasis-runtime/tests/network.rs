//! Sandbox networking against real runc, CRIU and nftables (root only): egress to the outside,
//! the allow/deny policy, isolation from the host and from other sandboxes, and the host side
//! across pause, resume and kill.

mod common;

use stasis_runtime::{EgressPolicy, ExecOutput, Limits, Runtime, RuncRuntime, SandboxId, SandboxSpec};
use std::path::PathBuf;
use std::time::Duration;

/// A host the machine can reach (a package registry) and a URL on it.
const REGISTRY: &str = "pypi.org";
const URL: &str = "https://pypi.org/simple/six/";

fn data_dir() -> PathBuf {
    let base = std::env::var("STASIS_TEST_DATA_DIR").unwrap_or_else(|_| "/var/lib/stasis-test".into());
    PathBuf::from(format!("{base}-network"))
}

async fn sh(rt: &RuncRuntime, id: &SandboxId, cmd: &str) -> ExecOutput {
    common::sh_within(rt, id, cmd, Duration::from_secs(60)).await
}

async fn sandbox(rt: &RuncRuntime, network: EgressPolicy) -> SandboxId {
    let id = SandboxId::generate();
    let spec = SandboxSpec { template: "base".into(), limits: Limits::default(), env: Default::default(), network };
    rt.create(&id, spec).await.unwrap();
    id
}

/// An HTTPS GET of the registry from inside; "200" when it got through.
async fn fetch(rt: &RuncRuntime, id: &SandboxId) -> String {
    let script = format!(
        "import ssl, urllib.request\n\
         try:\n    print(urllib.request.urlopen('{URL}', timeout=8, context=ssl._create_unverified_context()).status)\n\
         except Exception as e:\n    print('failed:', e)\n"
    );
    let out = sh(rt, id, &format!("python3 -c \"{script}\"")).await;
    format!("{}{}", out.stdout_str().trim(), String::from_utf8_lossy(&out.stderr).trim())
}

/// Whether a TCP connection to addr:port from inside succeeds within 3 s.
async fn reaches(rt: &RuncRuntime, id: &SandboxId, addr: &str, port: u16) -> bool {
    let py = format!("import socket; socket.create_connection(('{addr}', {port}), 3)");
    sh(rt, id, &format!("python3 -c \"{py}\"")).await.exit_code == 0
}

fn host_links(prefix: &str) -> Vec<String> {
    std::fs::read_dir("/sys/class/net")
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(prefix))
        .collect()
}

fn nft_table(table: &str) -> String {
    let out = std::process::Command::new("nft").args(["list", "table", "inet", table]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn registry_nets() -> Vec<String> {
    use std::net::ToSocketAddrs;
    (REGISTRY, 443).to_socket_addrs().unwrap().filter(|a| a.is_ipv4()).map(|a| format!("{}/32", a.ip())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn egress_policy_isolation_and_the_host_side_across_pause_resume_kill() {
    let rt = common::open_runtime(&data_dir(), None).await;
    let net = rt.network().expect("networking is on by default");
    let (table, prefix) = (net.table().to_owned(), net.host_if(0).trim_end_matches('0').to_owned());
    let host_if_of = |index: u32| format!("{prefix}{index}");

    // Internet on by default: DNS and an HTTPS registry work; the sandbox has its address.
    let open = sandbox(&rt, EgressPolicy::default()).await;
    let slot = rt.network_slot(&open).expect("a network slot");
    let addr = sh(&rt, &open, "ip -4 -o addr show eth0").await.stdout_str();
    assert!(addr.contains(&format!("{}/30", slot.sandbox)), "{addr}");
    assert_eq!(fetch(&rt, &open).await, "200", "egress with the internet on");
    // Sockets tied to the network must come back after a pause (checked below): a connected UDP
    // socket (a DNS lookup under way) and a listener on the sandbox's own address. CRIU connects
    // and binds them again before the link is plumbed; without the restore hook this sandbox
    // could never be resumed. (Started before any restore: `runc exec` does not join the time
    // namespace CRIU gives a restored sandbox, and CRIU cannot restore a tree split across two.)
    let held = format!(
        "cat > /tmp/held.py <<'EOF'\n\
         import socket, threading, time\n\
         dns = [l.split()[1] for l in open('/etc/resolv.conf') if l.startswith('nameserver')][0]\n\
         u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.connect((dns, 53))\n\
         t = socket.socket(); t.bind(('{}', 8081)); t.listen()\n\
         while True: t.accept()[0].close()\n\
         EOF\n\
         setsid python3 /tmp/held.py >/tmp/held.log 2>&1 </dev/null & sleep 1",
        slot.sandbox
    );
    sh(&rt, &open, &held).await;
    assert!(reaches(&rt, &open, &slot.sandbox.to_string(), 8081).await, "the listener on the sandbox's address is up");

    // Internet off: nothing gets out, not even DNS.
    let closed = sandbox(&rt, EgressPolicy { internet: false, ..Default::default() }).await;
    assert!(fetch(&rt, &closed).await.starts_with("failed"), "internet off must block egress");
    assert!(!reaches(&rt, &closed, "1.1.1.1", 53).await);

    // allowOut wins over "internet off", by domain name (resolved when applied).
    let allow = EgressPolicy { internet: false, allow_out: vec![REGISTRY.into()], deny_out: vec![] };
    rt.update_network(&closed, allow).await.unwrap();
    assert_eq!(fetch(&rt, &closed).await, "200", "allowOut by name");

    // denyOut blocks just those addresses, on a running sandbox.
    rt.update_network(&open, EgressPolicy { deny_out: registry_nets(), ..Default::default() }).await.unwrap();
    assert!(fetch(&rt, &open).await.starts_with("failed"), "denyOut must block");
    rt.update_network(&open, EgressPolicy::default()).await.unwrap();
    assert_eq!(fetch(&rt, &open).await, "200", "cleared rules let it out again");

    // Never the host, never another sandbox, never link-local (cloud metadata).
    let listener = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    for host_addr in common::host_ipv4_addresses() {
        assert!(!reaches(&rt, &open, &host_addr, port).await, "reached the host at {host_addr}");
    }
    sh(&rt, &closed, "setsid python3 -m http.server 8080 >/dev/null 2>&1 < /dev/null & sleep 1").await;
    let other = rt.network_slot(&closed).unwrap().sandbox.to_string();
    assert!(!reaches(&rt, &open, &other, 8080).await, "reached another sandbox");
    assert!(reaches(&rt, &closed, "127.0.0.1", 8080).await, "the server itself is up");
    assert!(!reaches(&rt, &open, "169.254.169.254", 80).await, "reached link-local");

    // Pause releases the host side; resume brings the same addresses and rules back.
    rt.update_network(&open, EgressPolicy { deny_out: vec!["9.9.9.9".into()], ..Default::default() }).await.unwrap();
    let host_if = host_if_of(slot.index);
    assert!(host_links(&prefix).contains(&host_if));
    rt.pause(&open).await.unwrap();
    assert!(!host_links(&prefix).contains(&host_if), "the host end outlived the pause");
    assert!(!nft_table(&table).contains(&format!("chain sb{} ", slot.index)), "rules outlived the pause");
    rt.resume(&open).await.unwrap();
    assert_eq!(rt.network_slot(&open), Some(slot), "same addresses after resume");
    let addr = sh(&rt, &open, "ip -4 -o addr show eth0; ip route").await.stdout_str();
    assert!(addr.contains(&format!("{}/30", slot.sandbox)) && addr.contains(&format!("default via {}", slot.host)), "{addr}");
    assert!(nft_table(&table).contains("9.9.9.9"), "the policy is back after resume");
    assert_eq!(fetch(&rt, &open).await, "200", "egress after resume");
    assert!(reaches(&rt, &open, &slot.sandbox.to_string(), 8081).await, "the listener on the sandbox's address after resume");
    let lo = sh(&rt, &open, "ip -4 -o addr show lo").await.stdout_str();
    assert!(!lo.contains(&slot.sandbox.to_string()), "the restore hook's address is gone from lo: {lo}");
    assert!(sh(&rt, &open, "pgrep -f held.py").await.exit_code == 0, "the process holding the sockets was restored");

    // A policy changed while paused applies at resume.
    rt.pause(&closed).await.unwrap();
    rt.update_network(&closed, EgressPolicy { internet: false, ..Default::default() }).await.unwrap();
    rt.resume(&closed).await.unwrap();
    assert!(fetch(&rt, &closed).await.starts_with("failed"), "the update made while paused applies");

    // Bad policies are refused with a clear error and change nothing.
    let err = rt.update_network(&open, EgressPolicy { deny_out: vec!["pypi.org".into()], ..Default::default() }).await.unwrap_err();
    assert!(err.to_string().contains("deny rules"), "{err}");
    let err = rt.update_network(&open, EgressPolicy { allow_out: vec!["no-such-name.invalid".into()], ..Default::default() }).await.unwrap_err();
    assert!(err.to_string().contains("does not resolve"), "{err}");
    assert!(nft_table(&table).contains("9.9.9.9"), "a refused update changed the rules");

    // A restarted runtime rebuilds its table and keeps running sandboxes connected (the link is
    // completed in place, not recreated) and paused ones' addresses.
    rt.pause(&closed).await.unwrap();
    let before = sh(&rt, &open, "cat /sys/class/net/eth0/ifindex").await.stdout_str();
    let paused_slot = rt.network_slot(&closed).expect("a paused sandbox keeps its slot");
    drop(rt);
    let rt = RuncRuntime::new(common::config(&data_dir())).await.expect("reopen the runtime");
    assert_eq!(sh(&rt, &open, "cat /sys/class/net/eth0/ifindex").await.stdout_str(), before, "eth0 was recreated by the restart");
    assert!(nft_table(&table).contains("9.9.9.9"), "the running sandbox's rules are back after the restart");
    assert_eq!(fetch(&rt, &open).await, "200", "egress after a restart");
    assert_eq!(rt.network_slot(&closed), Some(paused_slot), "a paused sandbox keeps its address across a restart");
    rt.resume(&closed).await.unwrap();
    rt.pause(&closed).await.unwrap();

    // Kill (running and paused) leaves no link, rule or lease.
    for id in [&open, &closed] {
        rt.kill(id).await.unwrap();
    }
    assert_eq!(host_links(&prefix), Vec::<String>::new(), "links left after kill");
    assert!(!nft_table(&table).contains("chain sb"), "rules left after kill: {}", nft_table(&table));
    let leases = std::fs::read_dir("/run/stasis/net/10.234.0.0-16").unwrap().flatten().filter(|e| {
        std::fs::read(e.path()).is_ok_and(|b| b.starts_with(data_dir().as_os_str().as_encoded_bytes()))
    });
    assert_eq!(leases.count(), 0, "address leases left after kill");
}
