//! v1 blkio controller: the recursive per-device counters (or the throttle ones), as cgroup1 reads them.

use std::collections::HashMap;
use std::path::Path;

use super::Metrics;
use crate::cgroup::files::read;
use crate::cgroup::CgroupError;

/// `io.containerd.cgroups.v1.BlkIOStat`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlkioStat {
    /// blkio.io_service_bytes_recursive, else blkio.throttle.io_service_bytes
    pub io_service_bytes_recursive: Vec<BlkioEntry>,
    /// blkio.io_serviced_recursive, else blkio.throttle.io_serviced
    pub io_serviced_recursive: Vec<BlkioEntry>,
    /// blkio.io_queued_recursive
    pub io_queued_recursive: Vec<BlkioEntry>,
    /// blkio.io_service_time_recursive
    pub io_service_time_recursive: Vec<BlkioEntry>,
    /// blkio.io_wait_time_recursive
    pub io_wait_time_recursive: Vec<BlkioEntry>,
    /// blkio.io_merged_recursive
    pub io_merged_recursive: Vec<BlkioEntry>,
    /// blkio.time_recursive
    pub io_time_recursive: Vec<BlkioEntry>,
    /// blkio.sectors_recursive
    pub sectors_recursive: Vec<BlkioEntry>,
}

/// `io.containerd.cgroups.v1.BlkIOEntry`: one `major:minor [op] value` line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlkioEntry {
    /// "Read", "Write", "Sync", "Async", "Discard", "Total", or "" for a line without one.
    pub op: String,
    /// `/dev/<name>` from /proc/partitions, "" when the device is not listed there.
    pub device: String,
    pub major: u64,
    pub minor: u64,
    pub value: u64,
}

type Devices = HashMap<(u64, u64), String>;

/// cgroup1's order: `m.blkio` is set first; the CFQ/BFQ recursive files when
/// blkio.io_serviced_recursive exists, and when they gave no entry at all the throttle files.
pub(super) fn read_blkio(dir: &Path, proc: &Path, m: &mut Metrics) -> Result<(), CgroupError> {
    let stat = m.blkio.insert(BlkioStat::default());
    let mut files: Vec<(&str, &mut Vec<BlkioEntry>)> = Vec::new();
    let recursive = dir
        .join("blkio.io_serviced_recursive")
        .symlink_metadata()
        .is_ok();
    let devices = devices(&proc.join("partitions"))?;
    if recursive {
        files.extend([
            ("sectors_recursive", &mut stat.sectors_recursive),
            (
                "io_service_bytes_recursive",
                &mut stat.io_service_bytes_recursive,
            ),
            ("io_serviced_recursive", &mut stat.io_serviced_recursive),
            ("io_queued_recursive", &mut stat.io_queued_recursive),
            (
                "io_service_time_recursive",
                &mut stat.io_service_time_recursive,
            ),
            ("io_wait_time_recursive", &mut stat.io_wait_time_recursive),
            ("io_merged_recursive", &mut stat.io_merged_recursive),
            ("time_recursive", &mut stat.io_time_recursive),
        ]);
    }
    let mut size = 0;
    for (name, entries) in files {
        read_entries(&dir.join(format!("blkio.{name}")), &devices, entries)?;
        size += entries.len();
    }
    if size > 0 {
        return Ok(());
    }
    read_entries(
        &dir.join("blkio.throttle.io_serviced"),
        &devices,
        &mut stat.io_serviced_recursive,
    )?;
    read_entries(
        &dir.join("blkio.throttle.io_service_bytes"),
        &devices,
        &mut stat.io_service_bytes_recursive,
    )
}

/// `major minor #blocks name` lines after two header lines; the first name of a device wins.
fn devices(path: &Path) -> Result<Devices, CgroupError> {
    let mut out = Devices::new();
    for line in read(path)?.lines().skip(2) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [major, minor, _, name, ..] = fields[..] else {
            continue;
        };
        let (Ok(major), Ok(minor)) = (major.parse(), minor.parse()) else {
            return Err(CgroupError::parse(
                path,
                line,
                "expected major and minor numbers",
            ));
        };
        out.entry((major, minor))
            .or_insert_with(|| format!("/dev/{name}"));
    }
    Ok(out)
}

/// `8:0 Read 4096`, `8:0 4096` (no op), and a `Total 4096` line that is skipped.
fn read_entries(
    path: &Path,
    devices: &Devices,
    entries: &mut Vec<BlkioEntry>,
) -> Result<(), CgroupError> {
    for line in read(path)?.lines().filter(|l| !l.trim().is_empty()) {
        let fields: Vec<&str> = line.split([' ', ':']).filter(|f| !f.is_empty()).collect();
        if fields.len() < 3 {
            if fields.len() == 2 && fields[0] == "Total" {
                continue;
            }
            return Err(CgroupError::parse(path, line, "invalid blkio line"));
        }
        let number = |s: &str| {
            s.parse::<u64>()
                .map_err(|_| CgroupError::parse(path, line, "expected a number"))
        };
        let (major, minor) = (number(fields[0])?, number(fields[1])?);
        let (op, value) = if fields.len() == 4 {
            (fields[2], fields[3])
        } else {
            ("", fields[2])
        };
        entries.push(BlkioEntry {
            op: op.to_string(),
            device: devices.get(&(major, minor)).cloned().unwrap_or_default(),
            major,
            minor,
            value: number(value)?,
        });
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::cgroup::fake::FakeDir;

    pub(crate) const PARTITIONS: &str =
        "major minor  #blocks  name\n\n 254        0  268435456 vda\n 254        1  1000 vda1\n";

    fn entry(op: &str, device: &str, minor: u64, value: u64) -> BlkioEntry {
        BlkioEntry {
            op: op.into(),
            device: device.into(),
            major: 254,
            minor,
            value,
        }
    }

    /// The throttle files only, as on a host without CFQ/BFQ (like this one).
    pub(crate) fn fill_throttle(dir: &FakeDir, at: &str) {
        dir.write(
            &format!("{at}/blkio.throttle.io_service_bytes"),
            "254:0 Read 4096\n254:0 Write 8192\n9:9 Read 1\nTotal 12289\n",
        );
        dir.write(
            &format!("{at}/blkio.throttle.io_serviced"),
            "254:1 Read 2\nTotal 2\n",
        );
    }

    #[test]
    fn throttle_files_fill_the_two_recursive_lists_with_device_names() {
        let dir = FakeDir::new();
        dir.write("proc/partitions", PARTITIONS);
        fill_throttle(&dir, "b");
        let mut m = Metrics::default();
        assert!(read_blkio(&dir.join("b"), &dir.join("proc"), &mut m).is_ok());
        let stat = m.blkio.unwrap_or_default();
        assert_eq!(
            stat.io_service_bytes_recursive,
            [
                entry("Read", "/dev/vda", 0, 4096),
                entry("Write", "/dev/vda", 0, 8192),
                BlkioEntry {
                    op: "Read".into(),
                    device: String::new(),
                    major: 9,
                    minor: 9,
                    value: 1,
                },
            ]
        );
        assert_eq!(
            stat.io_serviced_recursive,
            [entry("Read", "/dev/vda1", 1, 2)]
        );
        assert!(stat.sectors_recursive.is_empty());
    }

    #[test]
    fn recursive_files_fill_all_eight_lists() {
        let dir = FakeDir::new();
        dir.write("proc/partitions", PARTITIONS);
        fill_throttle(&dir, "b");
        let names = [
            "sectors_recursive",
            "io_service_bytes_recursive",
            "io_serviced_recursive",
            "io_queued_recursive",
            "io_service_time_recursive",
            "io_wait_time_recursive",
            "io_merged_recursive",
            "time_recursive",
        ];
        for (i, name) in names.iter().enumerate() {
            let text = if name.ends_with("sectors_recursive") || *name == "time_recursive" {
                format!("254:0 {i}\n")
            } else {
                format!("254:0 Read {i}\nTotal {i}\n")
            };
            dir.write(&format!("b/blkio.{name}"), &text);
        }
        let mut m = Metrics::default();
        assert!(read_blkio(&dir.join("b"), &dir.join("proc"), &mut m).is_ok());
        let s = m.blkio.unwrap_or_default();
        assert_eq!(s.sectors_recursive, [entry("", "/dev/vda", 0, 0)]);
        assert_eq!(
            s.io_service_bytes_recursive,
            [entry("Read", "/dev/vda", 0, 1)]
        );
        assert_eq!(s.io_serviced_recursive, [entry("Read", "/dev/vda", 0, 2)]);
        assert_eq!(s.io_queued_recursive, [entry("Read", "/dev/vda", 0, 3)]);
        assert_eq!(
            s.io_service_time_recursive,
            [entry("Read", "/dev/vda", 0, 4)]
        );
        assert_eq!(s.io_wait_time_recursive, [entry("Read", "/dev/vda", 0, 5)]);
        assert_eq!(s.io_merged_recursive, [entry("Read", "/dev/vda", 0, 6)]);
        assert_eq!(s.io_time_recursive, [entry("", "/dev/vda", 0, 7)]);
    }

    #[test]
    fn empty_recursive_files_fall_back_to_the_throttle_ones() {
        let dir = FakeDir::new();
        dir.write("proc/partitions", PARTITIONS);
        fill_throttle(&dir, "b");
        for name in [
            "sectors_recursive",
            "io_service_bytes_recursive",
            "io_serviced_recursive",
            "io_queued_recursive",
            "io_service_time_recursive",
            "io_wait_time_recursive",
            "io_merged_recursive",
            "time_recursive",
        ] {
            dir.write(&format!("b/blkio.{name}"), "Total 0\n");
        }
        let mut m = Metrics::default();
        assert!(read_blkio(&dir.join("b"), &dir.join("proc"), &mut m).is_ok());
        let s = m.blkio.unwrap_or_default();
        assert_eq!(s.io_serviced_recursive, [entry("Read", "/dev/vda1", 1, 2)]);
        assert_eq!(s.io_service_bytes_recursive.len(), 3);
    }

    #[test]
    fn a_malformed_line_is_an_error() {
        let dir = FakeDir::new();
        dir.write("proc/partitions", PARTITIONS);
        dir.write("b/blkio.throttle.io_serviced", "254:0\n");
        let mut m = Metrics::default();
        assert!(read_blkio(&dir.join("b"), &dir.join("proc"), &mut m)
            .is_err_and(|e| matches!(e, CgroupError::Parse { .. })));
    }
}
