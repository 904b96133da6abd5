//! The release build of a binary we ship: statically linked, not position-independent.
//!
//! Why: a node runs one shim per container (v1) or pod (v2), so what each shim holds privately
//! is what counts. Measured on an idle shim-runc-v1 with one container (smaps, anonymous +
//! private dirty): dynamic PIE 288 KiB, static PIE 244 KiB, static non-PIE 212 KiB. Dynamic
//! linking costs each process its own relocated copies of libc's, libgcc_s's and ld.so's data
//! and GOTs; PIE costs it its own relocated .data.rel.ro. A static non-PIE binary maps all of
//! that clean from the page cache, shared by every shim. Go's shims are non-PIE executables too.
//! (ASLR still covers the stack, heap and mmaps.) glibc's static archive comes with libc6-dev,
//! which `cargo xtask deps` installs; the shims use nothing of glibc that needs dlopen (NSS).
//!
//! The flags go to the final link only (`cargo rustc`): proc-macro crates cannot be built with
//! `crt-static`, so RUSTFLAGS cannot carry them.

use std::path::PathBuf;

use anyhow::Result;

use crate::run::{cargo, step, target_dir};

/// Build `bin` of `package` in release mode, static and non-PIE; its path.
pub fn build(package: &str, bin: &str) -> Result<PathBuf> {
    step(
        &format!("build {bin} (release, static)"),
        cargo().args([
            "rustc",
            "--release",
            "-p",
            package,
            "--bin",
            bin,
            "--",
            "-C",
            "target-feature=+crt-static",
            "-C",
            "relocation-model=static",
        ]),
    )?;
    Ok(target_dir().join("release").join(bin))
}
