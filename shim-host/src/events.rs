//! shim-core's events as containerd reads them: topic and Any-packed protobuf event.

use shim_core::events::{Event as CoreEvent, TaskExit};
use shim_proto::events as pb;
use shim_proto::time::to_timestamp;

use crate::publisher::Event;
use crate::types::exit_time;

/// Any core event as task v2 publishes it.
pub fn to_event(e: &CoreEvent) -> Event {
    match e {
        CoreEvent::Create {
            container_id,
            bundle,
            rootfs,
            io,
            checkpoint,
            pid,
        } => event(
            &pb::TaskCreate {
                container_id: container_id.clone(),
                bundle: bundle.to_string_lossy().into_owned(),
                rootfs: rootfs
                    .iter()
                    .map(|m| shim_proto::types::Mount {
                        r#type: m.kind.clone(),
                        source: m.source.clone(),
                        target: m.target.clone(),
                        options: m.options.clone(),
                    })
                    .collect(),
                io: Some(pb::TaskIo {
                    stdin: io.stdin.clone(),
                    stdout: io.stdout.clone(),
                    stderr: io.stderr.clone(),
                    terminal: io.terminal,
                }),
                checkpoint: checkpoint.clone(),
                pid: *pid,
            },
            format!("container={container_id} pid={pid}"),
        ),
        CoreEvent::Start { container_id, pid } => event(
            &pb::TaskStart {
                container_id: container_id.clone(),
                pid: *pid,
            },
            format!("container={container_id} pid={pid}"),
        ),
        CoreEvent::Delete {
            container_id,
            pid,
            exit_status,
            exited_at,
        } => event(
            &pb::TaskDelete {
                container_id: container_id.clone(),
                pid: *pid,
                exit_status: *exit_status,
                exited_at: Some(exit_time(*exited_at)),
                id: String::new(),
            },
            format!("container={container_id} pid={pid} exit_status={exit_status}"),
        ),
        CoreEvent::Exit(e) => task_exit(e),
        CoreEvent::Oom { container_id } => event(
            &pb::TaskOom {
                container_id: container_id.clone(),
            },
            format!("container={container_id}"),
        ),
        CoreEvent::ExecAdded {
            container_id,
            exec_id,
        } => event(
            &pb::TaskExecAdded {
                container_id: container_id.clone(),
                exec_id: exec_id.clone(),
            },
            format!("container={container_id} exec={exec_id}"),
        ),
        CoreEvent::ExecStarted {
            container_id,
            exec_id,
            pid,
        } => event(
            &pb::TaskExecStarted {
                container_id: container_id.clone(),
                exec_id: exec_id.clone(),
                pid: *pid,
            },
            format!("container={container_id} exec={exec_id} pid={pid}"),
        ),
        CoreEvent::Paused { container_id } => event(
            &pb::TaskPaused {
                container_id: container_id.clone(),
            },
            format!("container={container_id}"),
        ),
        CoreEvent::Resumed { container_id } => event(
            &pb::TaskResumed {
                container_id: container_id.clone(),
            },
            format!("container={container_id}"),
        ),
        CoreEvent::Checkpointed {
            container_id,
            checkpoint,
        } => event(
            &pb::TaskCheckpointed {
                container_id: container_id.clone(),
                checkpoint: checkpoint.clone(),
            },
            format!("container={container_id}"),
        ),
    }
}

/// `/tasks/exit` with Any{containerd.events.TaskExit, protobuf TaskExit}.
pub fn task_exit(e: &TaskExit) -> Event {
    event(
        &pb::TaskExit {
            container_id: e.container_id.clone(),
            id: e.id.clone(),
            pid: e.pid,
            exit_status: e.exit_status,
            exited_at: Some(to_timestamp(e.exited_at)),
        },
        format!(
            "container={} id={} pid={} exit_status={}",
            e.container_id, e.id, e.pid, e.exit_status
        ),
    )
}

fn event<E: shim_proto::events::Event>(e: &E, about: String) -> Event {
    Event {
        topic: E::TOPIC,
        event: e.to_any(),
        about,
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
        assert!(ev.about.contains("id=tt1"), "{}", ev.about);
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

    #[test]
    fn every_core_event_goes_out_on_its_v2_topic() {
        let c = || "c1".to_string();
        let table = [
            (
                CoreEvent::Start {
                    container_id: c(),
                    pid: 7,
                },
                "/tasks/start",
                "containerd.events.TaskStart",
            ),
            (
                CoreEvent::Delete {
                    container_id: c(),
                    pid: 7,
                    exit_status: 1,
                    exited_at: None,
                },
                "/tasks/delete",
                "containerd.events.TaskDelete",
            ),
            (
                CoreEvent::Oom { container_id: c() },
                "/tasks/oom",
                "containerd.events.TaskOOM",
            ),
            (
                CoreEvent::ExecAdded {
                    container_id: c(),
                    exec_id: "e".into(),
                },
                "/tasks/exec-added",
                "containerd.events.TaskExecAdded",
            ),
            (
                CoreEvent::ExecStarted {
                    container_id: c(),
                    exec_id: "e".into(),
                    pid: 8,
                },
                "/tasks/exec-started",
                "containerd.events.TaskExecStarted",
            ),
            (
                CoreEvent::Paused { container_id: c() },
                "/tasks/paused",
                "containerd.events.TaskPaused",
            ),
            (
                CoreEvent::Resumed { container_id: c() },
                "/tasks/resumed",
                "containerd.events.TaskResumed",
            ),
            (
                CoreEvent::Checkpointed {
                    container_id: c(),
                    checkpoint: "/x".into(),
                },
                "/tasks/checkpointed",
                "containerd.events.TaskCheckpointed",
            ),
        ];
        for (core, topic, url) in table {
            let e = to_event(&core);
            assert_eq!((e.topic, e.event.type_url.as_str()), (topic, url));
        }
        let created = to_event(&CoreEvent::Create {
            container_id: c(),
            bundle: "/b".into(),
            rootfs: vec![],
            io: Default::default(),
            checkpoint: String::new(),
            pid: 9,
        });
        assert_eq!(created.topic, "/tasks/create");
        let pb: pb::TaskCreate =
            shim_proto::any::unpack(&created.event, "containerd.events.TaskCreate").unwrap();
        assert_eq!((pb.bundle.as_str(), pb.pid), ("/b", 9));
    }
}
