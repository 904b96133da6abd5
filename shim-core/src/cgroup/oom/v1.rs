//! v1 OOM notification: an eventfd registered on memory.oom_control through cgroup.event_control.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::path::{Path, PathBuf};

use nix::sys::eventfd::{EfdFlags, EventFd};

use super::Outcome;
use crate::cgroup::CgroupError;

/// The kernel signals the eventfd once per OOM in the memory cgroup `dir`, and once more when
/// the cgroup is removed (containerd's cgroup1 `OOMEventFD`).
pub(crate) struct OomEventFd {
    efd: EventFd,
    dir: PathBuf,
}

impl OomEventFd {
    /// Write `<eventfd> <memory.oom_control fd>` to `dir/cgroup.event_control`.
    pub fn register(dir: &Path) -> Result<OomEventFd, CgroupError> {
        let efd = EventFd::from_flags(EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)
            .map_err(|e| CgroupError::os("eventfd")(e.into()))?;
        let control_path = dir.join("memory.oom_control");
        let control =
            File::open(&control_path).map_err(CgroupError::path("open", &control_path))?;
        let event_control = dir.join("cgroup.event_control");
        let line = format!("{} {}", efd.as_raw_fd(), control.as_raw_fd());
        OpenOptions::new()
            .write(true)
            .open(&event_control)
            .and_then(|mut f| f.write_all(line.as_bytes()))
            .map_err(CgroupError::path(
                "register OOM eventfd with",
                &event_control,
            ))?;
        // The kernel holds its own reference to memory.oom_control now.
        drop(control);
        Ok(OomEventFd {
            efd,
            dir: dir.to_path_buf(),
        })
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.efd.as_fd()
    }

    /// Consume the signals. One OOM while the cgroup is there (containerd reports one TaskOOM
    /// per wake-up); when the cgroup is gone the watch ends, and reports an OOM only if more than
    /// the removal's one signal was pending.
    pub fn on_ready(&mut self) -> Outcome {
        let signals = match self.efd.read() {
            Ok(n) => n,
            Err(_) => return Outcome::default(),
        };
        let gone =
            matches!(self.dir.symlink_metadata(), Err(e) if e.kind() == io::ErrorKind::NotFound);
        if gone {
            Outcome {
                oom: signals >= 2,
                ended: true,
            }
        } else {
            Outcome {
                oom: signals > 0,
                ended: false,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroup::fake::FakeDir;

    fn memory_dir(dir: &FakeDir) -> PathBuf {
        dir.write(
            "mem/memory.oom_control",
            "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n",
        );
        dir.write("mem/cgroup.event_control", "");
        dir.join("mem")
    }

    #[test]
    fn registration_names_the_eventfd_and_the_oom_control_fd() {
        let dir = FakeDir::new();
        let watch = OomEventFd::register(&memory_dir(&dir));
        let watch = watch.ok();
        let written = std::fs::read_to_string(dir.join("mem/cgroup.event_control")).ok();
        let fds: Vec<i32> = written
            .iter()
            .flat_map(|w| w.split(' ').map(|f| f.parse().unwrap_or(-1)))
            .collect();
        assert_eq!(fds.len(), 2, "{written:?}");
        assert_eq!(Some(fds[0]), watch.as_ref().map(|w| w.fd().as_raw_fd()));
        assert!(fds[1] >= 0);
    }

    #[test]
    fn each_wake_up_is_one_oom_until_the_cgroup_is_gone() {
        let dir = FakeDir::new();
        let Ok(mut watch) = OomEventFd::register(&memory_dir(&dir)) else {
            panic!("register");
        };
        assert_eq!(watch.on_ready(), Outcome::default(), "nothing signalled");
        assert!(watch.efd.write(1).is_ok());
        assert_eq!(
            watch.on_ready(),
            Outcome {
                oom: true,
                ended: false
            }
        );
        assert!(watch.efd.write(3).is_ok());
        assert_eq!(
            watch.on_ready(),
            Outcome {
                oom: true,
                ended: false
            }
        );

        std::fs::remove_dir_all(dir.join("mem")).ok();
        assert!(watch.efd.write(1).is_ok());
        assert_eq!(
            watch.on_ready(),
            Outcome {
                oom: false,
                ended: true
            },
            "removal alone"
        );
        assert!(watch.efd.write(2).is_ok());
        assert_eq!(
            watch.on_ready(),
            Outcome {
                oom: true,
                ended: true
            },
            "OOM then removal"
        );
    }

    #[test]
    fn a_cgroup_without_event_control_is_an_error_naming_the_file() {
        let dir = FakeDir::new();
        dir.write("mem/memory.oom_control", "");
        let err = OomEventFd::register(&dir.join("mem")).err();
        assert!(matches!(
            err,
            Some(CgroupError::Path { what: "register OOM eventfd with", ref path, .. })
                if path.ends_with("cgroup.event_control")
        ));
    }
}
