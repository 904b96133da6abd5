//! Test support: temp dirs and a real Go `containerd-shim` served on an inherited fd 3, killed on drop.
#![allow(dead_code)]

use std::os::fd::AsRawFd;
use std::os::unix::net::UnixListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use shim_proto::shim::ShimClient;

pub const GO_SHIM: &str = "/usr/bin/containerd-shim";

/// Why the Go shim cannot be run here, if it cannot (`trials` ignores the tests needing it,
/// or fails them under `SHIM_REQUIRE_ROOT_TESTS=1`).
pub fn go_shim_missing() -> Option<String> {
    (!Path::new(GO_SHIM).exists()).then(|| format!("{GO_SHIM} is not installed"))
}

/// A directory removed (recursively) on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "shim-proto-{tag}-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let path = std::env::temp_dir().join(name);
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running Go shim, started as containerd starts it: listening socket on fd 3, cwd = bundle.
/// Dropping it SIGKILLs and reaps the shim.
pub struct GoShim {
    child: Child,
    socket: PathBuf,
}

impl GoShim {
    /// Spawns `shim` with `-namespace ns -workdir workdir -address <workdir>/nonexistent.sock
    /// -containerd-binary containerd_binary` plus `extra` args, in `bundle`.
    /// The listening socket is `<workdir>/shim.sock`.
    pub fn spawn(
        shim: &Path,
        ns: &str,
        workdir: &Path,
        bundle: &Path,
        containerd_binary: &Path,
        extra: &[&str],
    ) -> GoShim {
        let socket = workdir.join("shim.sock");
        let listener = UnixListener::bind(&socket).unwrap();
        let fd = listener.as_raw_fd();
        let mut cmd = Command::new(shim);
        cmd.arg("-namespace")
            .arg(ns)
            .arg("-workdir")
            .arg(workdir)
            .arg("-address")
            .arg(workdir.join("nonexistent.sock"))
            .arg("-containerd-binary")
            .arg(containerd_binary)
            .args(extra)
            .current_dir(bundle)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // SAFETY: only async-signal-safe calls (dup2, fcntl) between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                if fd == 3 {
                    // dup2 onto itself keeps FD_CLOEXEC: clear it explicitly.
                    if libc::fcntl(3, libc::F_SETFD, 0) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                } else if libc::dup2(fd, 3) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().unwrap();
        // The shim holds its own copy of the listener now; ours closes here.
        drop(listener);
        GoShim { child, socket }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    pub fn connect(&self) -> ttrpc::Client {
        ttrpc::Client::connect(&format!("unix://{}", self.socket.display())).unwrap()
    }

    pub fn client(&self) -> ShimClient {
        ShimClient::new(self.connect())
    }
}

impl Drop for GoShim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A ttrpc context with a 10 s deadline (a hung shim fails the test instead of hanging it).
pub fn ctx() -> ttrpc::context::Context {
    ttrpc::context::with_timeout(10_000_000_000)
}

/// Parses a golden fixture: hex digits, whitespace ignored, `#` starts a comment line.
pub fn read_hex(path: &Path) -> Vec<u8> {
    let text = std::fs::read_to_string(path).unwrap();
    let digits: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .flat_map(|l| l.chars())
        .filter(|c| !c.is_whitespace())
        .collect();
    assert!(
        digits.len() % 2 == 0,
        "odd hex length in {}",
        path.display()
    );
    (0..digits.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&digits[i..i + 2], 16).unwrap())
        .collect()
}

/// `Err` (saying how) unless `m` encodes, decodes back equal, and re-encodes to the same bytes.
pub fn round_trip<M: prost::Message + Default + PartialEq + std::fmt::Debug>(
    m: &M,
) -> Result<(), String> {
    let bytes = m.encode_to_vec();
    if bytes.is_empty() && *m != M::default() {
        return Err("non-default message encoded to nothing".to_string());
    }
    let back = M::decode(bytes.as_slice()).map_err(|e| format!("decode: {e}"))?;
    if &back != m {
        return Err(format!("decoded {back:?} != original {m:?}"));
    }
    if back.encode_to_vec() != bytes {
        return Err("re-encoding changed the bytes".to_string());
    }
    Ok(())
}

/// Names of the failed `(name, result)` rows with their errors, one per line; empty if none failed.
pub fn failures(results: &[(&str, Result<(), String>)]) -> String {
    results
        .iter()
        .filter_map(|(name, r)| r.as_ref().err().map(|e| format!("{name}: {e}\n")))
        .collect()
}

/// Hex of `bytes`, 32 bytes a line.
pub fn to_hex(bytes: &[u8]) -> String {
    let mut out = String::new();
    for chunk in bytes.chunks(32) {
        for b in chunk {
            out.push_str(&format!("{b:02x}"));
        }
        out.push('\n');
    }
    out
}

pub const RUNC: &str = "/usr/sbin/runc";
pub const BUSYBOX: &str = "/usr/bin/busybox";

/// Why a real container cannot run here (not root, no runc or busybox), if it cannot.
pub fn containers_missing() -> Option<String> {
    if nix::unistd::geteuid().as_raw() != 0 {
        return Some("not root".to_string());
    }
    [RUNC, BUSYBOX]
        .iter()
        .find(|p| !Path::new(p).exists())
        .map(|p| format!("{p} is missing"))
}

/// Writes an OCI bundle running `busybox sleep 3600` from a rootfs holding only busybox.
pub fn make_busybox_bundle(bundle: &Path, cgroups_path: &str) {
    let bin = bundle.join("rootfs/bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::copy(BUSYBOX, bin.join("busybox")).unwrap();
    let status = Command::new(RUNC)
        .arg("spec")
        .current_dir(bundle)
        .status()
        .unwrap();
    assert!(status.success(), "runc spec: {status}");
    let path = bundle.join("config.json");
    let mut spec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    spec["process"]["terminal"] = false.into();
    spec["process"]["args"] = serde_json::json!(["/bin/busybox", "sleep", "3600"]);
    spec["linux"]["cgroupsPath"] = cgroups_path.into();
    std::fs::write(&path, serde_json::to_vec_pretty(&spec).unwrap()).unwrap();
}

/// Force-deletes a runc container on drop (cleanup when a test stops half-way).
pub struct ContainerGuard {
    root: PathBuf,
    id: String,
}

impl ContainerGuard {
    pub fn new(root: PathBuf, id: &str) -> ContainerGuard {
        ContainerGuard {
            root,
            id: id.to_string(),
        }
    }
}

impl Drop for ContainerGuard {
    fn drop(&mut self) {
        let _ = Command::new(RUNC)
            .arg("--root")
            .arg(&self.root)
            .args(["delete", "--force", &self.id])
            .stderr(Stdio::null())
            .status();
    }
}
