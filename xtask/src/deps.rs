//! `cargo xtask deps`: install the Debian packages the build and the tests need, if missing.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{bail, Result};

use crate::run::{step, which};

/// What must be present, how to tell, and which package brings it.
struct Need {
    what: &'static str,
    package: &'static str,
    check: Check,
}

enum Check {
    Command(&'static str),
    File(&'static str),
    Package,
}

const NEEDS: &[Need] = &[
    Need {
        what: "C linker",
        package: "gcc",
        check: Check::Command("cc"),
    },
    Need {
        what: "C library for linking",
        package: "libc6-dev",
        check: Check::Package,
    },
    Need {
        what: "protoc",
        package: "protobuf-compiler",
        check: Check::Command("protoc"),
    },
    Need {
        what: "runc",
        package: "runc",
        check: Check::Command("runc"),
    },
    Need {
        what: "containerd",
        package: "containerd",
        check: Check::Command("containerd"),
    },
    Need {
        what: "ctr",
        package: "containerd",
        check: Check::Command("ctr"),
    },
    Need {
        what: "containerd-shim",
        package: "containerd",
        check: Check::Command("containerd-shim"),
    },
    Need {
        what: "busybox-static",
        package: "busybox-static",
        check: Check::Package,
    },
    Need {
        what: "criu",
        package: "criu",
        check: Check::Command("criu"),
    },
    Need {
        what: "strace",
        package: "strace",
        check: Check::Command("strace"),
    },
    Need {
        what: "unshare",
        package: "util-linux",
        check: Check::Command("unshare"),
    },
    Need {
        what: "nsenter",
        package: "util-linux",
        check: Check::Command("nsenter"),
    },
    Need {
        what: "script",
        package: "bsdutils",
        check: Check::Command("script"),
    },
    Need {
        what: "python3 (pdeathsig test)",
        package: "python3",
        check: Check::File("/usr/bin/python3"),
    },
];

/// Check every need, one line each; install the missing packages (apt-get runs only then).
pub fn run() -> Result<()> {
    let installed = installed_packages();
    let can_install = is_root() && which("apt-get").is_some();
    let mut missing: Vec<&str> = Vec::new();
    for need in NEEDS {
        let present = match need.check {
            Check::Command(c) => which(c).is_some(),
            Check::File(f) => Path::new(f).exists(),
            Check::Package => installed.contains_key(need.package),
        };
        if present {
            match installed.get(need.package) {
                Some(version) => println!("ok {} {version}", need.what),
                None => println!("ok {}", need.what),
            }
            continue;
        }
        println!(
            "{} {} (package {})",
            if can_install { "installing" } else { "missing" },
            need.what,
            need.package
        );
        if !missing.contains(&need.package) {
            missing.push(need.package);
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    if !can_install {
        bail!(
            "missing Debian packages: {}. As root: apt-get install {}",
            missing.join(", "),
            missing.join(" ")
        );
    }
    step(
        "apt-get update",
        Command::new("apt-get").args(["update", "-qq"]),
    )?;
    step(
        "apt-get install",
        Command::new("apt-get")
            .args(["install", "-y", "--no-install-recommends"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )
}

/// Installed packages among those we need, with their upstream versions (one dpkg-query call).
fn installed_packages() -> HashMap<String, String> {
    let mut names: Vec<&str> = NEEDS.iter().map(|n| n.package).collect();
    names.sort_unstable();
    names.dedup();
    // dpkg-query exits 1 when a name is unknown, yet still prints the known ones.
    let Ok(out) = Command::new("dpkg-query")
        .args(["-W", "-f=${Package}\t${Status}\t${Version}\n"])
        .args(&names)
        .stderr(Stdio::null())
        .output()
    else {
        return HashMap::new();
    };
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| {
            let mut fields = line.split('\t');
            let (name, status, version) = (fields.next()?, fields.next()?, fields.next()?);
            (status == "install ok installed").then(|| (name.to_string(), upstream(version)))
        })
        .collect()
}

/// `1:1.35.0-4+deb12u1` -> `1.35.0`: drop the epoch, the Debian revision and repack suffixes.
fn upstream(version: &str) -> String {
    let v = version.split_once(':').map_or(version, |(_, v)| v);
    let v = v.rsplit_once('-').map_or(v, |(v, _)| v);
    v.split(['+', '~']).next().unwrap_or(v).to_string()
}

/// Effective uid 0: `/proc/self` belongs to the effective uid.
fn is_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

#[cfg(test)]
mod tests {
    use super::upstream;

    #[test]
    fn debian_versions_are_shown_as_upstream_versions() {
        assert_eq!(upstream("1.1.5+ds1-1+deb12u1"), "1.1.5");
        assert_eq!(upstream("1:1.35.0-4+deb12u1+b1"), "1.35.0");
        assert_eq!(upstream("1.6.20~ds1-1+deb12u3"), "1.6.20");
        assert_eq!(upstream("6.1-0.1"), "6.1");
        assert_eq!(upstream("3.17.1"), "3.17.1");
    }
}
