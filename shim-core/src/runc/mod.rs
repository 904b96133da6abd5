//! Runc: a typed command builder with one method per runc command (contract 6.1 argv).

pub mod command;
pub mod error;

use std::ffi::OsString;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub use command::RuncStdio;
pub use error::{RuncError, RuncOp};

use command::{Call, Failure, Output};

/// How runc is invoked: binary, global flags, and the bound on every call.
#[derive(Debug, Clone)]
pub struct RuncConfig {
    /// "runc" or CreateTaskRequest.runtime.
    pub binary: PathBuf,
    /// `<runtime-root>/<ns>`.
    pub root: PathBuf,
    /// `<bundle>/log.json`.
    pub log: PathBuf,
    pub criu: Option<PathBuf>,
    pub systemd_cgroup: bool,
    /// Bound for every call; runc is killed after it.
    pub timeout: Duration,
}

#[derive(Debug, Clone, Default)]
pub struct CreateOpts {
    pub pid_file: PathBuf,
    pub console_socket: Option<PathBuf>,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
}

#[derive(Debug, Clone, Default)]
pub struct ExecOpts {
    pub pid_file: PathBuf,
    pub console_socket: Option<PathBuf>,
}

#[derive(Debug, Clone, Default)]
pub struct CheckpointOpts {
    pub image_path: PathBuf,
    pub work_path: PathBuf,
    pub exit: bool,
    pub open_tcp: bool,
    pub external_unix_sockets: bool,
    pub terminal: bool,
    pub file_locks: bool,
    pub empty_namespaces: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub struct RestoreOpts {
    pub image_path: PathBuf,
    pub work_path: PathBuf,
    pub parent_path: Option<PathBuf>,
    pub pid_file: PathBuf,
    pub console_socket: Option<PathBuf>,
    pub no_pivot: bool,
}

/// The runc of one container. Cheap to clone; every method blocks until runc exits (or is killed
/// at the configured timeout).
#[derive(Clone)]
pub struct Runc {
    cfg: Arc<RuncConfig>,
    /// `cfg.binary` found on PATH once, so no call searches PATH again (one execve per PATH
    /// entry, in the forked child). Messages keep naming `cfg.binary`, as Go's do.
    program: PathBuf,
    reaper: reaper::Reaper,
}

/// Where `binary` is: itself if it names a path, else its first executable match on PATH (or
/// itself, left for the spawn to report as missing).
fn find_on_path(binary: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    if binary.components().count() != 1 || binary.is_absolute() {
        return binary.to_path_buf();
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(binary))
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
        .unwrap_or_else(|| binary.to_path_buf())
}

/// Builds an argv from strings and paths.
#[derive(Default)]
struct Args(Vec<OsString>);

impl Args {
    fn arg(mut self, a: impl Into<OsString>) -> Self {
        self.0.push(a.into());
        self
    }
    fn flag(self, on: bool, name: &str) -> Self {
        if on {
            self.arg(name)
        } else {
            self
        }
    }
    fn opt(self, name: &str, value: Option<&Path>) -> Self {
        match value {
            Some(v) => self.arg(name).arg(v),
            None => self,
        }
    }
    /// Like go-runc: a path flag is given only when the path is not empty.
    fn path(self, name: &str, value: &Path) -> Self {
        self.opt(name, Some(value).filter(|p| !p.as_os_str().is_empty()))
    }
}

impl Runc {
    pub fn new(cfg: RuncConfig, reaper: reaper::Reaper) -> Runc {
        Runc {
            program: find_on_path(&cfg.binary),
            cfg: Arc::new(cfg),
            reaper,
        }
    }

    /// `create --bundle B --pid-file P [--console-socket S] [--no-pivot] [--no-new-keyring] <id>`.
    pub fn create(
        &self,
        id: &str,
        bundle: &Path,
        opts: &CreateOpts,
        stdio: RuncStdio,
    ) -> Result<(), RuncError> {
        let args = Args::default()
            .arg("create")
            .arg("--bundle")
            .arg(bundle)
            .path("--pid-file", &opts.pid_file)
            .opt("--console-socket", opts.console_socket.as_deref())
            .flag(opts.no_pivot, "--no-pivot")
            .flag(opts.no_new_keyring, "--no-new-keyring")
            .arg(id);
        self.run(RuncOp::Create, args, stdio, None).map(drop)
    }

    pub fn start(&self, id: &str) -> Result<(), RuncError> {
        self.simple(RuncOp::Start, Args::default().arg("start").arg(id))
    }

    /// Writes the process JSON to `<$XDG_RUNTIME_DIR or tmp>/runc-process<rand>` (0600, removed
    /// afterwards), then `exec --process F [--console-socket S] --detach --pid-file P <id>`.
    pub fn exec(
        &self,
        id: &str,
        process_json: &[u8],
        opts: &ExecOpts,
        stdio: RuncStdio,
    ) -> Result<(), RuncError> {
        let process = ProcessFile::write(process_json).map_err(|e| RuncError {
            op: RuncOp::Exec,
            message: format!("failed to write process file: {e}"),
        })?;
        let args = Args::default()
            .arg("exec")
            .arg("--process")
            .arg(&process.0)
            .opt("--console-socket", opts.console_socket.as_deref())
            .arg("--detach")
            .path("--pid-file", &opts.pid_file)
            .arg(id);
        self.run(RuncOp::Exec, args, stdio, None).map(drop)
    }

    /// `kill [--all] <id> <signum>`.
    pub fn kill(&self, id: &str, signal: u32, all: bool) -> Result<(), RuncError> {
        let args = Args::default()
            .arg("kill")
            .flag(all, "--all")
            .arg(id)
            .arg(signal.to_string());
        self.simple(RuncOp::Kill, args)
    }

    /// `delete [--force] <id>`.
    pub fn delete(&self, id: &str, force: bool) -> Result<(), RuncError> {
        self.simple(
            RuncOp::Delete,
            Args::default().arg("delete").flag(force, "--force").arg(id),
        )
    }

    pub fn pause(&self, id: &str) -> Result<(), RuncError> {
        self.simple(RuncOp::Pause, Args::default().arg("pause").arg(id))
    }

    pub fn resume(&self, id: &str) -> Result<(), RuncError> {
        self.simple(RuncOp::Resume, Args::default().arg("resume").arg(id))
    }

    /// `ps --format json <id>`: the host pids of the container.
    pub fn ps(&self, id: &str) -> Result<Vec<u32>, RuncError> {
        let args = Args::default()
            .arg("ps")
            .arg("--format")
            .arg("json")
            .arg(id);
        let output = self.run(RuncOp::Ps, args, RuncStdio::captured(), None)?;
        let pids: Option<Vec<u32>> =
            serde_json::from_slice(&output.stdout).map_err(|e| RuncError {
                op: RuncOp::Ps,
                message: format!("failed to parse runc ps output: {e}"),
            })?;
        Ok(pids.unwrap_or_default())
    }

    /// `update --resources - <id>` with the LinuxResources JSON on stdin.
    pub fn update(&self, id: &str, resources_json: &[u8]) -> Result<(), RuncError> {
        let args = Args::default()
            .arg("update")
            .arg("--resources")
            .arg("-")
            .arg(id);
        self.run(
            RuncOp::Update,
            args,
            RuncStdio::captured(),
            Some(resources_json),
        )
        .map(drop)
    }

    /// `checkpoint --image-path I --work-path W [--tcp-established] [--ext-unix-sk] [--shell-job]
    /// [--file-locks] [--empty-ns NS]... [--leave-running] <id>`; `--leave-running` unless `exit`.
    pub fn checkpoint(&self, id: &str, opts: &CheckpointOpts) -> Result<(), RuncError> {
        let mut args = Args::default()
            .arg("checkpoint")
            .path("--image-path", &opts.image_path)
            .path("--work-path", &opts.work_path)
            .flag(opts.open_tcp, "--tcp-established")
            .flag(opts.external_unix_sockets, "--ext-unix-sk")
            .flag(opts.terminal, "--shell-job")
            .flag(opts.file_locks, "--file-locks");
        for ns in &opts.empty_namespaces {
            args = args.arg("--empty-ns").arg(ns);
        }
        self.simple(
            RuncOp::Checkpoint,
            args.flag(!opts.exit, "--leave-running").arg(id),
        )
    }

    /// `restore --image-path I --work-path W [--parent-path P] --detach --pid-file F
    /// [--console-socket S] [--no-pivot] -no-subreaper --bundle B <id>` (single-dash as Go sends it).
    pub fn restore(
        &self,
        id: &str,
        bundle: &Path,
        opts: &RestoreOpts,
        stdio: RuncStdio,
    ) -> Result<(), RuncError> {
        let args = Args::default()
            .arg("restore")
            .path("--image-path", &opts.image_path)
            .path("--work-path", &opts.work_path)
            .opt("--parent-path", opts.parent_path.as_deref())
            .arg("--detach")
            .path("--pid-file", &opts.pid_file)
            .opt("--console-socket", opts.console_socket.as_deref())
            .flag(opts.no_pivot, "--no-pivot")
            .arg("-no-subreaper")
            .arg("--bundle")
            .arg(bundle)
            .arg(id);
        self.run(RuncOp::Restore, args, stdio, None).map(drop)
    }

    fn simple(&self, op: RuncOp, args: Args) -> Result<(), RuncError> {
        self.run(op, args, RuncStdio::captured(), None).map(drop)
    }

    /// Global flags, then the command; on failure the message comes from log.json lines written
    /// during this call (for the ops whose Go error does), else go-runc's text.
    fn run(
        &self,
        op: RuncOp,
        args: Args,
        stdio: RuncStdio,
        input: Option<&[u8]>,
    ) -> Result<Output, RuncError> {
        let cfg = &*self.cfg;
        let global = Args::default()
            .arg("--root")
            .arg(&cfg.root)
            .arg("--log")
            .arg(&cfg.log)
            .arg("--log-format")
            .arg("json")
            .opt("--criu", cfg.criu.as_deref())
            .flag(cfg.systemd_cgroup, "--systemd-cgroup");
        let mut argv = global.0;
        argv.extend(args.0);
        let offset = error::log_offset(&cfg.log);
        let call = Call {
            binary: &self.program,
            args: argv,
            stdio,
            input,
            timeout: cfg.timeout,
        };
        command::run(&self.reaper, call).map_err(|failure| RuncError {
            op,
            message: self.message(op, offset, &failure),
        })
    }

    fn message(&self, op: RuncOp, offset: u64, failure: &Failure) -> String {
        let raw = failure.describe(&self.cfg.binary);
        let from_log = !matches!(
            op,
            RuncOp::Kill | RuncOp::Update | RuncOp::Ps | RuncOp::Checkpoint
        );
        if from_log && failure.is_spawn() {
            // runc never ran. Go still reads the log, which then often does not exist yet (a
            // Create): its text says so, and containerd's clients see exactly that.
            return match std::fs::File::open(&self.cfg.log) {
                Ok(_) => raw,
                Err(e) => format!(
                    "unable to retrieve OCI runtime error (open {}: {}): {raw}",
                    self.cfg.log.display(),
                    command::go_error_text(&e)
                ),
            };
        }
        if !from_log || !failure.is_runc_status() {
            return raw;
        }
        match error::last_error_since(&self.cfg.log, offset) {
            Ok(Some(msg)) if !msg.is_empty() => msg,
            Ok(_) => raw,
            Err(e) => format!("unable to retrieve OCI runtime error ({e}): {raw}"),
        }
    }
}

/// The `--process` file of one exec; removed on drop.
struct ProcessFile(PathBuf);

impl ProcessFile {
    fn write(json: &[u8]) -> io::Result<ProcessFile> {
        let dir = temp_dir();
        loop {
            let path = dir.join(format!("runc-process{}", random_u32()?));
            match OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
            {
                Ok(mut file) => {
                    let this = ProcessFile(path);
                    file.write_all(json)?;
                    return Ok(this);
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

impl Drop for ProcessFile {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

/// `$XDG_RUNTIME_DIR` when set, else the system temp dir (Go's `os.CreateTemp(xdg, ..)`).
pub(crate) fn temp_dir() -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => std::env::temp_dir(),
    }
}

fn random_u32() -> io::Result<u32> {
    let mut bytes = [0u8; 4];
    // SAFETY: writes at most 4 bytes into a 4-byte buffer.
    let n = unsafe { libc::getrandom(bytes.as_mut_ptr().cast(), bytes.len(), 0) };
    if n != 4 {
        return Err(io::Error::last_os_error());
    }
    Ok(u32::from_ne_bytes(bytes))
}

#[cfg(test)]
mod tests {
    use super::find_on_path;
    use std::path::Path;

    #[test]
    fn a_bare_name_is_found_on_path_once_and_a_path_is_kept() {
        let found = find_on_path(Path::new("sh"));
        assert!(found.is_absolute(), "{found:?}");
        assert!(found.ends_with("sh"));
        assert_eq!(find_on_path(Path::new("./runc")), Path::new("./runc"));
        assert_eq!(find_on_path(Path::new("/x/runc")), Path::new("/x/runc"));
        assert_eq!(
            find_on_path(Path::new("no-such-runtime-here")),
            Path::new("no-such-runtime-here")
        );
    }
}
