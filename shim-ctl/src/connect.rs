//! Finding a shim (explicit address, a bundle's `address` file, or containerd's v1 or v2 layout),
//! which API it speaks, and dialing it.

use crate::cli::Target;
use crate::client::Protocol;
use crate::error::UsageError;
use crate::procfs;
use anyhow::Context as _;
use std::path::{Component, Path, PathBuf};

/// containerd's directory for v1 runtime bundles under its state root.
pub const V1_RUNTIME_DIR: &str = "io.containerd.runtime.v1.linux";
/// containerd's directory for runtime v2 (task API) bundles under its state root.
pub const V2_RUNTIME_DIR: &str = "io.containerd.runtime.v2.task";

/// What the command line says about the shim and its container.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// `unix:///…`, as given or as the bundle's `address` file says.
    pub address: String,
    /// What to dial: `address`, or the same socket reached from here (see [`procfs::reach`]).
    pub dial: String,
    /// Known when given by `--id` or a bundle directory's name.
    pub container_id: Option<String>,
    /// Known when given by `--bundle` or `--id`.
    pub bundle: Option<PathBuf>,
    /// The API to speak: forced by `--v1`/`--v2` or told by containerd's layout; `None` asks the
    /// shim.
    pub protocol: Option<Protocol>,
    /// `/proc/<pid>/root` of the shim (or of a process beside it) when it lives in another mount
    /// namespace: paths the shim names are read under it.
    pub shim_root: Option<PathBuf>,
}

impl Resolved {
    /// A path as the shim names it (a bundle in State), as we can open it.
    pub fn local(&self, shim_path: &Path) -> PathBuf {
        procfs::under(self.shim_root.as_deref(), shim_path)
    }
}

/// The runtime directory of a containerd layout for `protocol`.
pub fn runtime_dir(protocol: Protocol) -> &'static str {
    match protocol {
        Protocol::V1 => V1_RUNTIME_DIR,
        Protocol::V2 => V2_RUNTIME_DIR,
    }
}

/// `<state-root>/io.containerd.runtime.v1.linux/<ns>/<id>` (or `…v2.task/…` for v2)
pub fn layout_bundle(state_root: &Path, protocol: Protocol, namespace: &str, id: &str) -> PathBuf {
    state_root
        .join(runtime_dir(protocol))
        .join(namespace)
        .join(id)
}

/// The API containerd's layout implies for a bundle: `…/io.containerd.runtime.v2.task/<ns>/<id>`
/// is a task v2 shim's, `…/io.containerd.runtime.v1.linux/<ns>/<id>` a v1 shim's.
pub fn layout_protocol(bundle: &Path) -> Option<Protocol> {
    let parts: Vec<Component<'_>> = bundle.components().collect();
    let runtime = parts.len().checked_sub(3).map(|i| parts[i].as_os_str())?;
    if runtime == V2_RUNTIME_DIR {
        Some(Protocol::V2)
    } else if runtime == V1_RUNTIME_DIR {
        Some(Protocol::V1)
    } else {
        None
    }
}

/// The API `--v1` or `--v2` forces.
pub fn forced(target: &Target) -> Option<Protocol> {
    if target.v1 {
        Some(Protocol::V1)
    } else if target.v2 {
        Some(Protocol::V2)
    } else {
        None
    }
}

/// Adds the `unix://` scheme to a plain socket path.
pub fn normalize(address: &str) -> String {
    let address = address.trim();
    if address.contains("://") {
        address.to_string()
    } else {
        format!("unix://{address}")
    }
}

/// The address in `<bundle>/address` (containerd writes it without a newline; we tolerate one),
/// else the `address` of `<bundle>/bootstrap.json`, all containerd 2.x keeps for a shim that
/// wrote no address file (its Go runc shim).
pub fn read_address(bundle: &Path) -> anyhow::Result<String> {
    let path = bundle.join("address");
    let text = match std::fs::read_to_string(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => match bootstrap_address(bundle) {
            Some(found) => return found,
            None => Err(e),
        },
        read => read,
    }
    .with_context(|| format!("reading {}", path.display()))?;
    if text.trim().is_empty() {
        let why = format!("{} is empty", path.display());
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, why).into());
    }
    Ok(normalize(&text))
}

fn dir_name(dir: &Path) -> Option<String> {
    dir.file_name().and_then(|n| n.to_str()).map(str::to_string)
}

/// The APIs whose layouts to look in, in order: the forced one first, else v2 first.
fn protocols(forced: Option<Protocol>) -> [Protocol; 2] {
    match forced {
        Some(Protocol::V1) => [Protocol::V1, Protocol::V2],
        _ => [Protocol::V2, Protocol::V1],
    }
}

/// The bundle of container `id`: in containerd's layouts under `--state-root` (the forced API's
/// first, else v2's), else beside or under a running shim of the namespace, read through its
/// `/proc/<pid>/root` when it lives in another mount namespace (then its pid comes along).
/// `--v1`/`--v2` choose the API to speak, not where to look.
fn find_bundle(
    target: &Target,
    id: &str,
    forced: Option<Protocol>,
) -> anyhow::Result<(PathBuf, Option<u32>)> {
    let ns = &target.namespace;
    let at = |p| layout_bundle(target.state_root(), p, ns, id);
    if let Some(p) = protocols(forced).into_iter().find(|p| at(*p).is_dir()) {
        return Ok((at(p), None));
    }
    let shims = procfs::shims();
    for shim in shims.iter().filter(|s| &s.namespace == ns) {
        let beside = shim
            .cwd
            .as_deref()
            .and_then(Path::parent)
            .map(|d| d.join(id));
        let candidates = [Some(at(shim.protocol)), beside];
        if let Some(b) = candidates
            .into_iter()
            .flatten()
            .map(|b| shim.local(&b))
            .find(|b| b.is_dir())
        {
            return Ok((b, Some(shim.pid)));
        }
    }
    let layouts: Vec<String> = protocols(forced)
        .into_iter()
        .map(|p| at(p).display().to_string())
        .collect();
    let why = format!(
        "container {id} not found: no bundle at {} nor beside a running shim of namespace {ns} \
         ({} running)",
        layouts.join(" or "),
        shims.iter().filter(|s| &s.namespace == ns).count()
    );
    Err(std::io::Error::new(std::io::ErrorKind::NotFound, why).into())
}

/// The address in `<bundle>/bootstrap.json` (`{"version":3,"address":"unix://…","protocol":
/// "ttrpc"}`); `None` when there is no such file.
fn bootstrap_address(bundle: &Path) -> Option<anyhow::Result<String>> {
    let path = bundle.join("bootstrap.json");
    let text = std::fs::read_to_string(&path).ok()?;
    let address = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| Some(v.get("address")?.as_str()?.to_string()))
        .filter(|a| !a.trim().is_empty());
    Some(match address {
        Some(a) => Ok(normalize(&a)),
        None => {
            let why = format!("{} holds no address: {text:?}", path.display());
            Err(std::io::Error::new(std::io::ErrorKind::InvalidData, why).into())
        }
    })
}

/// Resolves the target; `fallback_bundle` (create's BUNDLE) is used when nothing else is given.
pub fn resolve(target: &Target, fallback_bundle: Option<&Path>) -> anyhow::Result<Resolved> {
    let forced = forced(target);
    let mut pids = Vec::new();
    let bundle = match (&target.bundle, &target.id, &target.address) {
        (Some(b), _, _) => Some(absolute(b)?),
        // With --address the bundle is only a guess (exec reads its config.json if it is there).
        (None, Some(id), Some(_)) => Some(layout_bundle(
            target.state_root(),
            forced.unwrap_or(Protocol::V1),
            &target.namespace,
            id,
        )),
        (None, Some(id), None) => {
            let (bundle, pid) = find_bundle(target, id, forced)?;
            pids.extend(pid);
            Some(bundle)
        }
        (None, None, _) => fallback_bundle.map(absolute).transpose()?,
    };
    let container_id = target
        .id
        .clone()
        .or_else(|| bundle.as_deref().and_then(dir_name));
    let address = match (&target.address, &bundle) {
        (Some(a), _) => normalize(a),
        (None, Some(b)) => read_address(b)?,
        (None, None) => {
            return Err(UsageError(
                "no shim given: use --address, --bundle or --id (see --help)".into(),
            )
            .into())
        }
    };
    // The layout tells the API of the shim whose address it holds, not of one given by --address.
    let from_layout = match (&target.address, &bundle) {
        (None, Some(b)) => layout_protocol(b),
        _ => None,
    };
    if let Some(b) = &bundle {
        pids.extend(procfs::pid_of_root(b));
        pids.extend(read_pid(&b.join("shim.pid")));
    }
    let (dial, via) = procfs::reach(&address, &pids, procfs::foreign_shim_pids)
        .unwrap_or((address.clone(), None));
    let shim_root = via.or(pids.first().copied()).and_then(procfs::foreign_root);
    Ok(Resolved {
        dial,
        address,
        container_id,
        bundle,
        protocol: forced.or(from_layout),
        shim_root,
    })
}

fn read_pid(path: &Path) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

fn absolute(p: &Path) -> anyhow::Result<PathBuf> {
    if p.is_absolute() {
        Ok(p.to_path_buf())
    } else {
        Ok(std::env::current_dir()
            .context("current directory")?
            .join(p))
    }
}

/// A ttrpc connection to the shim at `address`; the error is the bare reason
/// (`connection refused`) for the caller to put in context.
pub fn dial(address: &str) -> Result<ttrpc::Client, String> {
    ttrpc::Client::connect(address).map_err(|e| match e {
        ttrpc::Error::Nix(errno) => errno.desc().to_lowercase(),
        ttrpc::Error::Socket(m) | ttrpc::Error::Others(m) => m,
        other => other.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> Target {
        Target {
            address: None,
            bundle: None,
            id: None,
            namespace: "default".into(),
            state_root: None,
            v1: false,
            v2: false,
        }
    }

    #[test]
    fn without_an_address_file_the_address_of_bootstrap_json_is_read() {
        let dir = std::env::temp_dir().join(format!("shim-ctl-bootstrap-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let missing = read_address(&dir).unwrap_err().to_string();
        assert!(missing.contains("address"), "{missing}");
        std::fs::write(
            dir.join("bootstrap.json"),
            r#"{"version":3,"address":"unix:///run/containerd/s/ab","protocol":"ttrpc"}"#,
        )
        .unwrap();
        assert_eq!(read_address(&dir).unwrap(), "unix:///run/containerd/s/ab");
        std::fs::write(dir.join("address"), "/run/containerd/s/cd\n").unwrap();
        assert_eq!(read_address(&dir).unwrap(), "unix:///run/containerd/s/cd");
        std::fs::remove_file(dir.join("address")).unwrap();
        std::fs::write(dir.join("bootstrap.json"), "{}").unwrap();
        let empty = read_address(&dir).unwrap_err().to_string();
        assert!(empty.contains("holds no address"), "{empty}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn plain_paths_get_the_unix_scheme() {
        assert_eq!(normalize("/run/x.sock"), "unix:///run/x.sock");
        assert_eq!(normalize("unix:///run/x.sock\n"), "unix:///run/x.sock");
    }

    #[test]
    fn id_finds_the_address_file_in_the_v1_layout() {
        let dir = std::env::temp_dir().join(format!("shim-ctl-connect-{}", std::process::id()));
        let bundle = layout_bundle(&dir, Protocol::V1, "ns1", "c1");
        std::fs::create_dir_all(&bundle).unwrap();
        std::fs::write(bundle.join("address"), "unix:///run/containerd/s/abc").unwrap();
        let t = Target {
            id: Some("c1".into()),
            namespace: "ns1".into(),
            state_root: Some(dir.clone()),
            ..target()
        };
        let r = resolve(&t, None).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(r.address, "unix:///run/containerd/s/abc");
        assert_eq!(r.container_id.as_deref(), Some("c1"));
        assert_eq!(r.bundle, Some(bundle));
        assert_eq!(r.protocol, Some(Protocol::V1));
    }

    #[test]
    fn id_prefers_the_v2_layout_when_it_has_the_container() {
        let dir = std::env::temp_dir().join(format!("shim-ctl-connect2-{}", std::process::id()));
        let v1 = layout_bundle(&dir, Protocol::V1, "ns1", "c1");
        let v2 = layout_bundle(&dir, Protocol::V2, "ns1", "c1");
        for b in [&v1, &v2] {
            std::fs::create_dir_all(b).unwrap();
            std::fs::write(b.join("address"), "unix:///run/containerd/s/abc").unwrap();
        }
        let t = Target {
            id: Some("c1".into()),
            namespace: "ns1".into(),
            state_root: Some(dir.clone()),
            ..target()
        };
        let auto = resolve(&t, None).unwrap();
        let v1_forced = resolve(
            &Target {
                v1: true,
                ..t.clone()
            },
            None,
        )
        .unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(auto.bundle, Some(v2));
        assert_eq!(auto.protocol, Some(Protocol::V2));
        assert_eq!(v1_forced.bundle, Some(v1));
        assert_eq!(v1_forced.protocol, Some(Protocol::V1));
    }

    #[test]
    fn the_layout_tells_the_api_and_other_places_do_not() {
        let v2 = Path::new("/run/containerd/io.containerd.runtime.v2.task/k8s.io/web");
        assert_eq!(layout_protocol(v2), Some(Protocol::V2));
        let v1 = Path::new("/x/io.containerd.runtime.v1.linux/default/web");
        assert_eq!(layout_protocol(v1), Some(Protocol::V1));
        assert_eq!(layout_protocol(Path::new("/tmp/bundle")), None);
        assert_eq!(layout_protocol(Path::new("/")), None);
    }

    #[test]
    fn explicit_address_wins_and_bundle_name_is_the_id() {
        let t = Target {
            address: Some("/tmp/s.sock".into()),
            bundle: Some("/b/web".into()),
            ..target()
        };
        let r = resolve(&t, None).unwrap();
        assert_eq!(r.address, "unix:///tmp/s.sock");
        assert_eq!(r.container_id.as_deref(), Some("web"));
    }

    #[test]
    fn no_target_is_a_usage_error() {
        let err = resolve(&target(), None).unwrap_err();
        assert!(err.downcast_ref::<UsageError>().is_some());
    }
}
