//! `spawn`: start a shim for a bundle the way containerd does (listening socket on fd 3, address file).
//!
//! Choices, for the operator reading this at 3 a.m.:
//! - Detaching: the shim is started with `setsid()` and never waited for. shim-ctl exits right
//!   after, so the shim is re-parented to the nearest subreaper (or init) and outlives us; its pid
//!   stays the one in `shim.pid` (a double fork would need the grandchild's pid passed back, for
//!   nothing more). `setsid` also makes it a process-group leader (what containerd's `setpgid`
//!   achieves) and detaches it from our terminal, so closing the terminal cannot SIGHUP it.
//! - Logs: like containerd we create `<workdir>/shim.stdout.log` and `shim.stderr.log` as fifos.
//!   The shim opens them O_RDWR itself, so it never gets EPIPE with no reader; we hand the same
//!   fifos (opened O_RDWR) to it as stdout/stderr instead of pipes, so a panic message lands there
//!   too. Nobody drains them: `cat <workdir>/shim.stdout.log` follows the log live. A shim that
//!   writes more than a pipe buffer (64 KiB) with no reader blocks (Go) or drops lines (ours).
//! - Socket: `<bundle>/shim.sock`, or `/run/shim-ctl/<fnv64 of bundle>.sock` when that path does
//!   not fit `sun_path` (108 bytes with the NUL). A stale socket nobody answers on is replaced.

use crate::cli::SpawnArgs;
use crate::error::UsageError;
use anyhow::Context as _;
use std::fs::OpenOptions;
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// Longest socket path that fits `sockaddr_un.sun_path` with its terminating NUL.
const SUN_PATH_MAX: usize = 107;
/// Where sockets of bundles with long paths go.
const SHORT_SOCKET_DIR: &str = "/run/shim-ctl";
/// Our shim's binary name.
const SHIM_NAME: &str = "shim-runc-v1";

/// A started shim.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Spawned {
    pub address: String,
    pub pid: u32,
    pub socket: PathBuf,
    pub workdir: PathBuf,
    pub shim: PathBuf,
}

/// 64-bit FNV-1a: a stable short name for a long bundle path.
fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// `<bundle>/shim.sock`, or the short fallback when that is too long for a unix socket.
pub fn socket_path(bundle: &Path) -> PathBuf {
    let preferred = bundle.join("shim.sock");
    if preferred.as_os_str().len() <= SUN_PATH_MAX {
        return preferred;
    }
    use std::os::unix::ffi::OsStrExt;
    Path::new(SHORT_SOCKET_DIR).join(format!(
        "{:016x}.sock",
        fnv1a64(bundle.as_os_str().as_bytes())
    ))
}

/// The shim binary: `--shim`, else `shim-runc-v1` next to our executable, else on PATH.
pub fn find_shim(explicit: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(p) = explicit {
        return Ok(p.to_path_buf());
    }
    if let Some(beside) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(|d| d.join(SHIM_NAME)))
    {
        if beside.is_file() {
            return Ok(beside);
        }
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|d| d.join(SHIM_NAME))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            let why = format!("{SHIM_NAME} not found next to shim-ctl or on PATH (use --shim)");
            io::Error::new(io::ErrorKind::NotFound, why).into()
        })
}

/// Binds the socket, replacing a stale one that nobody answers on.
fn listen(path: &Path) -> anyhow::Result<UnixListener> {
    if let Some(dir) = path.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    let listener = match UnixListener::bind(path) {
        Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
            if UnixStream::connect(path).is_ok() {
                let why = format!("a shim already listens on {}", path.display());
                return Err(io::Error::new(io::ErrorKind::AddrInUse, why).into());
            }
            std::fs::remove_file(path)
                .with_context(|| format!("removing stale {}", path.display()))?;
            UnixListener::bind(path)
        }
        other => other,
    }
    .with_context(|| format!("listening on {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

/// Makes a fifo unless something already exists at `path` (containerd: mkfifo 0700).
fn ensure_fifo(path: &Path) -> anyhow::Result<()> {
    match nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(0o700)) {
        Ok(()) | Err(nix::errno::Errno::EEXIST) => Ok(()),
        Err(e) => Err(io::Error::from(e)).with_context(|| format!("mkfifo {}", path.display())),
    }
}

/// Writes `<dir>/<name>` atomically as containerd does: `.<name>` O_EXCL|O_SYNC 0666, then rename.
pub fn write_atomic(dir: &Path, name: &str, content: &str) -> anyhow::Result<()> {
    let tmp = dir.join(format!(".{name}"));
    let _ = std::fs::remove_file(&tmp);
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o666)
        .custom_flags(libc::O_SYNC)
        .open(&tmp)
        .with_context(|| format!("creating {}", tmp.display()))?;
    f.write_all(content.as_bytes())?;
    drop(f);
    std::fs::rename(&tmp, dir.join(name)).with_context(|| format!("renaming {}", tmp.display()))?;
    Ok(())
}

fn shim_command(
    args: &SpawnArgs,
    shim: &Path,
    bundle: &Path,
    workdir: &Path,
    listener: &UnixListener,
) -> anyhow::Result<Command> {
    let fifo = |name: &str| -> anyhow::Result<std::fs::File> {
        let p = workdir.join(name);
        ensure_fifo(&p)?;
        OpenOptions::new()
            .read(true)
            .write(true)
            .open(&p)
            .with_context(|| format!("opening {}", p.display()))
    };
    let mut cmd = Command::new(shim);
    cmd.arg("-namespace").arg(&args.namespace);
    cmd.arg("-workdir").arg(workdir);
    cmd.arg("-address").arg(&args.containerd_address);
    cmd.arg("-containerd-binary").arg(&args.publish_binary);
    if let Some(root) = &args.runtime_root {
        cmd.arg("-runtime-root").arg(root);
    }
    if args.debug {
        cmd.arg("-debug");
    }
    cmd.current_dir(bundle)
        .stdin(Stdio::null())
        .stdout(fifo("shim.stdout.log")?)
        .stderr(fifo("shim.stderr.log")?);
    let listen_fd = listener.as_raw_fd();
    // SAFETY: only async-signal-safe calls (setsid, dup2, fcntl) between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setsid() < 0 {
                return Err(io::Error::last_os_error());
            }
            if listen_fd == 3 {
                // Already in place: just let it survive exec.
                if libc::fcntl(3, libc::F_SETFD, 0) < 0 {
                    return Err(io::Error::last_os_error());
                }
            } else if libc::dup2(listen_fd, 3) < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    Ok(cmd)
}

/// Starts the shim; the caller then verifies it answers (see [`abandon`] on failure).
pub fn spawn(args: &SpawnArgs) -> anyhow::Result<(Spawned, Child)> {
    let bundle = std::fs::canonicalize(&args.bundle)
        .map_err(|e| UsageError(format!("bundle {}: {e}", args.bundle.display())))?;
    if !bundle.join("config.json").is_file() {
        return Err(UsageError(format!("{} has no config.json", bundle.display())).into());
    }
    let shim = find_shim(args.shim.as_deref())?;
    let workdir = match &args.workdir {
        Some(w) => w.clone(),
        None => bundle.join("work"),
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o711)
        .create(&workdir)
        .with_context(|| format!("creating {}", workdir.display()))?;
    let socket = socket_path(&bundle);
    let listener = listen(&socket)?;
    let child = shim_command(args, &shim, &bundle, &workdir, &listener)?
        .spawn()
        .with_context(|| format!("starting {}", shim.display()))?;
    // containerd keeps its listener until the shim exits; we close ours now so a dead shim
    // shows up as "connection refused" instead of a hang.
    drop(listener);
    let address = format!("unix://{}", socket.display());
    let pid = child.id();
    write_atomic(&bundle, "address", &address)?;
    write_atomic(&bundle, "shim.pid", &pid.to_string())?;
    Ok((
        Spawned {
            address,
            pid,
            socket,
            workdir,
            shim,
        },
        child,
    ))
}

/// Undoes a spawn whose shim does not answer: kill it, reap it, remove what we wrote.
/// Returns how the shim ended, for the error message.
pub fn abandon(spawned: &Spawned, mut child: Child, bundle: &Path) -> String {
    let how = match child.try_wait() {
        Ok(Some(status)) => format!("shim exited: {status}"),
        _ => {
            let _ = child.kill();
            let _ = child.wait();
            "shim did not answer; killed it".to_string()
        }
    };
    let _ = std::fs::remove_file(bundle.join("address"));
    let _ = std::fs::remove_file(bundle.join("shim.pid"));
    let _ = std::fs::remove_file(&spawned.socket);
    how
}

/// How long a fresh shim may take to answer its first ShimInfo.
const FIRST_ANSWER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// `spawn`: start the shim, check that it answers, print its address and pid.
pub fn run(args: &SpawnArgs, json: bool) -> anyhow::Result<i32> {
    let (spawned, child) = spawn(args)?;
    let bundle = std::fs::canonicalize(&args.bundle)?;
    let answered = crate::connect::dial(&spawned.address)
        .map_err(crate::error::RpcError::transport)
        .map(|c| {
            crate::client::Shim::from_client(
                c,
                crate::client::Protocol::V1,
                Some(FIRST_ANSWER_TIMEOUT),
            )
        })
        .and_then(|shim| shim.shim_pid(""));
    match answered {
        Ok(pid) if pid == spawned.pid => {}
        Ok(pid) => eprintln!(
            "shim-ctl: warning: shim reports pid {pid}, we started {}",
            spawned.pid
        ),
        Err(e) => {
            let how = abandon(&spawned, child, &bundle);
            let what = format!("shim {} did not answer ({how})", spawned.shim.display());
            return Err(anyhow::Error::new(e).context(what));
        }
    }
    // Deliberately not waited for: see the module comment.
    drop(child);
    if json {
        crate::output::print_json(&spawned)?;
    } else {
        crate::output::print_text(&crate::output::key_values(&[
            ("ADDRESS", spawned.address.clone()),
            ("PID", spawned.pid.to_string()),
            ("WORKDIR", spawned.workdir.display().to_string()),
        ]))?;
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_bundles_get_a_socket_inside_long_ones_a_hashed_one() {
        assert_eq!(
            socket_path(Path::new("/tmp/b")),
            PathBuf::from("/tmp/b/shim.sock")
        );
        let long = PathBuf::from(format!("/tmp/{}", "x".repeat(120)));
        let p = socket_path(&long);
        assert!(p.starts_with(SHORT_SOCKET_DIR));
        assert!(p.as_os_str().len() <= SUN_PATH_MAX);
        assert_eq!(p, socket_path(&long));
    }

    #[test]
    fn atomic_write_leaves_exact_content_and_no_temp_file() {
        let dir = std::env::temp_dir().join(format!("shim-ctl-spawn-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        write_atomic(&dir, "address", "unix:///x").unwrap();
        write_atomic(&dir, "address", "unix:///y").unwrap();
        let content = std::fs::read_to_string(dir.join("address")).unwrap();
        let tmp_left = dir.join(".address").exists();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(content, "unix:///y");
        assert!(!tmp_left);
    }
}
