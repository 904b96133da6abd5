//! v2 io: io.stat's per-device byte and operation counts and io.pressure, as cgroup2 reads them.

use std::path::Path;

use super::psi::{self, PsiStats};

/// `io.containerd.cgroups.v2.IOStat`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IoStat {
    /// One entry per io.stat line.
    pub usage: Vec<IoEntry>,
    /// io.pressure
    pub psi: Option<PsiStats>,
}

/// `io.containerd.cgroups.v2.IOEntry`: `major:minor rbytes=.. wbytes=.. rios=.. wios=.. ...`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IoEntry {
    pub major: u64,
    pub minor: u64,
    pub rbytes: u64,
    pub wbytes: u64,
    pub rios: u64,
    pub wios: u64,
}

/// Never an error, as in cgroup2: a missing file is no entry; a line that is not `maj:min ...`
/// is skipped; a bad major or minor ends the list there; a bad value is left at 0.
pub(crate) fn read(dir: &Path) -> IoStat {
    IoStat {
        usage: usage(dir),
        psi: psi::read(&dir.join("io.pressure")),
    }
}

fn usage(dir: &Path) -> Vec<IoEntry> {
    let mut out = Vec::new();
    let Ok(text) = std::fs::read_to_string(dir.join("io.stat")) else {
        return out;
    };
    for line in text.split('\n') {
        let parts: Vec<&str> = line.split(' ').collect();
        if parts.len() < 2 {
            continue;
        }
        let Some((major, minor)) = parts[0].split_once(':') else {
            continue;
        };
        if minor.contains(':') {
            continue;
        }
        let (Ok(major), Ok(minor)) = (major.parse(), minor.parse()) else {
            return out;
        };
        let mut entry = IoEntry {
            major,
            minor,
            ..IoEntry::default()
        };
        for kv in &parts[1..] {
            let Some((key, value)) = kv.split_once('=') else {
                continue;
            };
            let Ok(value) = value.parse::<u64>() else {
                continue;
            };
            match key {
                "rbytes" => entry.rbytes = value,
                "wbytes" => entry.wbytes = value,
                "rios" => entry.rios = value,
                "wios" => entry.wios = value,
                _ => {}
            }
        }
        out.push(entry);
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::cgroup::fake::FakeDir;

    pub(crate) const IO_STAT: &str =
        "254:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n\
8:16 rbytes=1 wbytes=2 rios=3 wios=4\n";

    #[test]
    fn each_line_is_an_entry_with_its_four_counters() {
        let dir = FakeDir::new();
        dir.write("io.stat", IO_STAT);
        let got = read(dir.path());
        assert_eq!(
            got.usage,
            [
                IoEntry {
                    major: 254,
                    minor: 0,
                    rbytes: 4096,
                    wbytes: 8192,
                    rios: 1,
                    wios: 2,
                },
                IoEntry {
                    major: 8,
                    minor: 16,
                    rbytes: 1,
                    wbytes: 2,
                    rios: 3,
                    wios: 4,
                },
            ]
        );
        assert_eq!(got.psi, None);
    }

    #[test]
    fn odd_lines_are_skipped_and_a_bad_device_ends_the_list() {
        let dir = FakeDir::new();
        dir.write(
            "io.stat",
            "junk\n1:2 rbytes=x wbytes=5\nx:1 rbytes=1\n3:4 rbytes=1\n",
        );
        let got = read(dir.path()).usage;
        assert_eq!(
            got,
            [IoEntry {
                major: 1,
                minor: 2,
                wbytes: 5,
                ..IoEntry::default()
            }]
        );
        assert!(read(FakeDir::new().path()).usage.is_empty());
    }
}
