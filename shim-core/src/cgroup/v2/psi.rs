//! v2 pressure stall information: a `*.pressure` file's some/full lines, as cgroup2 reads them.

use std::path::Path;

/// `io.containerd.cgroups.v2.PSIStats`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PsiStats {
    pub some: Option<PsiData>,
    pub full: Option<PsiData>,
}

/// `io.containerd.cgroups.v2.PSIData`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PsiData {
    pub avg10: f64,
    pub avg60: f64,
    pub avg300: f64,
    pub total: u64,
}

/// The file's PSI; `None` when it cannot be read (no PSI in this kernel, controller off) or a
/// value does not parse: cgroup2 drops PSI then and keeps the rest.
pub(crate) fn read(path: &Path) -> Option<PsiStats> {
    let text = std::fs::read_to_string(path).ok()?;
    let mut out = PsiStats::default();
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        let slot = match fields.next() {
            Some("some") => &mut out.some,
            Some("full") => &mut out.full,
            _ => continue,
        };
        let data = slot.insert(PsiData::default());
        for field in fields {
            let (key, value) = field.split_once('=')?;
            match key {
                "avg10" => data.avg10 = value.parse().ok()?,
                "avg60" => data.avg60 = value.parse().ok()?,
                "avg300" => data.avg300 = value.parse().ok()?,
                "total" => data.total = value.parse().ok()?,
                _ => {}
            }
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroup::fake::FakeDir;

    #[test]
    fn some_and_full_lines_fill_their_halves() {
        let dir = FakeDir::new();
        dir.write(
            "cpu.pressure",
            "some avg10=1.50 avg60=0.25 avg300=0.00 total=12345\nfull avg10=0.00 avg60=0.00 avg300=0.10 total=7\n",
        );
        assert_eq!(
            read(&dir.join("cpu.pressure")),
            Some(PsiStats {
                some: Some(PsiData {
                    avg10: 1.5,
                    avg60: 0.25,
                    avg300: 0.0,
                    total: 12345,
                }),
                full: Some(PsiData {
                    avg10: 0.0,
                    avg60: 0.0,
                    avg300: 0.1,
                    total: 7,
                }),
            })
        );
    }

    #[test]
    fn a_missing_or_malformed_file_is_no_psi() {
        let dir = FakeDir::new();
        dir.write("bad", "some avg10\n");
        assert_eq!(read(&dir.join("bad")), None);
        dir.write("bad", "some total=x\n");
        assert_eq!(read(&dir.join("bad")), None);
        assert_eq!(read(&dir.join("missing")), None);
    }
}
