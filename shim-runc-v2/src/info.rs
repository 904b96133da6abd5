//! `-info` (containerd 2.x): runtime options in on stdin, the protobuf `containerd.types.RuntimeInfo`
//! out on stdout: name, version, the options back, and runc's `features` JSON.
//!
//! containerd 2.1 runs `<shim> -info` for the introspection API's runtime PluginInfo (clients such
//! as nerdctl ask it) and, on task create, only when the spec uses idmap mounts; CRI asks only
//! runtimes of type `io.containerd.runc.v2`. ctr's run path never does.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context};
use prost::Message;
use shim_proto::any::type_url_matches;
use shim_proto::protobuf::Any;
use shim_proto::runc_v1_options::Options;
use shim_proto::type_url::RUNC_V1_OPTIONS;

use crate::version;

/// How containerd's typeurl names the OCI runtime features document (JSON).
pub const FEATURES_URL: &str =
    "types.containerd.io/opencontainers/runtime-spec/1/features/Features";

// TODO(proto): these two messages belong in shim-proto (containerd/api types/introspection.proto);
// they are declared here until it has them.

/// `containerd.types.RuntimeInfo`.
#[derive(Clone, PartialEq, Message)]
pub struct RuntimeInfo {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(message, optional, tag = "2")]
    pub version: Option<RuntimeVersion>,
    #[prost(message, optional, tag = "3")]
    pub options: Option<Any>,
    #[prost(message, optional, tag = "4")]
    pub features: Option<Any>,
    #[prost(map = "string, string", tag = "5")]
    pub annotations: HashMap<String, String>,
}

/// `containerd.types.RuntimeVersion`.
#[derive(Clone, PartialEq, Message)]
pub struct RuntimeVersion {
    #[prost(string, tag = "1")]
    pub version: String,
    #[prost(string, tag = "2")]
    pub revision: String,
}

/// Read the options from `stdin` (nothing when it is a terminal), and build the answer.
pub fn run(name: &str) -> anyhow::Result<Vec<u8>> {
    let mut input = Vec::new();
    // SAFETY: isatty only inspects fd 0.
    if unsafe { libc::isatty(0) } == 0 {
        std::io::stdin()
            .read_to_end(&mut input)
            .context("reading runtime options from stdin")?;
    }
    let options = options(&input)?;
    let binary = match &options {
        Some(any) => Options::decode(any.value.as_slice())
            .map(|o| o.binary_name)
            .context("decoding containerd.runc.v1.Options")?,
        None => String::new(),
    };
    let binary = if binary.is_empty() {
        "runc".to_string()
    } else {
        binary
    };
    let path =
        look_path(&binary).with_context(|| format!("failed to look up the path of {binary:?}"))?;
    let features = match features(&path) {
        Ok(json) => Some(Any {
            type_url: FEATURES_URL.to_string(),
            value: json,
        }),
        Err(e) => {
            // As Go: a runtime without `features` still has info.
            log::debug!(binary:% = path.display(), error:% = format!("{e:#}"); "no runtime features");
            None
        }
    };
    Ok(RuntimeInfo {
        name: name.to_string(),
        version: Some(RuntimeVersion {
            version: version::VERSION.to_string(),
            revision: version::REVISION.to_string(),
        }),
        options,
        features,
        annotations: HashMap::new(),
    }
    .encode_to_vec())
}

/// The options Any: none for empty input; anything but runc v1 Options is refused.
fn options(input: &[u8]) -> anyhow::Result<Option<Any>> {
    if input.is_empty() {
        return Ok(None);
    }
    let any = Any::decode(input).context("runtime options on stdin are not a protobuf Any")?;
    if !type_url_matches(&any.type_url, RUNC_V1_OPTIONS) {
        bail!(
            "unsupported runtime options type {:?}, expected {RUNC_V1_OPTIONS:?}",
            any.type_url
        );
    }
    Ok(Some(any))
}

/// Go's `exec.LookPath`: a name with a slash is taken as is, else the first executable on PATH.
fn look_path(binary: &str) -> anyhow::Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let executable = |p: &Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if binary.contains('/') {
        let p = PathBuf::from(binary);
        return if executable(&p) {
            Ok(p)
        } else {
            bail!("{binary} is not an executable file")
        };
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(binary))
        .find(|p| executable(p))
        .ok_or_else(|| anyhow::anyhow!("executable file not found in $PATH"))
}

/// `<runtime> features`: its stdout, checked to be JSON.
fn features(binary: &Path) -> anyhow::Result<Vec<u8>> {
    let out = Command::new(binary)
        .arg("features")
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {} features", binary.display()))?;
    if !out.status.success() {
        bail!(
            "{} features: {}: {}",
            binary.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    serde_json::from_slice::<serde_json::Value>(&out.stdout)
        .context("features output is not JSON")?;
    Ok(out.stdout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_options_is_fine_and_foreign_ones_are_refused_by_name() {
        assert_eq!(options(&[]).unwrap(), None);
        let runc = Any {
            type_url: RUNC_V1_OPTIONS.into(),
            value: Options {
                binary_name: "crun".into(),
                ..Default::default()
            }
            .encode_to_vec(),
        };
        assert_eq!(options(&runc.encode_to_vec()).unwrap(), Some(runc));
        let other = Any {
            type_url: "containerd.linux.runc.RuncOptions".into(),
            value: vec![],
        };
        let err = options(&other.encode_to_vec()).unwrap_err().to_string();
        assert!(err.contains("containerd.linux.runc.RuncOptions"), "{err}");
        assert!(options(&[0xff, 0xff]).is_err());
    }

    #[test]
    fn look_path_finds_sh_and_refuses_what_is_missing() {
        assert!(look_path("sh").unwrap().is_absolute());
        assert!(look_path("/nonexistent/runc").is_err());
        assert!(look_path("no-such-runtime-here").is_err());
    }

    #[test]
    fn runtime_info_encodes_as_containerd_decodes_it() {
        let info = RuntimeInfo {
            name: "io.containerd.rsrunc.v2".into(),
            version: Some(RuntimeVersion {
                version: "0.1.0".into(),
                revision: "abc".into(),
            }),
            options: None,
            features: None,
            annotations: HashMap::new(),
        };
        let bytes = info.encode_to_vec();
        assert_eq!(bytes[0], 0x0a); // field 1, length-delimited
        assert_eq!(RuntimeInfo::decode(bytes.as_slice()).unwrap(), info);
    }
}
