//! `cargo xtask install [--prefix DIR]`: release binaries (static, see release.rs) into DIR/bin,
//! each replaced atomically.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::run::which;

/// The binaries we install: (package, binary). containerd 1.7 and 2.x find the v2 shim on PATH by
/// its name: runtime `io.containerd.rsrunc.v2` runs `containerd-shim-rsrunc-v2`.
const BINARIES: [(&str, &str); 4] = [
    ("shim-runc-v1", "shim-runc-v1"),
    ("shim-runc-v2", "containerd-shim-rsrunc-v2"),
    ("shim-ctl", "shim-ctl"),
    ("reaper", "reaper"),
];

pub fn run(args: &[String]) -> Result<()> {
    let prefix = match args {
        [] => PathBuf::from("/usr/local"),
        [flag, dir] if flag == "--prefix" => PathBuf::from(dir),
        [arg] if arg.starts_with("--prefix=") => PathBuf::from(&arg["--prefix=".len()..]),
        _ => bail!("usage: cargo xtask install [--prefix DIR]"),
    };
    require_protoc()?;
    let mut built = Vec::new();
    for (package, name) in BINARIES {
        built.push((name, crate::release::build(package, name)?));
    }
    let bin = prefix.join("bin");
    std::fs::create_dir_all(&bin).with_context(|| format!("create {}", bin.display()))?;
    for (name, from) in built {
        let to = bin.join(name);
        install(&from, &to)?;
        println!("installed {}", to.display());
    }
    Ok(())
}

/// The build compiles the shim's protos with protoc (`PROTOC`, else the one on PATH): say so up
/// front rather than fail deep in a build script.
fn require_protoc() -> Result<()> {
    let found = match std::env::var_os("PROTOC") {
        Some(path) => Path::new(&path).is_file(),
        None => which("protoc").is_some(),
    };
    if !found {
        bail!(
            "protoc not found (PROTOC unset or not a file, and none on PATH): the build needs it. \
             Run `cargo xtask deps` as root (installs protobuf-compiler), or set PROTOC"
        );
    }
    Ok(())
}

/// Copy to a temporary name beside `to`, make it 0755, then rename over `to`.
fn install(from: &Path, to: &Path) -> Result<()> {
    let name = to.file_name().context("install target has no file name")?;
    let tmp = to.with_file_name(format!(
        ".{}.xtask-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let placed = std::fs::copy(from, &tmp)
        .with_context(|| format!("copy {} to {}", from.display(), tmp.display()))
        .and_then(|_| {
            std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755))
                .with_context(|| format!("chmod {}", tmp.display()))
        })
        .and_then(|()| {
            std::fs::rename(&tmp, to).with_context(|| format!("rename to {}", to.display()))
        });
    if placed.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    placed
}
