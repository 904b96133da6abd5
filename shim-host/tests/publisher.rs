//! The event publisher's thread: it runs only while there are events, and a new event after it
//! ended starts another, with every event delivered once and in order.
//!
//! containerd here is a shell script standing in for `containerd publish` (no ttrpc socket, so
//! the publisher falls back to the binary): it appends each event's topic to a file.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use shim_host::publisher::{Event, Publisher, Target};
use shim_proto::protobuf::Any;

/// Polls `done` until it holds or `limit` passes (no event exists for either condition).
fn eventually(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    done()
}

fn publisher_threads() -> usize {
    fs::read_dir("/proc/self/task")
        .unwrap()
        .flatten()
        .filter(|t| {
            fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.trim() == "publisher")
        })
        .count()
}

fn topics(file: &Path) -> Vec<String> {
    fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

fn event(topic: &'static str) -> Event {
    Event {
        topic,
        event: Any::default(),
        about: topic.to_string(),
    }
}

#[test]
fn the_publisher_thread_runs_only_while_there_are_events_and_keeps_their_order() {
    let dir = PathBuf::from(format!("/tmp/publisher-test-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    let out = dir.join("topics");
    let fake = dir.join("containerd");
    // `containerd --address A publish --topic T --namespace N`: $5 is the topic.
    fs::write(
        &fake,
        format!(
            "#!/bin/sh\ncat >/dev/null\necho \"$5\" >> {}\n",
            out.display()
        ),
    )
    .unwrap();
    fs::set_permissions(&fake, fs::Permissions::from_mode(0o755)).unwrap();
    let (reaper, _signals) = reaper::Reaper::builder().start().unwrap();
    let publisher = Publisher::new(
        Target {
            containerd_binary: fake,
            address: "/nonexistent/containerd.sock".into(),
            ttrpc_address: dir.join("no-ttrpc-socket"),
            namespace: "test".into(),
        },
        reaper,
    );
    assert_eq!(publisher_threads(), 0, "no thread before the first event");

    for t in ["/a", "/b", "/c"] {
        publisher.publish(event(t));
    }
    assert!(eventually(Duration::from_secs(20), || topics(&out).len() == 3));
    assert_eq!(topics(&out), ["/a", "/b", "/c"]);
    assert!(
        eventually(Duration::from_secs(20), || publisher_threads() == 0),
        "the thread ends once idle"
    );

    publisher.publish(event("/d"));
    assert!(
        publisher.close_within(Duration::from_secs(20)),
        "all went out"
    );
    assert_eq!(topics(&out), ["/a", "/b", "/c", "/d"]);
    assert_eq!(publisher_threads(), 0, "close_within joined the thread");
    publisher.publish(event("/after-close"));
    assert_eq!(topics(&out).len(), 4, "nothing is taken after the close");
    let _ = fs::remove_dir_all(&dir);
}
