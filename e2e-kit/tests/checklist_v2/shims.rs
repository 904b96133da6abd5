//! Which containerds (1.6 from PATH, 1.7 and 2.1 from `CONTAINERD_1_7`/`CONTAINERD_2_1`) and
//! which v2 shims (`E2E_V2_SHIMS`, default `go`) the checklist runs, or why one cannot.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use e2e_kit::containerd::{Build, Runtime, Setup};

use super::expect::{Expectations, GO, OURS};

/// Our task v2 shim's binary name (crate shim-runc-v2).
pub const OURS_BIN: &str = "containerd-shim-rsrunc-v2";
/// The runtime name containerd finds it by on PATH.
pub const OURS_RUNTIME: &str = "io.containerd.rsrunc.v2";
/// Bound on `cargo xtask install` (a release build).
const INSTALL_BOUND: Duration = Duration::from_secs(20 * 60);

/// One containerd the checklist runs under: its label in row names (`1.6`), and where from.
pub struct Version {
    pub label: &'static str,
    /// The env var naming its bin dir; `None`: the system's, from PATH.
    pub env: Option<&'static str>,
}

pub const VERSIONS: [Version; 3] = [
    Version {
        label: "1.6",
        env: None,
    },
    Version {
        label: "1.7",
        env: Some("CONTAINERD_1_7"),
    },
    Version {
        label: "2.1",
        env: Some("CONTAINERD_2_1"),
    },
];

impl Version {
    /// Its containerd, ctr and Go shim, or why they are not here.
    pub fn build(&self) -> Result<Build, String> {
        let build = match self.env {
            None => Build::system(),
            Some(var) => match env::var_os(var) {
                Some(dir) => Build::in_dir(Path::new(&dir)),
                None => {
                    return Err(format!(
                        "{var} is not set (`cargo xtask deps` unpacks containerd {}; \
                         `cargo xtask test` passes its bin dir)",
                        self.label
                    ))
                }
            },
        };
        let tools = ["containerd", "ctr"].map(|t| build.tool(t));
        let absent: Vec<String> = tools
            .iter()
            .chain([&build.go_shim_v2()])
            .filter(|t| !e2e_kit::prereq::on_path(&t.to_string_lossy()))
            .map(|t| t.display().to_string())
            .collect();
        if !absent.is_empty() {
            return Err(format!("missing: {}", absent.join(", ")));
        }
        if build.version != self.label {
            return Err(format!(
                "{} says version {}, not {}",
                build.tool("containerd").display(),
                build.version,
                self.label
            ));
        }
        Ok(build)
    }
}

/// Whose shim: decides the expectations of rows where they may differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShimKind {
    Go,
    Ours,
}

impl ShimKind {
    pub fn label(self) -> &'static str {
        match self {
            ShimKind::Go => "go",
            ShimKind::Ours => "ours",
        }
    }

    pub fn expect(self) -> &'static Expectations {
        match self {
            ShimKind::Go => &GO,
            ShimKind::Ours => &OURS,
        }
    }

    /// The shim binary for `build`: Go's from the same bin dir as that containerd, ours from
    /// this test's target dir (`<target>/debug/deps/<test>` → `<target>/debug/<bin>`).
    fn path(self, build: &Build) -> PathBuf {
        match self {
            ShimKind::Go => build.go_shim_v2(),
            ShimKind::Ours => this_build(OURS_BIN),
        }
    }

    /// A private containerd's setup for this shim under `build`, or why it cannot run.
    pub fn setup(self, build: &Build) -> Result<Setup, String> {
        let shim = self.path(build);
        if !shim.is_file() {
            return Err(format!(
                "shim binary {} is missing (build it first)",
                shim.display()
            ));
        }
        Ok(Setup {
            label: self.label().to_string(),
            build: build.clone(),
            runtime: Runtime::V2 { shim },
        })
    }
}

/// `E2E_V2_SHIMS=go,ours` (default `go`): the shims every row runs for, or the names it does
/// not know.
pub fn configured() -> Vec<Result<ShimKind, String>> {
    let list = env::var("E2E_V2_SHIMS").unwrap_or_else(|_| "go".to_string());
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| match s {
            "go" => Ok(ShimKind::Go),
            "ours" => Ok(ShimKind::Ours),
            other => Err(other.to_string()),
        })
        .collect()
}

/// `<target>/debug/<bin>`: a binary of this build beside the test's deps dir.
pub fn this_build(bin: &str) -> PathBuf {
    env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.join(bin)))
        .unwrap_or_else(|| PathBuf::from(bin))
}

/// `cargo xtask install --prefix <target>/e2e-install` (this build's xtask binary, as `cargo
/// xtask` runs it), once per test process: the prefix's `bin`, or why the install failed.
pub fn installed_ours() -> Result<PathBuf, String> {
    static INSTALLED: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    INSTALLED
        .get_or_init(|| {
            let xtask = this_build("xtask");
            let target = xtask
                .parent()
                .and_then(Path::parent)
                .ok_or_else(|| format!("no target dir above {}", xtask.display()))?;
            let prefix = target.join("e2e-install");
            let mut cmd = Command::new(&xtask);
            cmd.arg("install").arg("--prefix").arg(&prefix);
            let out = e2e_kit::proc::run(cmd, INSTALL_BOUND, None);
            if out.code() != Some(0) {
                return Err(format!("{} install failed:\n{out}", xtask.display()));
            }
            Ok(prefix.join("bin"))
        })
        .clone()
}
