//! `delete`: containerd's cleanup after a dead daemon: force-delete the runc container, unmount the
//! rootfs, remove the dead daemon's socket, and answer with the DeleteResponse Go's runc shim prints.

use std::path::Path;
use std::time::{Duration, SystemTime};

use anyhow::{bail, Context};
use prost::Message;
use shim_core::runc::{Runc, RuncConfig};
use shim_proto::task_v2::DeleteResponse;

use crate::bundle;
use crate::flags::Settings;
use crate::socket;

/// The status Go reports for a task whose shim died: killed (128 + SIGKILL).
pub const DEAD_SHIM_EXIT_STATUS: u32 = 128 + libc::SIGKILL as u32;

/// Clean up the task `s.id` of `bundle` and return the encoded DeleteResponse to print. Failures
/// of the cleanup steps are logged and do not fail the call (as in Go): containerd goes on
/// deleting the bundle either way. An unreadable options.json does fail it, as in Go.
pub fn run(
    s: &Settings,
    bundle: &Path,
    reaper: reaper::Reaper,
    timeout: Duration,
) -> anyhow::Result<Vec<u8>> {
    if s.id.is_empty() {
        bail!("delete needs the task id: -id is missing");
    }
    shim_core::validate::id("task", &s.id).map_err(|e| anyhow::anyhow!("{e}"))?;
    let root = bundle::runc_root(bundle).context("reading the task's runc options")?;
    let binary = bundle::runtime(bundle).context("reading the task's runc binary")?;
    let runc = Runc::new(
        RuncConfig {
            binary: binary.into(),
            root: root.join(&s.namespace),
            log: bundle.join("log.json"),
            criu: None,
            systemd_cgroup: false,
            timeout,
        },
        reaper,
    );
    if let Err(e) = runc.delete(&s.id, true) {
        log::warn!(id:% = s.id, error:% = e; "failed to remove runc container");
    }
    if let Err(e) = shim_core::mount::unmount_all(bundle) {
        log::warn!(id:% = s.id, error:% = e; "failed to cleanup rootfs mount");
    }
    remove_dead_socket(bundle);
    let pid = bundle::init_pid(bundle).unwrap_or_else(|e| {
        log::warn!(id:% = s.id, error:% = e; "failed to read init pid file");
        0
    });
    Ok(response(pid, SystemTime::now()).encode_to_vec())
}

/// The daemon's socket file, when nothing answers on it any more (a killed daemon leaves it; Go
/// leaves it for the next `start` to replace). A group's live daemon still answers: kept.
fn remove_dead_socket(bundle: &Path) {
    let Some(address) = bundle::read_address(bundle) else {
        return;
    };
    let Ok(path) = socket::path_of(&address) else {
        return;
    };
    if path.exists() && !socket::answers(path) {
        if let Err(e) = socket::remove(&address) {
            log::warn!(address:% = address, error:% = e; "failed to remove the dead shim's socket");
        }
    }
}

/// What Go answers: the init's pid (0 if unknown), SIGKILL's status, exited now.
fn response(pid: u32, now: SystemTime) -> DeleteResponse {
    DeleteResponse {
        pid,
        exit_status: DEAD_SHIM_EXIT_STATUS,
        exited_at: Some(shim_proto::time::to_timestamp(now)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    #[test]
    fn the_answer_is_go_s_sigkill_status_with_the_init_pid() {
        let at = UNIX_EPOCH + Duration::new(1_700_000_000, 7);
        let r = response(4242, at);
        assert_eq!(r.exit_status, 137);
        let bytes = r.encode_to_vec();
        // pid=4242 (field 1), exit_status=137 (field 2), exited_at (field 3).
        assert_eq!(&bytes[..6], &[0x08, 0x92, 0x21, 0x10, 0x89, 0x01]);
        let back = DeleteResponse::decode(bytes.as_slice()).unwrap();
        assert_eq!(back, r);
        assert_eq!(
            shim_proto::time::from_timestamp(back.exited_at.as_ref().unwrap()),
            Some(at)
        );
    }
}
