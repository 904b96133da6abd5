//! The offline images of the CRI tests: one OCI layout tar holding a pause image and a busybox
//! test image, both one layer of Debian's static busybox, for `ctr images import`.

use std::fs;
use std::io;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use e2e_kit::proc;

use serde_json::json;
use sha2::{Digest, Sha256};

/// The sandbox image: the pinned `sandbox` image of the CRI config.
pub const PAUSE: &str = "localhost/cri-e2e/pause:1";
/// The containers' image: busybox with every applet, `sh` by default.
pub const BUSYBOX: &str = "localhost/cri-e2e/busybox:1";

/// The pause process: pid 1 of the pod, sleeps until SIGTERM (or SIGINT), then exits 0.
pub const PAUSE_SCRIPT: &str = "trap 'exit 0' TERM INT; while :; do sleep 3600 & wait $!; done";

const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const LAYER: &str = "application/vnd.oci.image.layer.v1.tar";

/// The OCI architecture of this machine (`amd64`, `arm64`, …).
pub fn arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Writes `data` as a blob of the layout at `dir`; returns its descriptor (digest and size).
fn blob(dir: &Path, media_type: &str, data: &[u8]) -> io::Result<serde_json::Value> {
    let hex = sha256_hex(data);
    fs::write(dir.join("blobs/sha256").join(&hex), data)?;
    Ok(json!({"mediaType": media_type, "digest": format!("sha256:{hex}"), "size": data.len()}))
}

/// Runs `cmd` through e2e-kit (whose reaper owns every child's status); its stdout.
fn run(cmd: &mut Command) -> io::Result<String> {
    let what = format!("{cmd:?}");
    let cmd = std::mem::replace(cmd, Command::new("true"));
    let out = proc::run(cmd, Duration::from_secs(60), None);
    if out.code() == Some(0) {
        Ok(out.stdout)
    } else {
        Err(io::Error::other(format!("{what}: {out}")))
    }
}

/// A rootfs of `/usr/bin/busybox` with a symlink per applet it lists, and the usual empty dirs.
fn rootfs(dir: &Path) -> io::Result<()> {
    let bin = dir.join("bin");
    fs::create_dir_all(&bin)?;
    for d in ["proc", "sys", "dev", "tmp", "etc", "root", "var/log"] {
        fs::create_dir_all(dir.join(d))?;
    }
    fs::write(dir.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n")?;
    fs::write(dir.join("etc/group"), "root:x:0:\n")?;
    fs::copy("/usr/bin/busybox", bin.join("busybox"))?;
    let list = run(Command::new("/usr/bin/busybox").arg("--list"))?;
    for applet in list.split_whitespace() {
        if applet != "busybox" && !applet.contains('/') {
            symlink("busybox", bin.join(applet))?;
        }
    }
    Ok(())
}

/// An image of the layout: its config and manifest blobs, and its index entry named `name`.
fn image(
    dir: &Path,
    name: &str,
    layer: &serde_json::Value,
    diff_id: &str,
    config: serde_json::Value,
) -> io::Result<serde_json::Value> {
    let cfg = json!({
        "architecture": arch(),
        "os": "linux",
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    });
    let cfg = blob(dir, CONFIG, cfg.to_string().as_bytes())?;
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": cfg,
        "layers": [layer],
    });
    let mut desc = blob(dir, MANIFEST, manifest.to_string().as_bytes())?;
    let tag = name.rsplit_once(':').map_or("latest", |(_, t)| t);
    desc["annotations"] = json!({
        "io.containerd.image.name": name,
        "org.opencontainers.image.ref.name": tag,
    });
    desc["platform"] = json!({"architecture": arch(), "os": "linux"});
    Ok(desc)
}

/// Builds `<work>/images.tar`, an OCI layout with [`PAUSE`] and [`BUSYBOX`]; returns its path.
/// `work` is scratch space (made, and left for the caller to remove).
pub fn build(work: &Path) -> io::Result<PathBuf> {
    let root = work.join("rootfs");
    let layout = work.join("layout");
    let _ = fs::remove_dir_all(work);
    fs::create_dir_all(layout.join("blobs/sha256"))?;
    rootfs(&root)?;
    let layer_tar = work.join("layer.tar");
    run(Command::new("tar")
        .args(["--sort=name", "--owner=0", "--group=0", "--numeric-owner"])
        .args(["--mtime=@0", "-C"])
        .arg(&root)
        .arg("-cf")
        .arg(&layer_tar)
        .arg("."))?;
    let layer_bytes = fs::read(&layer_tar)?;
    let layer = blob(&layout, LAYER, &layer_bytes)?;
    let diff_id = format!("sha256:{}", sha256_hex(&layer_bytes));
    let pause = image(
        &layout,
        PAUSE,
        &layer,
        &diff_id,
        json!({"Env": ["PATH=/bin"], "Entrypoint": ["/bin/sh", "-c", PAUSE_SCRIPT], "WorkingDir": "/"}),
    )?;
    let busybox = image(
        &layout,
        BUSYBOX,
        &layer,
        &diff_id,
        json!({"Env": ["PATH=/bin"], "Cmd": ["sh"], "WorkingDir": "/"}),
    )?;
    let index = json!({"schemaVersion": 2, "manifests": [pause, busybox]});
    fs::write(layout.join("index.json"), index.to_string())?;
    fs::write(
        layout.join("oci-layout"),
        json!({"imageLayoutVersion": "1.0.0"}).to_string(),
    )?;
    let tar = work.join("images.tar");
    run(Command::new("tar")
        .args(["--sort=name", "--owner=0", "--group=0", "--numeric-owner"])
        .args(["--mtime=@0", "-C"])
        .arg(&layout)
        .arg("-cf")
        .arg(&tar)
        .arg("."))?;
    Ok(tar)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_layout_names_both_images_and_every_blob_matches_its_digest() {
        let work = std::env::temp_dir().join(format!("cri-e2e-image-{}", std::process::id()));
        let tar = build(&work).expect("build");
        assert!(tar.is_file());
        let layout = work.join("layout");
        let index: serde_json::Value =
            serde_json::from_slice(&fs::read(layout.join("index.json")).expect("index"))
                .expect("index json");
        let names: Vec<&str> = index["manifests"]
            .as_array()
            .expect("manifests")
            .iter()
            .map(|m| {
                m["annotations"]["io.containerd.image.name"]
                    .as_str()
                    .expect("name")
            })
            .collect();
        assert_eq!(names, [PAUSE, BUSYBOX]);
        for entry in fs::read_dir(layout.join("blobs/sha256")).expect("blobs") {
            let entry = entry.expect("blob");
            let data = fs::read(entry.path()).expect("read blob");
            assert_eq!(sha256_hex(&data), entry.file_name().to_string_lossy());
        }
        let _ = fs::remove_dir_all(&work);
    }
}
