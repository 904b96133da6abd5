//! `cargo xtask install [--prefix DIR]`: release binaries onto PATH.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};

use crate::run::{cargo, root, step};

const BINARIES: [(&str, &str); 3] = [
    ("shim-runc-v1", "shim-runc-v1"),
    ("shim-ctl", "shim-ctl"),
    ("reaper", "reaper"),
];

pub fn run(args: &[String]) -> Result<()> {
    let prefix = match args {
        [] => PathBuf::from("/usr/local"),
        [flag, dir] if flag == "--prefix" => PathBuf::from(dir),
        _ => bail!("usage: cargo xtask install [--prefix DIR]"),
    };
    let mut build = cargo();
    build.args(["build", "--release"]);
    for (package, _) in BINARIES {
        build.args(["-p", package]);
    }
    step("build --release", &mut build)?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"));
    let bin = prefix.join("bin");
    std::fs::create_dir_all(&bin).with_context(|| format!("create {}", bin.display()))?;
    for (_, name) in BINARIES {
        let from = target.join("release").join(name);
        let to = bin.join(name);
        let tmp = bin.join(format!(".{name}.xtask-tmp"));
        std::fs::copy(&from, &tmp)
            .with_context(|| format!("copy {} to {}", from.display(), tmp.display()))?;
        std::fs::set_permissions(&tmp, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
        std::fs::rename(&tmp, &to).with_context(|| format!("install {}", to.display()))?;
        println!("installed {}", to.display());
    }
    Ok(())
}
