//! The default seccomp profile: allow by default, deny what a sandbox must never do.
//!
//! A deny list (not Docker's allow list) because sandboxes run arbitrary agent code and E2B gives
//! them a full VM; what is denied is what would reach beyond the sandbox, or what CRIU cannot
//! checkpoint (io_uring, nested namespaces), which would turn every later pause into a failure.

use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompArgBuilder, LinuxSeccompBuilder, LinuxSeccompOperator,
    LinuxSyscall, LinuxSyscallBuilder,
};

/// Denied with EPERM: privileged or host-reaching calls.
const DENIED_EPERM: &[&str] = &[
    "acct", "add_key", "bpf", "clock_adjtime", "clock_settime", "create_module", "delete_module",
    "finit_module", "fsconfig", "fsmount", "fsopen", "fspick", "get_kernel_syms", "init_module",
    "ioperm", "iopl", "kexec_file_load", "kexec_load", "keyctl", "lookup_dcookie", "mount",
    "mount_setattr", "move_mount", "nfsservctl", "open_by_handle_at", "open_tree", "perf_event_open",
    "pivot_root", "quotactl", "quotactl_fd", "reboot", "request_key", "setns", "settimeofday",
    "stime", "swapoff", "swapon", "syslog", "umount", "umount2", "unshare", "uselib", "userfaultfd",
    "vm86", "vm86old", "adjtimex",
];

/// Denied with ENOSYS so that programs fall back to what CRIU can checkpoint (libuv, tokio-uring
/// and glibc all treat ENOSYS as "not available").
const DENIED_ENOSYS: &[&str] = &["io_uring_setup", "io_uring_enter", "io_uring_register", "clone3"];

/// `clone` flags that would create nested namespaces.
const CLONE_NS_FLAGS: &[u64] = &[
    libc::CLONE_NEWNS as u64,
    libc::CLONE_NEWUTS as u64,
    libc::CLONE_NEWIPC as u64,
    libc::CLONE_NEWUSER as u64,
    libc::CLONE_NEWPID as u64,
    libc::CLONE_NEWNET as u64,
    libc::CLONE_NEWCGROUP as u64,
];

fn rule(names: &[&str], errno: i32, args: Option<Vec<LinuxSeccompArg>>) -> LinuxSyscall {
    let mut b = LinuxSyscallBuilder::default()
        .names(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .action(LinuxSeccompAction::ScmpActErrno)
        .errno_ret(errno as u32);
    if let Some(args) = args {
        b = b.args(args);
    }
    b.build().expect("all syscall rule fields are set")
}

pub fn default_profile() -> LinuxSeccomp {
    let mut syscalls = vec![rule(DENIED_EPERM, libc::EPERM, None), rule(DENIED_ENOSYS, libc::ENOSYS, None)];
    // One rule per flag: a rule's arguments are AND-ed, and we want any one flag to deny.
    for &flag in CLONE_NS_FLAGS {
        let arg = LinuxSeccompArgBuilder::default()
            .index(0usize)
            .value(flag)
            .value_two(flag)
            .op(LinuxSeccompOperator::ScmpCmpMaskedEq)
            .build()
            .expect("all arg fields are set");
        syscalls.push(rule(&["clone"], libc::EPERM, Some(vec![arg])));
    }
    LinuxSeccompBuilder::default()
        .default_action(LinuxSeccompAction::ScmpActAllow)
        .architectures(vec![Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32])
        .syscalls(syscalls)
        .build()
        .expect("all seccomp fields are set")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_denies_the_documented_calls() {
        let p = default_profile();
        let denied: Vec<String> = p.syscalls().as_ref().unwrap().iter().flat_map(|s| s.names().clone()).collect();
        for name in ["mount", "kexec_load", "bpf", "perf_event_open", "keyctl", "io_uring_setup", "unshare"] {
            assert!(denied.iter().any(|d| d == name), "{name} is not denied");
        }
        assert_eq!(p.default_action(), LinuxSeccompAction::ScmpActAllow);
    }
}
