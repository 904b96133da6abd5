//! `cargo xtask deps`: install the Debian packages the build and the tests need, if missing.

use std::path::Path;
use std::process::Command;

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
        what: "protoc",
        package: "protobuf-compiler",
        check: Check::Command("protoc"),
    },
    Need {
        what: "protobuf includes",
        package: "libprotobuf-dev",
        check: Check::File("/usr/include/google/protobuf/empty.proto"),
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
        what: "containerd-shim (Go reference)",
        package: "containerd",
        check: Check::Command("containerd-shim"),
    },
    Need {
        what: "static busybox",
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
        what: "unshare/nsenter",
        package: "util-linux",
        check: Check::Command("nsenter"),
    },
    Need {
        what: "script",
        package: "bsdutils",
        check: Check::Command("script"),
    },
];

pub fn run() -> Result<()> {
    let mut missing: Vec<&str> = Vec::new();
    for need in NEEDS {
        let present = match need.check {
            Check::Command(c) => which(c).is_some(),
            Check::File(f) => Path::new(f).exists(),
            Check::Package => package_installed(need.package),
        };
        println!(
            "{} {} ({})",
            if present { "ok     " } else { "missing" },
            need.what,
            need.package
        );
        if !present && !missing.contains(&need.package) {
            missing.push(need.package);
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { geteuid() } != 0 || which("apt-get").is_none() {
        bail!(
            "missing packages: {}. Install them as root: apt-get install {}",
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
            .args(["install", "-y", "-qq", "--no-install-recommends"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )
}

fn package_installed(name: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", name])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
        .unwrap_or(false)
}

extern "C" {
    fn geteuid() -> u32;
}
