//! `ls`: every shim under a containerd state root, one table row each; unreachable ones included.

use crate::client::Shim;
use crate::connect::{dial, read_address, V1_RUNTIME_DIR};
use crate::output::{self, status_name, Table};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Per-shim bound when the caller gave no `--timeout`: one hung shim must not hang the listing.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

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
    /// Why the shim could not be asked, when `status` is `unreachable`.
    pub error: Option<String>,
    pub shim_pid: Option<u32>,
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

fn probe(namespace: &str, id: &str, bundle: PathBuf, timeout: Duration) -> Entry {
    let mut e = Entry {
        namespace: namespace.to_string(),
        id: id.to_string(),
        address: None,
        pid: None,
        status: "unreachable".to_string(),
        error: None,
        shim_pid: read_pid(&bundle.join("shim.pid")),
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
        Ok(c) => Shim::from_client(c, Some(timeout)),
        Err(why) => {
            e.error = Some(format!("connect: {why}"));
            return e;
        }
    };
    match shim.state(id) {
        Ok(s) => {
            e.pid = Some(s.pid);
            e.status = status_name(s.status).to_string();
        }
        Err(err) => {
            e.error = Some(err.describe());
            return e;
        }
    }
    if e.shim_pid.is_none() {
        e.shim_pid = shim.shim_pid().ok();
    }
    e
}

/// Lists `<root>/io.containerd.runtime.v1.linux/<ns>/<id>`.
pub fn list(root: &Path, timeout: Duration) -> anyhow::Result<Vec<Entry>> {
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
            entries.push(probe(&ns, &id, bundle, timeout));
        }
    }
    Ok(entries)
}

fn opt(v: Option<u32>) -> String {
    v.map_or_else(|| "-".to_string(), |v| v.to_string())
}

pub fn run(root: &Path, json: bool, timeout: Option<Duration>) -> anyhow::Result<i32> {
    let entries = list(root, timeout.unwrap_or(DEFAULT_TIMEOUT))?;
    if json {
        output::print_json(&entries)?;
        return Ok(0);
    }
    let mut table = Table::new(&["NAMESPACE", "ID", "PID", "SHIM PID", "STATUS"]);
    for e in &entries {
        let status = match &e.error {
            Some(why) => format!("unreachable ({why})"),
            None => e.status.clone(),
        };
        table.row(vec![
            e.namespace.clone(),
            e.id.clone(),
            opt(e.pid),
            opt(e.shim_pid),
            status,
        ]);
    }
    output::print_text(&table.render())?;
    Ok(0)
}
