//! `start`: find the group's running daemon or launch a new one on a fresh socket, write the
//! bundle's `address` file, and say where the daemon listens in the form containerd reads.

use std::ffi::OsString;
use std::io::Read;
use std::path::Path;

use anyhow::{bail, Context};
use prost::Message;
use serde::Serialize;
use shim_host::limits::FdLimit;
use shim_proto::protobuf::Any;
use shim_proto::runc_v1_options::Options;

use crate::bundle;
use crate::flags::Settings;
use crate::options;
use crate::socket::{self, Bound};
use crate::spawn;

/// Run `start` for the bundle `bundle` (containerd runs it with the bundle as cwd); `exe` is this
/// binary. The text to print on success: nothing else may reach stdout or stderr, since
/// containerd reads both as the answer.
/// `started_limit`: the open-file limit this process started with, given back to the daemon.
pub fn run(
    s: &Settings,
    bundle: &Path,
    exe: &Path,
    started_limit: Option<FdLimit>,
) -> anyhow::Result<String> {
    if s.id.is_empty() {
        bail!("start needs the task id: -id is missing");
    }
    shim_core::validate::id("task", &s.id).map_err(|e| anyhow::anyhow!("{e}"))?;
    check_containerd(&s.address)?;
    let group = bundle::group(bundle)
        .context("reading the bundle's spec for its group")?
        .unwrap_or_else(|| s.id.clone());
    let address = socket::address(&s.address, &s.namespace, &group);

    let listener = match socket::bind(&address).context("creating the shim socket")? {
        Bound::Running => {
            // The group's daemon serves this container too.
            bundle::write_address(bundle, &address).context("writing the address file")?;
            log::info!(id:% = s.id, group:% = group, address:% = address; "reusing the group's running shim");
            return Ok(bootstrap(&address, s.max_shim_version));
        }
        Bound::New(listener) => listener,
    };
    let launched = (|| {
        bundle::write_address(bundle, &address).context("writing the address file")?;
        let child = spawn::daemon(exe, &daemon_args(s), bundle, &listener, started_limit)
            .with_context(|| format!("starting the shim daemon {}", exe.display()))?;
        Ok::<_, anyhow::Error>(child)
    })();
    let child = match launched {
        Ok(child) => child,
        Err(e) => {
            let _ = socket::remove(&address);
            return Err(e);
        }
    };
    drop(listener);
    let mut child = child;
    match runtime_options() {
        Ok(Some(o)) if !o.shim_cgroup.is_empty() => {
            if let Err(e) = join_cgroup(&o.shim_cgroup, child.id()) {
                // As Go: `start` fails, the daemon is killed and its socket removed.
                let _ = child.kill();
                let _ = child.wait();
                let _ = socket::remove(&address);
                return Err(e);
            }
            log::info!(pid:% = child.id(), shim_cgroup:% = o.shim_cgroup; "shim daemon moved into its cgroup");
        }
        Ok(_) => {}
        // As Go: options that cannot be read are not start's concern (Create decodes them again).
        Err(e) => log::debug!(error:% = e; "no runtime options on stdin"),
    }
    if let Err(e) = spawn::adjust_oom_score(child.id()) {
        // Go fails `start` here; the daemon works as well with the score it inherited.
        log::warn!(pid:% = child.id(), error:% = e; "could not set the shim's oom_score_adj");
    }
    log::info!(id:% = s.id, group:% = group, address:% = address, pid:% = child.id(); "started shim daemon");
    Ok(bootstrap(&address, s.max_shim_version))
}

/// The runtime option `shim_cgroup`: the daemon joins that cgroup (Go's words when it cannot).
fn join_cgroup(path: &str, pid: u32) -> anyhow::Result<()> {
    let host = shim_core::cgroup::Host::default();
    shim_core::cgroup::join(&host, path, pid).map_err(|e| {
        let what = if matches!(e, shim_core::cgroup::CgroupError::Path { .. }) {
            "join"
        } else {
            "load"
        };
        anyhow::anyhow!("failed to {what} cgroup {path}: {e}")
    })
}

/// The runtime options containerd writes on `start`'s stdin (protobuf Any of
/// `containerd.runc.v1.Options`), if any; a terminal is not read.
fn runtime_options() -> Result<Option<Options>, String> {
    // SAFETY: isatty only inspects fd 0.
    if unsafe { libc::isatty(0) } != 0 {
        return Ok(None);
    }
    let mut input = Vec::new();
    std::io::stdin()
        .read_to_end(&mut input)
        .map_err(|e| format!("reading stdin: {e}"))?;
    if input.is_empty() {
        return Ok(None);
    }
    let any = Any::decode(input.as_slice()).map_err(|e| format!("not a protobuf Any: {e}"))?;
    options::runc(Some(&any)).map(Some).map_err(|s| s.message)
}

/// The daemon's own command line: what Go's runc shim passes its daemon, plus the publish binary.
fn daemon_args(s: &Settings) -> Vec<OsString> {
    let mut args: Vec<OsString> = [
        "-namespace",
        &s.namespace,
        "-id",
        &s.id,
        "-address",
        &s.address,
        "-publish-binary",
        &s.publish_binary,
    ]
    .iter()
    .map(OsString::from)
    .collect();
    if s.debug {
        args.push("-debug".into());
    }
    args
}

/// containerd must be there to talk to: `-address` given and answering.
fn check_containerd(address: &str) -> anyhow::Result<()> {
    if address.is_empty() {
        bail!("start needs containerd's address: -address (or GRPC_ADDRESS) is missing");
    }
    let path = Path::new(address.strip_prefix("unix://").unwrap_or(address));
    if !socket::answers(path) {
        bail!("containerd does not answer at -address {address}");
    }
    Ok(())
}

/// What `start` prints: containerd 1.6 (no MAX_SHIM_VERSION) reads a bare address; 1.7 and 2.x
/// (MAX_SHIM_VERSION=2) read version-2 JSON bootstrap parameters, which select the task v2 API
/// (1.7 refuses version 3; 2.x would take 3 to mean the task v3 API).
pub fn bootstrap(address: &str, max_shim_version: Option<u32>) -> String {
    #[derive(Serialize)]
    struct BootstrapParams<'a> {
        version: u32,
        address: &'a str,
        protocol: &'a str,
    }
    match max_shim_version {
        Some(v) if v >= 2 => {
            let params = BootstrapParams {
                version: 2,
                address,
                protocol: "ttrpc",
            };
            // Serializing three plain fields cannot fail; the bare address is the fallback anyway.
            serde_json::to_string(&params).unwrap_or_else(|_| address.to_string())
        }
        _ => address.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_answer_is_bare_for_1_6_and_json_version_2_from_1_7() {
        let a = "unix:///run/containerd/s/abc";
        assert_eq!(bootstrap(a, None), a);
        assert_eq!(bootstrap(a, Some(1)), a);
        let want = r#"{"version":2,"address":"unix:///run/containerd/s/abc","protocol":"ttrpc"}"#;
        assert_eq!(bootstrap(a, Some(2)), want);
        assert_eq!(bootstrap(a, Some(3)), want);
    }

    #[test]
    fn the_daemon_gets_go_s_flags_and_the_publish_binary() {
        let s = Settings {
            namespace: "ns".into(),
            address: "/c.sock".into(),
            ttrpc_address: "/c.sock.ttrpc".into(),
            publish_binary: "/usr/bin/containerd".into(),
            id: "c1".into(),
            debug: true,
            max_shim_version: Some(2),
        };
        let args: Vec<String> = daemon_args(&s)
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect();
        assert_eq!(
            args,
            [
                "-namespace",
                "ns",
                "-id",
                "c1",
                "-address",
                "/c.sock",
                "-publish-binary",
                "/usr/bin/containerd",
                "-debug"
            ]
        );
    }

    #[test]
    fn containerd_must_be_named_and_answer() {
        assert!(check_containerd("")
            .unwrap_err()
            .to_string()
            .contains("-address"));
        let err = check_containerd("/nonexistent/containerd.sock").unwrap_err();
        assert!(err.to_string().contains("does not answer"), "{err}");
    }
}
