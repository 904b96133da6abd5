//! Newer containerds for the tests, beside the system's: Debian's `containerd` package from a
//! newer suite, downloaded and unpacked under `<target>/debs/`, never installed.
//!
//! Each suite gets a private apt under `<target>/debs/apt-<suite>/`: an apt.conf, read through
//! APT_CONFIG before any of the system's configuration (which it then skips), that puts the
//! sources, lists, status and cache there. The system's apt state and packages stay untouched.
//! The suite's sources entry is this machine's own Debian entry (same URI, components and
//! options, e.g. signed-by) with the suite swapped; the system's Acquire settings (proxies,
//! date checks) carry over.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

use crate::deps::upstream;
use crate::run::{step, target_dir, which};

/// A containerd the tests use, and the Debian suite that carries it.
struct Wanted {
    /// The variable that hands the tests its `usr/bin`.
    env: &'static str,
    suite: &'static str,
    /// Upstream version; the newest of its minor series if the suite has moved on.
    version: &'static str,
}

const WANTED: &[Wanted] = &[
    Wanted {
        env: "CONTAINERD_1_7",
        suite: "trixie",
        version: "1.7.24",
    },
    Wanted {
        env: "CONTAINERD_2_1",
        suite: "sid",
        version: "2.1.9",
    },
];

const PACKAGE: &str = "containerd";

/// `<target>/debs`: the downloaded packages, the private apts and the unpacked trees.
fn debs_dir() -> PathBuf {
    target_dir().join("debs")
}

/// The `usr/bin` of each containerd unpacked so far, by the variable that names it for the
/// tests (`CONTAINERD_1_7`, `CONTAINERD_2_1`). No apt, no network: `run` fetches.
pub fn containerd_bin_dirs() -> Vec<(&'static str, PathBuf)> {
    let debs = debs_dir();
    WANTED
        .iter()
        .filter_map(|w| Some((w.env, unpacked(&debs, w)?.join("usr/bin"))))
        .collect()
}

/// Fetch and unpack the containerds not there yet (apt runs only then), show each one's
/// version and list them in `<target>/debs/containerd-versions.env`.
pub fn run() -> Result<()> {
    let debs = debs_dir();
    let mut env = String::new();
    for wanted in WANTED {
        let tree = match unpacked(&debs, wanted) {
            Some(tree) => tree,
            None => fetch(&debs, wanted).with_context(|| {
                format!(
                    "containerd {} from Debian {} (package {PACKAGE})",
                    wanted.version, wanted.suite
                )
            })?,
        };
        let bin = tree.join("usr/bin");
        println!(
            "ok containerd {} from Debian {}: {} ({})",
            tree_version(&tree),
            wanted.suite,
            bin.display(),
            containerd_version(&bin)?
        );
        env.push_str(&format!("{}={}\n", wanted.env, bin.display()));
    }
    let file = debs.join("containerd-versions.env");
    if fs::read_to_string(&file).ok().as_deref() != Some(env.as_str()) {
        fs::create_dir_all(&debs).with_context(|| format!("create {}", debs.display()))?;
        fs::write(&file, env).with_context(|| format!("write {}", file.display()))?;
    }
    Ok(())
}

/// The unpacked tree for `wanted`, if its containerd is there: `containerd-<version>`, else
/// the newest `containerd-<major.minor>.N` (taken when the suite had moved on).
fn unpacked(debs: &Path, wanted: &Wanted) -> Option<PathBuf> {
    let complete = |tree: &Path| tree.join("usr/bin/containerd").is_file();
    let exact = debs.join(format!("{PACKAGE}-{}", wanted.version));
    if complete(&exact) {
        return Some(exact);
    }
    let prefix = format!("{PACKAGE}-{}.", series(wanted.version));
    fs::read_dir(debs)
        .ok()?
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            let patch: u64 = name.strip_prefix(&prefix)?.parse().ok()?;
            complete(&entry.path()).then(|| (patch, entry.path()))
        })
        .max()
        .map(|(_, tree)| tree)
}

/// `1.7.24` -> `1.7`.
fn series(version: &str) -> &str {
    version.rsplit_once('.').map_or(version, |(s, _)| s)
}

/// `.../containerd-1.7.24` -> `1.7.24`.
fn tree_version(tree: &Path) -> String {
    let name = tree.file_name().unwrap_or_default().to_string_lossy();
    name.strip_prefix(&format!("{PACKAGE}-"))
        .unwrap_or(&name)
        .to_string()
}

/// `containerd --version`'s line, proving the binary runs here.
fn containerd_version(bin: &Path) -> Result<String> {
    let containerd = bin.join("containerd");
    let out = Command::new(&containerd)
        .arg("--version")
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("cannot run {}", containerd.display()))?;
    if !out.status.success() {
        bail!("{} --version failed ({})", containerd.display(), out.status);
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Private apt update for the suite, download of its containerd, unpacking: the tree.
fn fetch(debs: &Path, wanted: &Wanted) -> Result<PathBuf> {
    let suite = wanted.suite;
    for tool in ["apt-get", "apt-cache", "apt-config", "dpkg"] {
        if which(tool).is_none() {
            bail!("{tool} not found: fetching from Debian {suite} needs apt and dpkg");
        }
    }
    let arch = stdout(Command::new("dpkg").arg("--print-architecture"))?;
    let apt = PrivateApt::new(debs, suite, arch.trim())?;
    step(
        &format!(
            "apt-get update (Debian {suite} only, private: {})",
            apt.dir.display()
        ),
        apt.command("apt-get").args(["-q", "update"]),
    )
    .with_context(|| {
        format!(
            "cannot fetch Debian {suite}'s package lists (see apt's messages above); \
             sources used: {}",
            apt.sources.display()
        )
    })?;
    let madison = stdout(apt.command("apt-cache").args(["madison", PACKAGE]))?;
    let versions: Vec<&str> = madison
        .lines()
        .filter_map(|line| Some(line.split('|').nth(1)?.trim()))
        .collect();
    let Some(version) = choose(&versions, wanted.version) else {
        bail!(
            "Debian {suite} has no {PACKAGE} {} nor another {}.x (it has: {})",
            wanted.version,
            series(wanted.version),
            if versions.is_empty() {
                "none".to_string()
            } else {
                versions.join(", ")
            }
        );
    };
    if upstream(version) != wanted.version {
        println!(
            "note: Debian {suite} has {PACKAGE} {version}, not {}: taking {version}",
            wanted.version
        );
    }
    fs::create_dir_all(debs).with_context(|| format!("create {}", debs.display()))?;
    step(
        &format!("apt-get download {PACKAGE}={version} (Debian {suite})"),
        apt.command("apt-get")
            // apt would fall back to root anyway (with a warning): its _apt user may not
            // write here. The package is checked against the signed lists either way.
            .args(["-q", "-o", "APT::Sandbox::User=root", "download"])
            .arg(format!("{PACKAGE}={version}"))
            .current_dir(debs),
    )
    .with_context(|| format!("cannot download {PACKAGE} {version} from Debian {suite}"))?;
    let deb = debs.join(format!(
        "{PACKAGE}_{}_{}.deb",
        version.replace(':', "%3a"),
        arch.trim()
    ));
    if !deb.is_file() {
        bail!(
            "apt-get download said yes, yet {} is not there",
            deb.display()
        );
    }
    unpack(&deb, &debs.join(format!("{PACKAGE}-{}", upstream(version))))
}

/// The Debian version to take among the suite's (newest first): the wanted upstream version,
/// else the newest of its minor series.
fn choose<'a>(versions: &[&'a str], wanted: &str) -> Option<&'a str> {
    let exact = versions.iter().find(|v| upstream(v) == wanted);
    exact
        .or_else(|| {
            versions
                .iter()
                .find(|v| series(&upstream(v)) == series(wanted))
        })
        .copied()
}

/// `dpkg -x` into `<tree>.partial`, check that containerd runs, then move it to `tree`.
fn unpack(deb: &Path, tree: &Path) -> Result<PathBuf> {
    let partial = PathBuf::from(format!("{}.partial", tree.display()));
    for dir in [&partial, tree] {
        if dir.exists() {
            fs::remove_dir_all(dir).with_context(|| format!("remove {}", dir.display()))?;
        }
    }
    step(
        &format!("dpkg -x {}", deb.display()),
        Command::new("dpkg").arg("-x").arg(deb).arg(&partial),
    )?;
    let bin = partial.join("usr/bin");
    if !bin.join("containerd").is_file() {
        bail!(
            "{} has no usr/bin/containerd (see dpkg -c {})",
            deb.display(),
            deb.display()
        );
    }
    containerd_version(&bin)?;
    fs::rename(&partial, tree)
        .with_context(|| format!("rename {} to {}", partial.display(), tree.display()))?;
    Ok(tree.to_path_buf())
}

/// A command's stdout; its stderr goes to ours.
fn stdout(cmd: &mut Command) -> Result<String> {
    let out = cmd
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("cannot run {cmd:?}"))?;
    if !out.status.success() {
        bail!("{cmd:?} failed ({})", out.status);
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// apt for one suite, all its state under `<debs>/apt-<suite>/`:
/// `APT_CONFIG=<dir>/apt.conf apt-get ...` reads and writes nothing of the system's apt.
struct PrivateApt {
    dir: PathBuf,
    conf: PathBuf,
    sources: PathBuf,
}

impl PrivateApt {
    /// Write the configuration and the sources (fresh each time), keep the lists and cache.
    fn new(debs: &Path, suite: &str, arch: &str) -> Result<Self> {
        let dir = debs.join(format!("apt-{suite}"));
        let sources_dir = dir.join("sources.list.d");
        if sources_dir.exists() {
            fs::remove_dir_all(&sources_dir)
                .with_context(|| format!("remove {}", sources_dir.display()))?;
        }
        for sub in [
            "sources.list.d",
            "state/lists/partial",
            "cache/archives/partial",
        ] {
            let sub = dir.join(sub);
            fs::create_dir_all(&sub).with_context(|| format!("create {}", sub.display()))?;
        }
        let status = dir.join("state/status");
        if !status.exists() {
            fs::write(&status, "").with_context(|| format!("write {}", status.display()))?;
        }
        let (entry, from) = debian_entry()?;
        let (name, text) = entry.for_suite(suite);
        let sources = sources_dir.join(name);
        let text = format!(
            "# cargo xtask deps: {}'s Debian entry with suite {suite}\n{text}",
            from.display()
        );
        fs::write(&sources, text).with_context(|| format!("write {}", sources.display()))?;
        let conf = dir.join("apt.conf");
        let acquire = stdout(Command::new("apt-config").args(["dump", "Acquire"]))?;
        fs::write(&conf, apt_conf(&dir, &sources_dir, arch, &acquire))
            .with_context(|| format!("write {}", conf.display()))?;
        Ok(Self { dir, conf, sources })
    }

    fn command(&self, tool: &str) -> Command {
        let mut cmd = Command::new(tool);
        cmd.env("APT_CONFIG", &self.conf);
        cmd
    }
}

/// The private apt.conf: the system's Acquire settings (`apt-config dump Acquire`) minus its
/// extra index targets (appstream's DEP-11 and the like) and languages, then our directories.
/// No binary caches on disk (some 50 MB a suite): apt builds them in memory, three runs a fetch.
fn apt_conf(dir: &Path, sources_dir: &Path, arch: &str, acquire: &str) -> String {
    let mut conf = String::from("// cargo xtask deps: a private apt, see xtask/src/debs.rs\n");
    for line in acquire.lines() {
        let key = line.split_whitespace().next().unwrap_or("");
        if key == "Acquire"
            || key.starts_with("Acquire::IndexTargets")
            || key.starts_with("Acquire::Languages")
        {
            continue;
        }
        conf.push_str(line);
        conf.push('\n');
    }
    let d = dir.display();
    conf.push_str(&format!(
        "Acquire::Languages \"none\";\n\
         Dir::Etc::Main \"/dev/null\";\n\
         Dir::Etc::Parts \"/dev/null\";\n\
         Dir::Etc::SourceList \"/dev/null\";\n\
         Dir::Etc::SourceParts \"{}\";\n\
         Dir::Etc::Preferences \"/dev/null\";\n\
         Dir::Etc::PreferencesParts \"/dev/null\";\n\
         Dir::State \"{d}/state\";\n\
         Dir::State::status \"{d}/state/status\";\n\
         Dir::Cache \"{d}/cache\";\n\
         Dir::Cache::pkgcache \"\";\n\
         Dir::Cache::srcpkgcache \"\";\n\
         APT::Architecture \"{arch}\";\n\
         APT::Architectures \"{arch}\";\n",
        sources_dir.display()
    ));
    conf
}

/// One enabled `deb` entry of the machine's apt sources.
#[derive(Debug, PartialEq)]
struct Source {
    uri: String,
    suites: Vec<String>,
    components: Vec<String>,
    /// Everything else, verbatim: one-line `[options]`, or deb822 fields (e.g. Signed-By).
    rest: Rest,
}

#[derive(Debug, PartialEq)]
enum Rest {
    OneLine(String),
    Deb822(Vec<(String, String)>),
}

impl Source {
    /// This entry for another suite: a sources.list.d file name and its text.
    fn for_suite(&self, suite: &str) -> (String, String) {
        let components = self.components.join(" ");
        match &self.rest {
            Rest::OneLine(options) => {
                let options = if options.is_empty() {
                    String::new()
                } else {
                    format!("{options} ")
                };
                let line = format!("deb {options}{} {suite} {components}\n", self.uri);
                (format!("{suite}.list"), line)
            }
            Rest::Deb822(fields) => {
                let mut text = format!(
                    "Types: deb\nURIs: {}\nSuites: {suite}\nComponents: {components}\n",
                    self.uri
                );
                for (name, value) in fields {
                    text.push_str(&format!("{name}:{value}\n"));
                }
                (format!("{suite}.sources"), text)
            }
        }
    }
}

/// The `deb` entries of one-line sources.list text.
fn parse_one_line(text: &str) -> Vec<Source> {
    text.lines()
        .filter_map(|line| {
            let line = line.split('#').next()?.trim();
            let rest = line.strip_prefix("deb")?;
            if !rest.starts_with([' ', '\t']) {
                return None; // deb-src
            }
            let rest = rest.trim_start();
            let (options, rest) = match rest.strip_prefix('[') {
                Some(inner) => {
                    let end = inner.find(']')?;
                    (format!("[{}]", inner[..end].trim()), &inner[end + 1..])
                }
                None => (String::new(), rest),
            };
            let mut words = rest.split_whitespace().map(str::to_string);
            let uri = words.next()?;
            let suite = words.next()?;
            Some(Source {
                uri,
                suites: vec![suite],
                components: words.collect(),
                rest: Rest::OneLine(options),
            })
        })
        .collect()
}

/// The enabled `deb` stanzas of deb822 `.sources` text. Continuation lines stay verbatim.
fn parse_deb822(text: &str) -> Vec<Source> {
    let mut sources = Vec::new();
    let mut fields: Vec<(String, String)> = Vec::new();
    for line in text.lines().chain([""]) {
        if line.starts_with('#') {
            continue;
        }
        if line.trim().is_empty() {
            if !fields.is_empty() {
                sources.extend(deb822_stanza(std::mem::take(&mut fields)));
            }
        } else if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = fields.last_mut() {
                value.push('\n');
                value.push_str(line);
            }
        } else if let Some((name, value)) = line.split_once(':') {
            fields.push((name.trim().to_string(), value.to_string()));
        }
    }
    sources
}

fn deb822_stanza(fields: Vec<(String, String)>) -> Option<Source> {
    let words = |names: &[&str]| -> Vec<String> {
        fields
            .iter()
            .filter(|(n, _)| names.iter().any(|m| n.eq_ignore_ascii_case(m)))
            .flat_map(|(_, v)| v.split_whitespace().map(str::to_string))
            .collect()
    };
    let enabled = words(&["Enabled"]);
    if enabled
        .first()
        .is_some_and(|e| e.eq_ignore_ascii_case("no"))
    {
        return None;
    }
    if !words(&["Types", "Type"]).iter().any(|t| t == "deb") {
        return None;
    }
    let uri = words(&["URIs", "URI"]).into_iter().next()?;
    let ours = [
        "Types",
        "Type",
        "URIs",
        "URI",
        "Suites",
        "Suite",
        "Components",
        "Component",
    ];
    let rest = fields
        .iter()
        .filter(|(n, _)| {
            !ours
                .iter()
                .chain(&["Enabled"])
                .any(|m| n.eq_ignore_ascii_case(m))
        })
        .cloned()
        .collect();
    Some(Source {
        uri,
        suites: words(&["Suites", "Suite"]),
        components: words(&["Components", "Component"]),
        rest: Rest::Deb822(rest),
    })
}

/// The machine's Debian entry and its file: an enabled `deb` entry for this release's codename
/// (not -updates, not -security) with component main. When several match (another vendor's
/// repository may reuse the codename), the one whose Release file says Origin: Debian.
fn debian_entry() -> Result<(Source, PathBuf)> {
    let os_release = fs::read_to_string("/etc/os-release").unwrap_or_default();
    let Some(codename) = os_release
        .lines()
        .find_map(|l| l.strip_prefix("VERSION_CODENAME="))
        .map(|c| c.trim().trim_matches('"').to_string())
        .filter(|c| !c.is_empty())
    else {
        bail!("no VERSION_CODENAME in /etc/os-release: which Debian release is this?");
    };
    let files = source_files()?;
    let mut candidates: Vec<(Source, PathBuf)> = Vec::new();
    for file in &files {
        let Ok(text) = fs::read_to_string(file) else {
            continue;
        };
        let entries = if file.extension().is_some_and(|e| e == "sources") {
            parse_deb822(&text)
        } else {
            parse_one_line(&text)
        };
        candidates.extend(
            entries
                .into_iter()
                .filter(|s| {
                    s.suites.contains(&codename) && s.components.iter().any(|c| c == "main")
                })
                .map(|s| (s, file.clone())),
        );
    }
    if candidates.len() > 1 {
        let debian = debian_repo_uris(&codename);
        if candidates
            .iter()
            .any(|(s, _)| debian.contains(&norm(&s.uri)))
        {
            candidates.retain(|(s, _)| debian.contains(&norm(&s.uri)));
        }
    }
    match candidates.into_iter().next() {
        Some(found) => Ok(found),
        None => bail!(
            "no enabled `deb` entry for {codename} with component main in {}: \
             cannot tell where Debian's archive is",
            files
                .iter()
                .map(|f| f.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn norm(uri: &str) -> String {
    uri.trim_end_matches('/').to_string()
}

/// The repositories apt's lists know as Debian's own for `codename` (empty without lists).
fn debian_repo_uris(codename: &str) -> Vec<String> {
    let format = "$(REPO_URI) $(RELEASE) $(ORIGIN) $(LABEL)";
    let out = stdout(Command::new("apt-get").args([
        "indextargets",
        "--format",
        format,
        "Identifier: Packages",
    ]))
    .unwrap_or_default();
    out.lines()
        .filter_map(
            |line| match line.split_whitespace().collect::<Vec<_>>()[..] {
                [uri, release, "Debian", "Debian"] if release == codename => Some(norm(uri)),
                _ => None,
            },
        )
        .collect()
}

/// sources.list and sources.list.d/*.{list,sources}, where the machine's apt config puts them,
/// in apt's order.
fn source_files() -> Result<Vec<PathBuf>> {
    let out = stdout(Command::new("apt-config").args([
        "shell",
        "LIST",
        "Dir::Etc::SourceList/f",
        "PARTS",
        "Dir::Etc::SourceParts/d",
    ]))?;
    let value = |name: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}='"))?.strip_suffix('\''))
            .map(PathBuf::from)
    };
    let mut files: Vec<PathBuf> = value("LIST").into_iter().collect();
    if let Some(parts) = value("PARTS") {
        let mut parts: Vec<PathBuf> = fs::read_dir(&parts)
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        parts.retain(|p| {
            let name = p.file_name().unwrap_or_default().to_string_lossy();
            (name.ends_with(".list") || name.ends_with(".sources"))
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
        });
        parts.sort();
        files.extend(parts);
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_entries_keep_their_options() {
        let text = "\
# a comment
deb [arch=amd64 signed-by=/k.gpg] http://mirror.example/debian bookworm main contrib # tail
deb-src http://mirror.example/debian bookworm main
deb http://mirror.example/debian-security bookworm-security main
";
        let sources = parse_one_line(text);
        assert_eq!(sources.len(), 2);
        assert_eq!(sources[0].uri, "http://mirror.example/debian");
        assert_eq!(sources[0].suites, ["bookworm"]);
        assert_eq!(sources[0].components, ["main", "contrib"]);
        assert_eq!(
            sources[0].for_suite("sid"),
            (
                "sid.list".to_string(),
                "deb [arch=amd64 signed-by=/k.gpg] http://mirror.example/debian sid main contrib\n"
                    .to_string()
            )
        );
        assert_eq!(
            sources[1].for_suite("trixie").1,
            "deb http://mirror.example/debian-security trixie main\n"
        );
    }

    #[test]
    fn deb822_stanzas_skip_disabled_ones_and_keep_other_fields() {
        let text = "\
Types: deb
# snapshot comment
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: http://mirror.example/debian
Suites: bookworm
Components: main

Enabled: no
Types: deb
URIs: http://other.example/
Suites: bookworm
Components: main

Types: deb
URIs: http://inline.example/
Suites: bookworm
Components: main
Signed-By:
 -----BEGIN PGP PUBLIC KEY BLOCK-----
 .
 abc
";
        let sources = parse_deb822(text);
        assert_eq!(sources.len(), 2);
        assert_eq!(sources[0].suites, ["bookworm", "bookworm-updates"]);
        assert_eq!(
            sources[0].for_suite("trixie"),
            (
                "trixie.sources".to_string(),
                "Types: deb\nURIs: http://mirror.example/debian\nSuites: trixie\nComponents: main\n\
                 Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
                    .to_string()
            )
        );
        assert_eq!(
            sources[1].for_suite("sid").1,
            "Types: deb\nURIs: http://inline.example/\nSuites: sid\nComponents: main\n\
             Signed-By:\n -----BEGIN PGP PUBLIC KEY BLOCK-----\n .\n abc\n"
        );
    }

    #[test]
    fn a_tree_counts_once_its_containerd_is_there_the_wanted_version_first() {
        let debs = std::env::temp_dir().join(format!("xtask-debs-test-{}", std::process::id()));
        let tree = |name: &str, complete: bool| {
            let bin = debs.join(name).join("usr/bin");
            fs::create_dir_all(&bin).unwrap();
            if complete {
                fs::write(bin.join("containerd"), "").unwrap();
            }
            debs.join(name)
        };
        let wanted = &WANTED[1];
        assert_eq!(unpacked(&debs, wanted), None);
        tree("containerd-2.1.12.partial", true);
        tree("containerd-2.1.11", false);
        tree("containerd-2.2.0", true);
        assert_eq!(unpacked(&debs, wanted), None);
        tree("containerd-2.1.8", true);
        let newer = tree("containerd-2.1.10", true);
        assert_eq!(unpacked(&debs, wanted), Some(newer));
        let exact = tree(&format!("containerd-{}", wanted.version), true);
        assert_eq!(unpacked(&debs, wanted), Some(exact));
        fs::remove_dir_all(&debs).unwrap();
    }

    #[test]
    fn the_wanted_version_else_the_newest_of_its_series() {
        let sid = ["2.2.0~ds1-1", "2.1.9+ds1-5", "2.1.8+ds1-1"];
        assert_eq!(choose(&sid, "2.1.9"), Some("2.1.9+ds1-5"));
        assert_eq!(choose(&sid, "2.1.7"), Some("2.1.9+ds1-5"));
        assert_eq!(choose(&sid, "1.7.24"), None);
        assert_eq!(choose(&[], "1.7.24"), None);
    }

    #[test]
    fn the_private_apt_conf_drops_index_targets_and_languages() {
        let acquire = "\
Acquire \"\";
Acquire::http::Proxy \"http://proxy.example:3128\";
Acquire::Check-Valid-Until \"false\";
Acquire::IndexTargets::deb::DEP-11::MetaKey \"x\";
Acquire::Languages:: \"en\";
";
        let conf = apt_conf(
            Path::new("/t/apt-sid"),
            Path::new("/t/apt-sid/sources.list.d"),
            "amd64",
            acquire,
        );
        assert!(conf.contains("Acquire::http::Proxy \"http://proxy.example:3128\";\n"));
        assert!(conf.contains("Acquire::Check-Valid-Until \"false\";\n"));
        assert!(!conf.contains("IndexTargets"));
        assert!(!conf.contains("\"en\""));
        assert!(!conf.contains("Acquire \"\""));
        assert!(conf.contains("Dir::State \"/t/apt-sid/state\";\n"));
        assert!(conf.contains("Dir::Etc::SourceParts \"/t/apt-sid/sources.list.d\";\n"));
        assert!(conf.contains("Dir::Etc::Parts \"/dev/null\";\n"));
    }
}
