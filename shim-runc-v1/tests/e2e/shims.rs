//! Which shim binaries the suite runs against (`E2E_SHIMS`, `E2E_SHIM`), and why one is skipped.

use std::env;
use std::path::{Path, PathBuf};

use super::containerd::{Build, Runtime, Setup};
use super::expect::{Expectations, GO, OURS};

pub const GO_SHIM: &str = "/usr/bin/containerd-shim";

/// Whose shim this is: decides the expectations of rows where contract §9 lets them differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShimKind {
    Go,
    Ours,
}

#[derive(Clone, Debug)]
pub struct Shim {
    /// Short label for reports and namespaces: `go`, `ours`.
    pub name: &'static str,
    pub kind: ShimKind,
    pub path: PathBuf,
}

impl Shim {
    pub fn expect(&self) -> &'static Expectations {
        match self.kind {
            ShimKind::Go => &GO,
            ShimKind::Ours => &OURS,
        }
    }

    /// A private containerd for this shim: the system's containerd (1.6), runtime v1.
    pub fn setup(&self) -> Setup {
        Setup {
            label: self.name.to_string(),
            build: Build::system(),
            runtime: Runtime::V1 {
                shim: self.path.clone(),
            },
        }
    }
}

/// A configured shim, or the reason it cannot run here.
pub type Choice = Result<Shim, (String, String)>;

/// `<target>/debug/shim-runc-v1`: cargo's own path when it built the binary for this test,
/// else found next to the test executable (`<target>/debug/deps/<test>`).
pub fn ours_path() -> PathBuf {
    if let Some(p) = option_env!("CARGO_BIN_EXE_shim-runc-v1") {
        return PathBuf::from(p);
    }
    let exe = env::current_exe().unwrap_or_default();
    exe.parent()
        .and_then(Path::parent)
        .map(|d| d.join("shim-runc-v1"))
        .unwrap_or_default()
}

fn kind_of(path: &Path) -> ShimKind {
    if path.file_name().is_some_and(|n| n == "containerd-shim") {
        ShimKind::Go
    } else {
        ShimKind::Ours
    }
}

fn choose(name: &str) -> Choice {
    let (label, kind, path) = match name {
        "go" => ("go", ShimKind::Go, PathBuf::from(GO_SHIM)),
        "ours" => ("ours", ShimKind::Ours, ours_path()),
        other => {
            let p = PathBuf::from(other);
            let k = kind_of(&p);
            let label = if k == ShimKind::Go { "go" } else { "ours" };
            (label, k, p)
        }
    };
    if path.is_file() {
        Ok(Shim {
            name: label,
            kind,
            path,
        })
    } else {
        Err((
            label.to_string(),
            format!("shim binary {} is missing (build it first)", path.display()),
        ))
    }
}

/// `E2E_SHIMS=go,ours` (names or paths) runs every row for each; else `E2E_SHIM=<path>`;
/// else the Go shim alone.
pub fn configured() -> Vec<Choice> {
    if let Ok(list) = env::var("E2E_SHIMS") {
        return list
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(choose)
            .collect();
    }
    let one = env::var("E2E_SHIM").unwrap_or_else(|_| GO_SHIM.to_string());
    vec![choose(&one)]
}
