//! `ls`: every shim under a containerd state root, one table row each (or one per process with
//! `--processes`); unreachable ones included.

use crate::client::{Proc, ProcessState, Protocol, Shim};
use crate::connect::{dial, read_address, V1_RUNTIME_DIR};
use crate::error::RpcError;
use crate::output::{self, exit_description, status_name, Table};
use serde::Serialize;
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
    pub bundle: PathBuf,
    pub address: Option<String>,
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

/// The container's execs as the shim reports them; a pid file left by a deleted exec is skipped.
fn execs(shim: &Shim, id: &str, bundle: &Path) -> Vec<Process> {
    exec_ids(bundle)
        .into_iter()
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

fn probe(namespace: &str, id: &str, bundle: PathBuf, timeout: Duration, processes: bool) -> Entry {
    let mut e = Entry {
        namespace: namespace.to_string(),
        id: id.to_string(),
        address: None,
        pid: None,
        status: "unreachable".to_string(),
        exit_status: None,
        error: None,
        shim_pid: read_pid(&bundle.join("shim.pid")),
        processes: None,
        bundle,
    };
    let address = match read_address(&e.bundle) {
        Ok(a) => a,
        Err(err) => {
            e.error = Some(format!("no address: {}", err.root_cause()));
            return e;
        }
    };
    e.address = Some(address.clone());
    let shim = match dial(&address) {
        Ok(c) => Shim::from_client(c, Protocol::V1, Some(timeout)),
        Err(why) => {
            e.error = Some(format!("connect: {why}"));
            return e;
        }
    };
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
    if e.shim_pid.is_none() {
        e.shim_pid = shim.shim_pid(id).ok();
    }
    if processes {
        let mut all = vec![init];
        all.extend(execs(&shim, id, &e.bundle));
        e.processes = Some(all);
    }
    e
}

/// Lists `<root>/io.containerd.runtime.v1.linux/<ns>/<id>`; with `processes`, each container's
/// processes too.
pub fn list(root: &Path, timeout: Duration, processes: bool) -> anyhow::Result<Vec<Entry>> {
    let runtime_dir = root.join(V1_RUNTIME_DIR);
    let namespaces = match subdirs(&runtime_dir) {
        Ok(n) => n,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(anyhow::Error::new(e).context(format!("reading {}", runtime_dir.display())))
        }
    };
    let mut entries = Vec::new();
    for (ns, ns_dir) in namespaces {
        let Ok(bundles) = subdirs(&ns_dir) else {
            continue;
        };
        for (id, bundle) in bundles {
            entries.push(probe(&ns, &id, bundle, timeout, processes));
        }
    }
    Ok(entries)
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
        let mut table = Table::new(&["NAMESPACE", "ID", "PID", "SHIM PID", "STATUS"]);
        for e in entries {
            table.row(vec![
                e.namespace.clone(),
                e.id.clone(),
                opt(e.pid),
                opt(e.shim_pid),
                status_text(&e.status, e.exit_status, e.error.as_ref()),
            ]);
        }
        return table.render();
    }
    let mut table = Table::new(&["NAMESPACE", "ID", "EXEC ID", "PID", "SHIM PID", "STATUS"]);
    for e in entries {
        let Some(procs) = &e.processes else {
            // Unreachable: the container alone, saying why.
            table.row(vec![
                e.namespace.clone(),
                e.id.clone(),
                "-".to_string(),
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
                opt(p.pid),
                opt(e.shim_pid),
                status_text(&p.status, p.exit_status, p.error.as_ref()),
            ]);
        }
    }
    table.render()
}

pub fn run(
    root: &Path,
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
}
