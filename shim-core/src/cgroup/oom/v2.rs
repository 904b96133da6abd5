//! v2 OOM notification: inotify on memory.events, reporting when its oom_kill counter grows.

use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};

use super::Outcome;
use crate::cgroup::files::read_kv;
use crate::cgroup::v2::memory::events_from;
use crate::cgroup::CgroupError;

/// containerd's cgroup2 `EventChan` with its oom/v2 watcher: memory.events and cgroup.events are
/// watched for IN_MODIFY; each change rereads memory.events and reports an OOM when `oom_kill`
/// is above the last value seen (which starts at 0). The watch ends once the cgroup is empty or
/// memory.events cannot be read.
pub(crate) struct MemoryEventsWatch {
    inotify: Inotify,
    dir: PathBuf,
    last_oom_kill: u64,
}

impl MemoryEventsWatch {
    pub fn register(dir: &Path) -> Result<MemoryEventsWatch, CgroupError> {
        let inotify = Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK)
            .map_err(|e| CgroupError::os("inotify_init1")(e.into()))?;
        for name in ["memory.events", "cgroup.events"] {
            let path = dir.join(name);
            inotify
                .add_watch(&path, AddWatchFlags::IN_MODIFY)
                .map_err(|e| CgroupError::path("inotify watch", &path)(e.into()))?;
        }
        Ok(MemoryEventsWatch {
            inotify,
            dir: dir.to_path_buf(),
            last_oom_kill: 0,
        })
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.inotify.as_fd()
    }

    pub fn on_ready(&mut self) -> Outcome {
        let mut changed = false;
        loop {
            match self.inotify.read_events() {
                Ok(events) if !events.is_empty() => changed = true,
                Ok(_) | Err(Errno::EAGAIN) => break,
                Err(_) => {
                    return Outcome {
                        oom: false,
                        ended: true,
                    }
                }
            }
        }
        if !changed {
            return Outcome::default();
        }
        let empty = self.cgroup_is_empty();
        let Ok(events) = read_kv(&self.dir.join("memory.events")) else {
            return Outcome {
                oom: false,
                ended: true,
            };
        };
        let oom_kill = events_from(&events).oom_kill;
        let oom = oom_kill > self.last_oom_kill;
        if oom_kill > 0 {
            self.last_oom_kill = oom_kill;
        }
        Outcome { oom, ended: empty }
    }

    /// cgroup.events says `populated 0`, or cannot be read: nothing is left to OOM.
    fn cgroup_is_empty(&self) -> bool {
        let path = self.dir.join("cgroup.events");
        match read_kv(&path) {
            Ok(events) => events.get("populated").map_or(true, |p| *p == 0),
            Err(_) => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroup::fake::FakeDir;

    fn events(oom_kill: u64, high: u64) -> String {
        format!(
            "low 0\nhigh {high}\nmax 0\noom {oom_kill}\noom_kill {oom_kill}\noom_group_kill 0\n"
        )
    }

    fn cgroup(dir: &FakeDir) -> MemoryEventsWatch {
        dir.write("g/memory.events", &events(0, 0));
        dir.write("g/cgroup.events", "populated 1\nfrozen 0\n");
        match MemoryEventsWatch::register(&dir.join("g")) {
            Ok(w) => w,
            Err(e) => panic!("register: {e}"),
        }
    }

    const QUIET: Outcome = Outcome {
        oom: false,
        ended: false,
    };
    const OOM: Outcome = Outcome {
        oom: true,
        ended: false,
    };

    #[test]
    fn only_a_growing_oom_kill_counter_is_an_oom() {
        let dir = FakeDir::new();
        let mut watch = cgroup(&dir);
        assert_eq!(watch.on_ready(), QUIET, "no change yet");
        dir.write("g/memory.events", &events(0, 5));
        assert_eq!(watch.on_ready(), QUIET, "high grew, oom_kill did not");
        dir.write("g/memory.events", &events(1, 5));
        assert_eq!(watch.on_ready(), OOM);
        dir.write("g/memory.events", &events(1, 6));
        assert_eq!(watch.on_ready(), QUIET, "same oom_kill again");
        dir.write("g/memory.events", &events(3, 6));
        assert_eq!(
            watch.on_ready(),
            OOM,
            "two kills between reads are one report"
        );
        dir.write("g/memory.events", &events(4, 6));
        assert_eq!(watch.on_ready(), OOM);
        assert_eq!(watch.on_ready(), QUIET, "nothing new written");
    }

    #[test]
    fn an_emptied_cgroup_ends_the_watch_after_its_last_report() {
        let dir = FakeDir::new();
        let mut watch = cgroup(&dir);
        dir.write("g/memory.events", &events(1, 0));
        dir.write("g/cgroup.events", "populated 0\nfrozen 0\n");
        assert_eq!(
            watch.on_ready(),
            Outcome {
                oom: true,
                ended: true
            }
        );
        let populated =
            crate::cgroup::files::read_kv_value_v2(&dir.join("g/cgroup.events"), "populated");
        assert_eq!(populated, 0);
    }

    #[test]
    fn an_unreadable_memory_events_ends_the_watch() {
        let dir = FakeDir::new();
        let mut watch = cgroup(&dir);
        dir.write("g/memory.events", "oom_kill lots\n");
        assert_eq!(
            watch.on_ready(),
            Outcome {
                oom: false,
                ended: true
            }
        );
    }

    #[test]
    fn a_cgroup_without_memory_events_cannot_be_watched() {
        let dir = FakeDir::new();
        dir.write("g/cgroup.events", "populated 1\n");
        let err = MemoryEventsWatch::register(&dir.join("g")).err();
        assert!(
            matches!(err, Some(CgroupError::Path { ref path, .. }) if path.ends_with("memory.events"))
        );
    }
}
