//! shim-core's events as containerd reads them: topic and Any-packed protobuf event.

use shim_core::events::TaskExit;
use shim_proto::events::{Event as _, TaskExit as PbTaskExit};
use shim_proto::type_url::topic;

use crate::publisher::Event;

/// `/tasks/exit` with Any{containerd.events.TaskExit, protobuf TaskExit}.
pub fn task_exit(e: &TaskExit) -> Event {
    let event = PbTaskExit {
        container_id: e.container_id.clone(),
        id: e.id.clone(),
        pid: e.pid,
        exit_status: e.exit_status,
        exited_at: Some(shim_proto::time::to_timestamp(e.exited_at)),
    };
    Event {
        topic: topic::TASK_EXIT,
        event: event.to_any(),
        about: format!(
            "container={} id={} pid={} exit_status={}",
            e.container_id, e.id, e.pid, e.exit_status
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn task_exit_is_encoded_as_containerd_reads_it() {
        let e = TaskExit {
            container_id: "t12".into(),
            id: "tt1".into(),
            pid: 20269,
            exit_status: 2,
            exited_at: UNIX_EPOCH + Duration::new(1_700_000_000, 5),
        };
        let ev = task_exit(&e);
        assert_eq!(ev.topic, "/tasks/exit");
        let bytes = ev.event.encode_to_vec();
        // Bytes seen from the Go shim (contract 4.1), up to the timestamp.
        let mut want = vec![0x0a, 0x1a];
        want.extend_from_slice(b"containerd.events.TaskExit");
        want.extend_from_slice(&[0x12]);
        assert!(bytes.starts_with(&want), "{bytes:02x?}");
        let value = &bytes[want.len() + 1..];
        let mut head = vec![0x0a, 0x03];
        head.extend_from_slice(b"t12");
        head.extend_from_slice(&[0x12, 0x03]);
        head.extend_from_slice(b"tt1");
        head.extend_from_slice(&[0x18, 0xad, 0x9e, 0x01, 0x20, 0x02, 0x2a]);
        assert!(value.starts_with(&head), "{value:02x?}");
    }
}
