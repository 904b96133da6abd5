//! What every shim API carries alike, as shim-core takes and gives it: a task's rootfs mounts
//! (`containerd.types.Mount`), its IO paths, a process's status (`containerd.v1.types.Status`)
//! and exit time. Each front builds its own messages from these.

use std::time::SystemTime;

use shim_core::io::IoSpec;
use shim_core::service as core;
use shim_proto::protobuf::Timestamp;
use shim_proto::time::{to_timestamp, GO_ZERO_TIME};
use shim_proto::types::{Mount, Status};

/// A create request's rootfs mounts.
pub fn rootfs(mounts: Vec<Mount>) -> Vec<core::Mount> {
    mounts
        .into_iter()
        .map(|m| core::Mount {
            kind: m.r#type,
            source: m.source,
            target: m.target,
            options: m.options,
        })
        .collect()
}

/// A create or exec request's IO paths.
pub fn io(stdin: String, stdout: String, stderr: String, terminal: bool) -> IoSpec {
    IoSpec {
        stdin,
        stdout,
        stderr,
        terminal,
    }
}

/// A process's status, as State answers it.
pub fn status(s: core::Status) -> Status {
    match s {
        core::Status::Created => Status::Created,
        core::Status::Running => Status::Running,
        core::Status::Stopped => Status::Stopped,
        core::Status::Paused => Status::Paused,
        core::Status::Pausing => Status::Pausing,
    }
}

/// Go always encodes the time: a process that never exited reports Go's zero time.
pub fn exit_time(at: Option<SystemTime>) -> Timestamp {
    at.map_or(GO_ZERO_TIME, to_timestamp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_that_never_exited_reports_go_zero_time() {
        assert_eq!(exit_time(None), GO_ZERO_TIME);
        assert_eq!(
            exit_time(Some(SystemTime::UNIX_EPOCH)),
            Timestamp {
                seconds: 0,
                nanos: 0
            }
        );
    }

    #[test]
    fn every_core_status_has_its_proto_status() {
        let table = [
            (core::Status::Created, Status::Created),
            (core::Status::Running, Status::Running),
            (core::Status::Stopped, Status::Stopped),
            (core::Status::Paused, Status::Paused),
            (core::Status::Pausing, Status::Pausing),
        ];
        for (c, p) in table {
            assert_eq!(status(c), p);
        }
    }

    #[test]
    fn rootfs_mounts_keep_every_field() {
        let m = rootfs(vec![Mount {
            r#type: "overlay".into(),
            source: "overlay".into(),
            target: "/r".into(),
            options: vec!["lowerdir=/l".into()],
        }]);
        assert_eq!(m.len(), 1);
        assert_eq!(
            (
                m[0].kind.as_str(),
                m[0].source.as_str(),
                m[0].target.as_str()
            ),
            ("overlay", "overlay", "/r")
        );
        assert_eq!(m[0].options, ["lowerdir=/l"]);
    }
}
