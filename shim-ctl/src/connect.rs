//! Finding a shim (explicit address, a bundle's `address` file, or containerd's v1 layout) and dialing it.

use crate::cli::Target;
use crate::error::UsageError;
use anyhow::Context as _;
use std::path::{Path, PathBuf};

/// containerd's directory for v1 runtime bundles under its state root.
pub const V1_RUNTIME_DIR: &str = "io.containerd.runtime.v1.linux";

/// What the command line says about the shim and its container.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// `unix:///…`
    pub address: String,
    /// Known when given by `--id` or a bundle directory's name.
    pub container_id: Option<String>,
    /// Known when given by `--bundle` or `--id`.
    pub bundle: Option<PathBuf>,
}

/// `<state-root>/io.containerd.runtime.v1.linux/<ns>/<id>`
pub fn layout_bundle(state_root: &Path, namespace: &str, id: &str) -> PathBuf {
    state_root.join(V1_RUNTIME_DIR).join(namespace).join(id)
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

/// The address in `<bundle>/address` (containerd writes it without a newline; we tolerate one).
pub fn read_address(bundle: &Path) -> anyhow::Result<String> {
    let path = bundle.join("address");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    if text.trim().is_empty() {
        let why = format!("{} is empty", path.display());
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, why).into());
    }
    Ok(normalize(&text))
}

fn dir_name(dir: &Path) -> Option<String> {
    dir.file_name().and_then(|n| n.to_str()).map(str::to_string)
}

/// Resolves the target; `fallback_bundle` (create's BUNDLE) is used when nothing else is given.
pub fn resolve(target: &Target, fallback_bundle: Option<&Path>) -> anyhow::Result<Resolved> {
    let bundle = match (&target.bundle, &target.id) {
        (Some(b), _) => Some(absolute(b)?),
        (None, Some(id)) => Some(layout_bundle(&target.state_root, &target.namespace, id)),
        (None, None) => fallback_bundle.map(absolute).transpose()?,
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
    Ok(Resolved {
        address,
        container_id,
        bundle,
    })
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

impl Resolved {
    /// The container id, or a usage error naming what to pass.
    pub fn require_id(&self) -> anyhow::Result<String> {
        self.container_id.clone().ok_or_else(|| {
            UsageError(
                "container id unknown: pass it as an argument, or use --id or --bundle".into(),
            )
            .into()
        })
    }

    /// `explicit`, else the container id.
    pub fn id_or(&self, explicit: Option<&String>) -> anyhow::Result<String> {
        match explicit {
            Some(id) => Ok(id.clone()),
            None => self.require_id(),
        }
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
            state_root: "/run/containerd".into(),
        }
    }

    #[test]
    fn plain_paths_get_the_unix_scheme() {
        assert_eq!(normalize("/run/x.sock"), "unix:///run/x.sock");
        assert_eq!(normalize("unix:///run/x.sock\n"), "unix:///run/x.sock");
    }

    #[test]
    fn id_finds_the_address_file_in_the_v1_layout() {
        let dir = std::env::temp_dir().join(format!("shim-ctl-connect-{}", std::process::id()));
        let bundle = layout_bundle(&dir, "ns1", "c1");
        std::fs::create_dir_all(&bundle).unwrap();
        std::fs::write(bundle.join("address"), "unix:///run/containerd/s/abc").unwrap();
        let t = Target {
            id: Some("c1".into()),
            namespace: "ns1".into(),
            state_root: dir.clone(),
            ..target()
        };
        let r = resolve(&t, None).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(r.address, "unix:///run/containerd/s/abc");
        assert_eq!(r.container_id.as_deref(), Some("c1"));
        assert_eq!(r.bundle, Some(bundle));
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
