//! `ls`: every container of every shim, v1 and task v2, one table row each (or one per process
//! with `--processes`); unreachable ones included.
//!
//! Where containers are found:
//! - under a state root, in containerd's layouts: `<root>/io.containerd.runtime.v1.linux/<ns>/<id>`
//!   (v1 shims) and `<root>/io.containerd.runtime.v2.task/<ns>/<id>` (task v2 shims; a grouped
//!   shim serves several of them, each with its own bundle and the same `address`);
//! - without `--state-root`: under /run/containerd and also under the state root of every running
//!   shim (its cwd is its bundle, three levels below the root), read through the shim's
//!   `/proc/<pid>/root` when it lives in another mount namespace, plus, as they are, the bundles
//!   of shims started outside containerd's layouts (`shim-ctl spawn`).
//!
//! A socket that is not in our mount namespace is dialed through the `/proc/<pid>/root` of a shim
//! that sees it (see [`crate::procfs`]).

use crate::client::{Proc, ProcessState, Protocol, Shim};
use crate::connect::{dial, layout_protocol, read_address, runtime_dir};
use crate::error::RpcError;
use crate::output::{self, exit_description, status_name, Table};
use crate::procfs::{self, ShimProcess};
use serde::Serialize;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Per-shim bound when the caller gave no `--timeout`: one hung shim must not hang the listing.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);
/// ttrpc's NotFound: what State says of an exec that was deleted.
const NOT_FOUND: i32 = 5;
/// `<name>.pid` files in a bundle that are not an exec's: runc's init, containerd's shim.
const NOT_EXEC_PID_FILES: [&str; 2] = ["init", "shim"];

/// One row of the listing (also its `--json` shape).
#[derive(Debug, Serialize)]
pub struct Entry {
    pub namespace: String,
    pub id: String,
    /// `v1` or `v2`: the API the shim serves.
    pub api: &'static str,
    /// As containerd names it (in the shim's mount namespace).
    pub bundle: PathBuf,
    pub address: Option<String>,
    /// `/proc/<pid>/root` through which the bundle and socket were reached, when the shim lives in
    /// another mount namespace.
    pub proc_root: Option<PathBuf>,
    pub pid: Option<u32>,
    /// `created`, `running`, …, or `unreachable`.
    pub status: String,
    /// The init's exit status, once it is stopped.
    pub exit_status: Option<u32>,
    /// Why the shim could not be asked, when `status` is `unreachable`.
    pub error: Option<String>,
    pub shim_pid: Option<u32>,
    /// With `--processes`: the init, then every exec the shim still knows.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub processes: Option<Vec<Process>>,
}

/// One process of a container, as its shim's State reports it.
#[derive(Debug, Serialize)]
pub struct Process {
    /// The id the shim knows it by: the container id for the init.
    pub id: String,
    /// `None` for the init.
    pub exec_id: Option<String>,
    pub pid: Option<u32>,
    /// `created`, `running`, `stopped`, …, or `error`.
    pub status: String,
    pub exit_status: Option<u32>,
    /// Why State failed, when `status` is `error`.
    pub error: Option<String>,
}

impl Process {
    fn from_state(id: &str, exec_id: Option<String>, s: &ProcessState) -> Process {
        let status = status_name(s.status);
        Process {
            id: id.to_string(),
            exec_id,
            pid: Some(s.pid),
            status: status.to_string(),
            exit_status: (status == "stopped").then_some(s.exit_status),
            error: None,
        }
    }
}

/// A container found on disk, before its shim is asked.
#[derive(Debug, Clone)]
struct Found {
    namespace: String,
    id: String,
    protocol: Protocol,
    /// As the shim names it.
    bundle: PathBuf,
    /// `/proc/<pid>/root` when in another mount namespace.
    root: Option<PathBuf>,
}

impl Found {
    fn local(&self) -> PathBuf {
        procfs::under(self.root.as_deref(), &self.bundle)
    }
}

/// Visible subdirectories of `dir`, sorted by name (dot directories are bundles being deleted).
fn subdirs(dir: &Path) -> std::io::Result<Vec<(String, PathBuf)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with('.') && entry.path().is_dir() {
            out.push((name, entry.path()));
        }
    }
    out.sort();
    Ok(out)
}

fn read_pid(path: &Path) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Identity of a directory (device, inode): the same bundle reached by two paths is listed once.
fn identity(path: &Path) -> Option<(u64, u64)> {
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// Exec ids with a `<bundle>/<exec id>.pid` file, sorted: the pid file runc writes when an exec
/// starts (created-but-never-started execs have none, so they are not found this way).
fn exec_ids(bundle: &Path) -> Vec<String> {
    let Ok(dir) = std::fs::read_dir(bundle) else {
        return Vec::new();
    };
    let mut ids: Vec<String> = dir
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().to_str()?.strip_suffix(".pid")?.to_string();
            let exec = !name.is_empty()
                && !name.starts_with('.')
                && !NOT_EXEC_PID_FILES.contains(&name.as_str());
            exec.then_some(name)
        })
        .collect();
    ids.sort();
    ids
}

/// The container's execs as the shim reports them: those with a pid file and those its Pids
/// names; a pid file left by a deleted exec is skipped.
fn execs(shim: &Shim, id: &str, bundle: &Path) -> Vec<Process> {
    let mut ids = exec_ids(bundle);
    if let Ok(pids) = shim.pids(id) {
        ids.extend(
            pids.into_iter()
                .filter_map(|p| p.exec_id)
                .filter(|e| e != id),
        );
        ids.sort();
        ids.dedup();
    }
    ids.into_iter()
        .filter_map(|exec_id| match shim.state(&Proc::exec(id, &exec_id)) {
            Ok(s) => Some(Process::from_state(&exec_id, Some(exec_id.clone()), &s)),
            Err(RpcError {
                code: Some(NOT_FOUND),
                ..
            }) => None,
            Err(err) => Some(Process {
                id: exec_id.clone(),
                exec_id: Some(exec_id),
                pid: None,
                status: "error".to_string(),
                exit_status: None,
                error: Some(err.describe()),
            }),
        })
        .collect()
}

/// Asks the shim of `found` about its container; `others` are the pids of shims in other mount
/// namespaces, through whose roots a socket not in ours is looked for.
fn probe(found: Found, others: &[u32], timeout: Duration, processes: bool) -> Entry {
    let local = found.local();
    let mut e = Entry {
        namespace: found.namespace.clone(),
        id: found.id.clone(),
        api: found.protocol.name(),
        address: None,
        proc_root: found.root.clone(),
        pid: None,
        status: "unreachable".to_string(),
        exit_status: None,
        error: None,
        shim_pid: read_pid(&local.join("shim.pid")),
        processes: None,
        bundle: found.bundle.clone(),
    };
    let address = match read_address(&local) {
        Ok(a) => a,
        Err(err) => {
            e.error = Some(format!("no address: {}", err.root_cause()));
            return e;
        }
    };
    e.address = Some(address.clone());
    let mut hints: Vec<u32> = found
        .root
        .as_deref()
        .and_then(procfs::pid_of_root)
        .into_iter()
        .collect();
    hints.extend(e.shim_pid);
    let (dialed, via) = match procfs::reach(&address, &hints, || others.to_vec()) {
        Some(reached) => reached,
        None => {
            e.error = Some(format!(
                "connect: no socket at {address} here nor under any shim's /proc/<pid>/root"
            ));
            return e;
        }
    };
    if e.proc_root.is_none() {
        e.proc_root = via.and_then(procfs::foreign_root);
    }
    let shim = match dial(&dialed) {
        Ok(c) => Shim::from_client(c, found.protocol, Some(timeout)),
        Err(why) => {
            e.error = Some(format!("connect: {why}"));
            return e;
        }
    };
    let id = found.id.as_str();
    let init = match shim.state(&Proc::init(id)) {
        Ok(s) => Process::from_state(id, None, &s),
        Err(err) => {
            e.error = Some(err.describe());
            return e;
        }
    };
    e.pid = init.pid;
    e.status = init.status.clone();
    e.exit_status = init.exit_status;
    // A grouped task v2 shim has a shim.pid in its first container's bundle only.
    if e.shim_pid.is_none() || found.protocol == Protocol::V2 {
        e.shim_pid = shim.shim_pid(id).ok().or(e.shim_pid);
    }
    if processes {
        let mut all = vec![init];
        all.extend(execs(&shim, id, &local));
        e.processes = Some(all);
    }
    e
}

/// The containers under a state root (`state`, as `root`'s processes name it) in both layouts.
fn in_state_root(state: &Path, root: Option<&Path>) -> std::io::Result<Vec<Found>> {
    let mut out = Vec::new();
    for protocol in [Protocol::V1, Protocol::V2] {
        let runtime = state.join(runtime_dir(protocol));
        let namespaces = match subdirs(&procfs::under(root, &runtime)) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for (ns, _) in namespaces {
            let Ok(bundles) = subdirs(&procfs::under(root, &runtime.join(&ns))) else {
                continue;
            };
            for (id, _) in bundles {
                out.push(Found {
                    namespace: ns.clone(),
                    bundle: runtime.join(&ns).join(&id),
                    id,
                    protocol,
                    root: root.map(Path::to_path_buf),
                });
            }
        }
    }
    out.sort_by(|a, b| (&a.namespace, &a.id).cmp(&(&b.namespace, &b.id)));
    Ok(out)
}

/// Where running shims say containers are: the state root of each one in a layout, and the bundle
/// itself of each one that is not.
fn from_shims(shims: &[ShimProcess]) -> (Vec<(PathBuf, Option<PathBuf>)>, Vec<Found>) {
    let mut roots = Vec::new();
    let mut loose = Vec::new();
    for s in shims {
        let Some(cwd) = &s.cwd else { continue };
        match (layout_protocol(cwd), cwd.ancestors().nth(3)) {
            (Some(_), Some(state)) => roots.push((state.to_path_buf(), s.root.clone())),
            _ => loose.push(Found {
                namespace: s.namespace.clone(),
                id: s.id.clone().unwrap_or_else(|| {
                    cwd.file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default()
                }),
                protocol: s.protocol,
                bundle: cwd.clone(),
                root: s.root.clone(),
            }),
        }
    }
    (roots, loose)
}

/// Lists the containers under `root` or, when `root` is `None`, under /run/containerd and every
/// running shim's state root; with `processes`, each container's processes too.
pub fn list(root: Option<&Path>, timeout: Duration, processes: bool) -> anyhow::Result<Vec<Entry>> {
    let shims = procfs::shims();
    let others: Vec<u32> = shims
        .iter()
        .filter(|s| s.root.is_some())
        .map(|s| s.pid)
        .collect();
    let mut found = Vec::new();
    match root {
        Some(root) => {
            let through = procfs::pid_of_root(root).map(procfs::root_of);
            let state = match &through {
                Some(r) => Path::new("/").join(root.strip_prefix(r).unwrap_or(root)),
                None => root.to_path_buf(),
            };
            found.extend(in_state_root(&state, through.as_deref()).map_err(|e| {
                anyhow::Error::new(e).context(format!("reading {}", root.display()))
            })?);
        }
        None => {
            let (roots, loose) = from_shims(&shims);
            let default = (PathBuf::from(crate::cli::DEFAULT_STATE_ROOT), None);
            let mut seen = Vec::new();
            for (state, through) in std::iter::once(default).chain(roots) {
                let id = identity(&procfs::under(through.as_deref(), &state));
                if id.is_none() || seen.contains(&id) {
                    continue;
                }
                seen.push(id);
                found.extend(in_state_root(&state, through.as_deref()).unwrap_or_default());
            }
            found.extend(loose);
        }
    }
    let mut seen = Vec::new();
    found.retain(|f| {
        let id = identity(&f.local());
        let new = id.is_none() || !seen.contains(&id);
        seen.push(id);
        new
    });
    Ok(found
        .into_iter()
        .map(|f| probe(f, &others, timeout, processes))
        .collect())
}

fn opt(v: Option<u32>) -> String {
    v.map_or_else(|| "-".to_string(), |v| v.to_string())
}

/// `running`, `stopped (exited 3)`, or the status with why it is not known.
fn status_text(status: &str, exit_status: Option<u32>, error: Option<&String>) -> String {
    match (error, exit_status) {
        (Some(why), _) => format!("{status} ({why})"),
        (None, Some(code)) => format!("{status} ({})", exit_description(code)),
        (None, None) => status.to_string(),
    }
}

fn render(entries: &[Entry], processes: bool) -> String {
    if !processes {
        let mut table = Table::new(&["NAMESPACE", "ID", "API", "PID", "SHIM PID", "STATUS"]);
        for e in entries {
            table.row(vec![
                e.namespace.clone(),
                e.id.clone(),
                e.api.to_string(),
                opt(e.pid),
                opt(e.shim_pid),
                status_text(&e.status, e.exit_status, e.error.as_ref()),
            ]);
        }
        return table.render();
    }
    let mut table = Table::new(&[
        "NAMESPACE",
        "ID",
        "EXEC ID",
        "API",
        "PID",
        "SHIM PID",
        "STATUS",
    ]);
    for e in entries {
        let Some(procs) = &e.processes else {
            // Unreachable: the container alone, saying why.
            table.row(vec![
                e.namespace.clone(),
                e.id.clone(),
                "-".to_string(),
                e.api.to_string(),
                opt(e.pid),
                opt(e.shim_pid),
                status_text(&e.status, e.exit_status, e.error.as_ref()),
            ]);
            continue;
        };
        for p in procs {
            table.row(vec![
                e.namespace.clone(),
                e.id.clone(),
                p.exec_id.clone().unwrap_or_else(|| "-".to_string()),
                e.api.to_string(),
                opt(p.pid),
                opt(e.shim_pid),
                status_text(&p.status, p.exit_status, p.error.as_ref()),
            ]);
        }
    }
    table.render()
}

pub fn run(
    root: Option<&Path>,
    json: bool,
    timeout: Option<Duration>,
    processes: bool,
) -> anyhow::Result<i32> {
    let entries = list(root, timeout.unwrap_or(DEFAULT_TIMEOUT), processes)?;
    if json {
        output::print_json(&entries)?;
    } else {
        output::print_text(&render(&entries, processes))?;
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_ids_come_from_pid_files_but_not_inits_nor_the_shims() {
        let dir = std::env::temp_dir().join(format!("shim-ctl-ls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for f in [
            "init.pid",
            "shim.pid",
            ".shim.pid",
            "b.pid",
            "a.pid",
            "config.json",
        ] {
            std::fs::write(dir.join(f), "1").unwrap();
        }
        let ids = exec_ids(&dir);
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(ids, ["a", "b"]);
    }

    #[test]
    fn stopped_processes_show_their_decoded_exit() {
        assert_eq!(status_text("running", None, None), "running");
        assert_eq!(
            status_text("stopped", Some(137), None),
            "stopped (killed by SIGKILL)"
        );
        let why = "connect: refused".to_string();
        assert_eq!(
            status_text("unreachable", None, Some(&why)),
            "unreachable (connect: refused)"
        );
    }

    fn shim(pid: u32, protocol: Protocol, cwd: &str, root: Option<&str>) -> ShimProcess {
        ShimProcess {
            pid,
            protocol,
            namespace: "ns".into(),
            id: (protocol == Protocol::V2).then(|| "first".to_string()),
            cwd: Some(cwd.into()),
            root: root.map(PathBuf::from),
        }
    }

    #[test]
    fn shims_in_a_layout_give_their_state_root_others_their_bundle() {
        let shims = [
            shim(
                7,
                Protocol::V2,
                "/run/containerd/io.containerd.runtime.v2.task/ns/first",
                Some("/proc/7/root"),
            ),
            shim(8, Protocol::V1, "/tmp/spawned/web", None),
        ];
        let (roots, loose) = from_shims(&shims);
        assert_eq!(
            roots,
            [(
                PathBuf::from("/run/containerd"),
                Some(PathBuf::from("/proc/7/root"))
            )]
        );
        assert_eq!(loose.len(), 1);
        assert_eq!(loose[0].id, "web");
        assert_eq!(loose[0].protocol, Protocol::V1);
        assert_eq!(loose[0].local(), Path::new("/tmp/spawned/web"));
    }

    #[test]
    fn both_layouts_of_a_state_root_are_listed_with_their_api() {
        let dir = std::env::temp_dir().join(format!("shim-ctl-ls-root-{}", std::process::id()));
        for b in [
            "io.containerd.runtime.v1.linux/n1/old",
            "io.containerd.runtime.v2.task/n1/new",
            "io.containerd.runtime.v2.task/n1/.deleting",
            "io.containerd.runtime.v2.task/n0/grouped",
        ] {
            std::fs::create_dir_all(dir.join(b)).unwrap();
        }
        let found = in_state_root(&dir, None).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        let got: Vec<_> = found
            .iter()
            .map(|f| (f.namespace.as_str(), f.id.as_str(), f.protocol))
            .collect();
        assert_eq!(
            got,
            [
                ("n0", "grouped", Protocol::V2),
                ("n1", "new", Protocol::V2),
                ("n1", "old", Protocol::V1)
            ]
        );
    }
}
