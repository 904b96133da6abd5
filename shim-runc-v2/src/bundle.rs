//! The bundle files the v2 shim reads and writes besides runc's: `config.json`'s grouping
//! annotations, `address`, `runtime`, `options.json` and `init.pid`.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use shim_proto::runc_v1_options::Options;

/// Spec annotations naming a container's shim group, in Go's order of precedence.
pub const GROUP_ANNOTATIONS: [&str; 2] = [
    "io.containerd.runc.v2.group",
    "io.kubernetes.cri.sandbox-id",
];

/// runc's state root when options.json names none (Go's `process.RuncRoot`).
pub const DEFAULT_RUNC_ROOT: &str = "/run/containerd/runc";

/// Where the runc binary is named when the task's options named one (Go writes it at Create).
const RUNTIME_FILE: &str = "runtime";
/// The task's runc options as JSON (Go writes it at Create).
const OPTIONS_FILE: &str = "options.json";
const ADDRESS_FILE: &str = "address";
const INIT_PID_FILE: &str = "init.pid";

/// The group this bundle's container joins: the first grouping annotation of its spec, if any.
/// An unreadable spec is an error (as in Go: `start` cannot decide without it).
pub fn group(bundle: &Path) -> io::Result<Option<String>> {
    #[derive(Deserialize)]
    struct Spec {
        #[serde(default)]
        annotations: std::collections::HashMap<String, String>,
    }
    let path = bundle.join("config.json");
    let data = fs::read(&path).map_err(|e| context(e, &path))?;
    let spec: Spec = serde_json::from_slice(&data).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: {e}", path.display()),
        )
    })?;
    Ok(GROUP_ANNOTATIONS
        .iter()
        .find_map(|k| spec.annotations.get(*k).cloned()))
}

/// Write the daemon's address to `<bundle>/address` atomically (mode 0644, as Go's atomicfile).
pub fn write_address(bundle: &Path, address: &str) -> io::Result<()> {
    write_atomic(&bundle.join(ADDRESS_FILE), address.as_bytes(), 0o644)
}

/// `<bundle>/address`, if present and not empty.
pub fn read_address(bundle: &Path) -> Option<String> {
    fs::read_to_string(bundle.join(ADDRESS_FILE))
        .ok()
        .filter(|a| !a.is_empty())
}

/// The runc binary the task used: `<bundle>/runtime`, `runc` when missing or empty.
pub fn runtime(bundle: &Path) -> io::Result<String> {
    let path = bundle.join(RUNTIME_FILE);
    match fs::read_to_string(&path) {
        Ok(s) if !s.trim().is_empty() => Ok(s.trim().to_string()),
        Ok(_) => Ok("runc".to_string()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok("runc".to_string()),
        Err(e) => Err(context(e, &path)),
    }
}

/// Record the task's runc options as Go's shim does at Create: `options.json` (Go's JSON of the
/// proto: snake_case names, zero values left out) and `runtime` (the binary name, maybe empty),
/// both 0600. `delete` reads them back after the daemon died.
pub fn write_options(bundle: &Path, o: &Options) -> io::Result<()> {
    let mut m = serde_json::Map::new();
    let mut flag = |k: &str, v: bool| {
        if v {
            m.insert(k.into(), v.into());
        }
    };
    flag("no_pivot_root", o.no_pivot_root);
    flag("no_new_keyring", o.no_new_keyring);
    flag("systemd_cgroup", o.systemd_cgroup);
    let mut number = |k: &str, v: u32| {
        if v != 0 {
            m.insert(k.into(), v.into());
        }
    };
    number("io_uid", o.io_uid);
    number("io_gid", o.io_gid);
    number("task_api_version", o.task_api_version);
    let mut text = |k: &str, v: &str| {
        if !v.is_empty() {
            m.insert(k.into(), v.into());
        }
    };
    text("shim_cgroup", &o.shim_cgroup);
    text("binary_name", &o.binary_name);
    text("root", &o.root);
    text("criu_image_path", &o.criu_image_path);
    text("criu_work_path", &o.criu_work_path);
    text("task_api_address", &o.task_api_address);
    let json = serde_json::Value::Object(m).to_string();
    write_atomic(&bundle.join(OPTIONS_FILE), json.as_bytes(), 0o600)?;
    write_atomic(&bundle.join(RUNTIME_FILE), o.binary_name.as_bytes(), 0o600)
}

/// runc's state root for the task: `root` of `<bundle>/options.json`, or the default. A file that
/// is there but is not JSON is an error, as in Go.
pub fn runc_root(bundle: &Path) -> io::Result<PathBuf> {
    #[derive(Deserialize)]
    struct Options {
        #[serde(default)]
        root: String,
    }
    let path = bundle.join(OPTIONS_FILE);
    let data = match fs::read(&path) {
        Ok(d) => d,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(DEFAULT_RUNC_ROOT.into()),
        Err(e) => return Err(context(e, &path)),
    };
    let options: Options = serde_json::from_slice(&data).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: {e}", path.display()),
        )
    })?;
    Ok(match options.root.as_str() {
        "" => DEFAULT_RUNC_ROOT.into(),
        r => r.into(),
    })
}

/// The init's pid from `<bundle>/init.pid`.
pub fn init_pid(bundle: &Path) -> io::Result<u32> {
    let path = bundle.join(INIT_PID_FILE);
    let s = fs::read_to_string(&path).map_err(|e| context(e, &path))?;
    s.trim().parse().map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: {s:?}: {e}", path.display()),
        )
    })
}

/// Write `data` to a temp file beside `path`, sync it, and rename it over `path`.
fn write_atomic(path: &Path, data: &[u8], mode: u32) -> io::Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let written = (|| {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written.map_err(|e| context(e, path))
}

fn context(e: io::Error, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Dir(PathBuf);

    impl Dir {
        fn new(tag: &str) -> Dir {
            let d =
                std::env::temp_dir().join(format!("rsrunc-v2-bundle-{tag}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&d);
            fs::create_dir_all(&d).unwrap();
            Dir(d)
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn the_runc_group_annotation_wins_over_the_sandbox_id() {
        let d = Dir::new("group");
        let spec = |annotations: &str| {
            fs::write(
                d.0.join("config.json"),
                format!(r#"{{"ociVersion":"1.0.2","annotations":{annotations}}}"#),
            )
            .unwrap()
        };
        spec(r#"{"io.kubernetes.cri.sandbox-id":"sb","io.containerd.runc.v2.group":"g"}"#);
        assert_eq!(group(&d.0).unwrap().as_deref(), Some("g"));
        spec(r#"{"io.kubernetes.cri.sandbox-id":"sb"}"#);
        assert_eq!(group(&d.0).unwrap().as_deref(), Some("sb"));
        fs::write(d.0.join("config.json"), r#"{"ociVersion":"1.0.2"}"#).unwrap();
        assert_eq!(group(&d.0).unwrap(), None);
    }

    #[test]
    fn a_missing_or_broken_spec_is_an_error_naming_it() {
        let d = Dir::new("nospec");
        assert!(group(&d.0).unwrap_err().to_string().contains("config.json"));
        fs::write(d.0.join("config.json"), "{").unwrap();
        assert!(group(&d.0).unwrap_err().to_string().contains("config.json"));
    }

    #[test]
    fn the_address_file_round_trips_and_leaves_no_temp_file() {
        let d = Dir::new("address");
        assert_eq!(read_address(&d.0), None);
        write_address(&d.0, "unix:///run/containerd/s/abc").unwrap();
        write_address(&d.0, "unix:///run/containerd/s/def").unwrap();
        assert_eq!(
            read_address(&d.0).as_deref(),
            Some("unix:///run/containerd/s/def")
        );
        assert_eq!(fs::read_dir(&d.0).unwrap().count(), 1);
    }

    #[test]
    fn runtime_and_root_default_when_their_files_are_missing() {
        let d = Dir::new("defaults");
        assert_eq!(runtime(&d.0).unwrap(), "runc");
        assert_eq!(runc_root(&d.0).unwrap(), PathBuf::from(DEFAULT_RUNC_ROOT));
        fs::write(d.0.join("runtime"), "").unwrap();
        fs::write(d.0.join("options.json"), "{}").unwrap();
        assert_eq!(runtime(&d.0).unwrap(), "runc");
        assert_eq!(runc_root(&d.0).unwrap(), PathBuf::from(DEFAULT_RUNC_ROOT));
    }

    #[test]
    fn runtime_and_root_come_from_what_create_wrote() {
        let d = Dir::new("written");
        fs::write(d.0.join("runtime"), "/usr/local/bin/crun").unwrap();
        fs::write(
            d.0.join("options.json"),
            r#"{"binary_name":"crun","root":"/run/r"}"#,
        )
        .unwrap();
        assert_eq!(runtime(&d.0).unwrap(), "/usr/local/bin/crun");
        assert_eq!(runc_root(&d.0).unwrap(), PathBuf::from("/run/r"));
        fs::write(d.0.join("options.json"), "not json").unwrap();
        assert!(runc_root(&d.0).is_err());
    }

    #[test]
    fn what_create_writes_delete_reads_back() {
        let d = Dir::new("roundtrip");
        let o = Options {
            binary_name: "/usr/bin/runc".into(),
            root: "/run/r".into(),
            io_uid: 7,
            systemd_cgroup: true,
            ..Default::default()
        };
        write_options(&d.0, &o).unwrap();
        assert_eq!(runtime(&d.0).unwrap(), "/usr/bin/runc");
        assert_eq!(runc_root(&d.0).unwrap(), PathBuf::from("/run/r"));
        let json: serde_json::Value =
            serde_json::from_slice(&fs::read(d.0.join("options.json")).unwrap()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"binary_name": "/usr/bin/runc", "root": "/run/r", "io_uid": 7, "systemd_cgroup": true})
        );
        write_options(&d.0, &Options::default()).unwrap();
        assert_eq!(fs::read_to_string(d.0.join("options.json")).unwrap(), "{}");
        assert_eq!(runtime(&d.0).unwrap(), "runc");
    }

    #[test]
    fn init_pid_is_read_or_says_why_not() {
        let d = Dir::new("pid");
        assert!(init_pid(&d.0).is_err());
        fs::write(d.0.join("init.pid"), "4242").unwrap();
        assert_eq!(init_pid(&d.0).unwrap(), 4242);
        fs::write(d.0.join("init.pid"), "x").unwrap();
        assert!(init_pid(&d.0).is_err());
    }
}
