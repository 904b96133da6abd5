//! OCI runtime-spec JSON we send: the exec process (from the bundle's config.json) and LinuxResources.

use serde_json::{json, Map, Value};
use std::fmt;

/// Why a spec could not be built.
#[derive(Debug)]
pub enum SpecError {
    /// config.json is not JSON or has no `process` object.
    Config(String),
    /// `--user` is not `uid[:gid]`.
    User(String),
    /// `--env` is not `KEY=VALUE`.
    Env(String),
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SpecError::Config(why) => write!(f, "bundle config.json: {why}"),
            SpecError::User(u) => write!(f, "invalid --user {u:?}: want uid[:gid] (numbers)"),
            SpecError::Env(e) => write!(f, "invalid --env {e:?}: want KEY=VALUE"),
        }
    }
}

impl std::error::Error for SpecError {}

/// What the caller changes in the container's own process to make the exec process.
#[derive(Debug, Default, Clone)]
pub struct ExecOverrides {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: Option<String>,
    pub user: Option<String>,
    pub terminal: bool,
    /// `(cols, rows)` for the process's terminal from the start (runc sets it before exec, so
    /// the process never sees 0x0); `None` leaves it out.
    pub console_size: Option<(u32, u32)>,
}

/// `uid[:gid]` as numbers.
pub fn parse_user(user: &str) -> Result<(u32, Option<u32>), SpecError> {
    let bad = || SpecError::User(user.to_string());
    let (uid, gid) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let uid = uid.parse().map_err(|_| bad())?;
    let gid = gid.map(|g| g.parse().map_err(|_| bad())).transpose()?;
    Ok((uid, gid))
}

/// `base` with each `KEY=VALUE` of `overrides` replacing the entry for KEY, or appended.
pub fn merge_env(base: &[String], overrides: &[String]) -> Result<Vec<String>, SpecError> {
    let mut env = base.to_vec();
    for kv in overrides {
        let Some((key, _)) = kv.split_once('=').filter(|(k, _)| !k.is_empty()) else {
            return Err(SpecError::Env(kv.clone()));
        };
        let prefix = format!("{key}=");
        match env.iter_mut().find(|e| e.starts_with(&prefix)) {
            Some(slot) => *slot = kv.clone(),
            None => env.push(kv.clone()),
        }
    }
    Ok(env)
}

/// The JSON of the exec process: a copy of config.json's `process` with args, env, cwd,
/// user and terminal replaced, as containerd builds it for `ctr task exec`.
pub fn exec_process(config_json: &[u8], o: &ExecOverrides) -> Result<Vec<u8>, SpecError> {
    let config: Value =
        serde_json::from_slice(config_json).map_err(|e| SpecError::Config(e.to_string()))?;
    let Some(Value::Object(process)) = config.get("process") else {
        return Err(SpecError::Config("no \"process\" object".to_string()));
    };
    let mut process: Map<String, Value> = process.clone();
    process.insert("args".into(), json!(o.args));
    process.insert("terminal".into(), json!(o.terminal));
    match o.console_size.filter(|_| o.terminal) {
        Some((cols, rows)) => process.insert(
            "consoleSize".into(),
            json!({ "height": rows, "width": cols }),
        ),
        None => process.remove("consoleSize"),
    };
    let base_env: Vec<String> = match process.get("env") {
        Some(v) => serde_json::from_value(v.clone())
            .map_err(|e| SpecError::Config(format!("process.env: {e}")))?,
        None => Vec::new(),
    };
    process.insert("env".into(), json!(merge_env(&base_env, &o.env)?));
    if let Some(cwd) = &o.cwd {
        process.insert("cwd".into(), json!(cwd));
    }
    if let Some(user) = &o.user {
        let (uid, gid) = parse_user(user)?;
        let entry = process.entry("user").or_insert_with(|| json!({}));
        if let Value::Object(u) = entry {
            u.insert("uid".into(), json!(uid));
            if let Some(gid) = gid {
                u.insert("gid".into(), json!(gid));
            }
            u.remove("username");
        }
    }
    serde_json::to_vec(&Value::Object(process)).map_err(|e| SpecError::Config(e.to_string()))
}

/// Resource limits from command-line flags; `None` fields are left out of the JSON.
#[derive(Debug, Default, Clone)]
pub struct ResourceFlags {
    pub memory: Option<i64>,
    pub cpu_shares: Option<u64>,
    pub cpu_quota: Option<i64>,
    pub cpu_period: Option<u64>,
    pub pids_limit: Option<i64>,
}

impl ResourceFlags {
    pub fn is_empty(&self) -> bool {
        self.memory.is_none()
            && self.cpu_shares.is_none()
            && self.cpu_quota.is_none()
            && self.cpu_period.is_none()
            && self.pids_limit.is_none()
    }
}

/// The OCI `LinuxResources` JSON for the given flags.
pub fn linux_resources(flags: &ResourceFlags) -> Vec<u8> {
    let mut res = Map::new();
    if let Some(limit) = flags.memory {
        res.insert("memory".into(), json!({ "limit": limit }));
    }
    let mut cpu = Map::new();
    if let Some(v) = flags.cpu_shares {
        cpu.insert("shares".into(), json!(v));
    }
    if let Some(v) = flags.cpu_quota {
        cpu.insert("quota".into(), json!(v));
    }
    if let Some(v) = flags.cpu_period {
        cpu.insert("period".into(), json!(v));
    }
    if !cpu.is_empty() {
        res.insert("cpu".into(), Value::Object(cpu));
    }
    if let Some(limit) = flags.pids_limit {
        res.insert("pids".into(), json!({ "limit": limit }));
    }
    Value::Object(res).to_string().into_bytes()
}

/// Checks that a user-supplied resources document is a JSON object.
pub fn check_resources_json(bytes: &[u8]) -> Result<(), SpecError> {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(_)) => Ok(()),
        Ok(_) => Err(SpecError::Config(
            "resources: not a JSON object".to_string(),
        )),
        Err(e) => Err(SpecError::Config(format!("resources: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = r#"{"ociVersion":"1.0.2","process":{"terminal":true,"consoleSize":{"height":1,"width":2},
        "user":{"uid":0,"gid":0},"args":["sh"],"env":["PATH=/bin","TERM=xterm"],"cwd":"/",
        "capabilities":{"bounding":["CAP_KILL"]},"noNewPrivileges":true},"root":{"path":"rootfs"}}"#;

    #[test]
    fn exec_process_copies_the_init_process_and_replaces_args_env_cwd_user() {
        let o = ExecOverrides {
            args: vec!["echo".into(), "hi".into()],
            env: vec!["TERM=dumb".into(), "A=1".into()],
            cwd: Some("/tmp".into()),
            user: Some("1000:100".into()),
            terminal: false,
            console_size: Some((80, 24)),
        };
        let p: Value =
            serde_json::from_slice(&exec_process(CONFIG.as_bytes(), &o).unwrap()).unwrap();
        assert_eq!(p["args"], json!(["echo", "hi"]));
        assert_eq!(p["env"], json!(["PATH=/bin", "TERM=dumb", "A=1"]));
        assert_eq!(p["cwd"], json!("/tmp"));
        assert_eq!(p["user"], json!({"uid": 1000, "gid": 100}));
        assert_eq!(p["terminal"], json!(false));
        assert_eq!(p["noNewPrivileges"], json!(true));
        assert_eq!(p["capabilities"]["bounding"], json!(["CAP_KILL"]));
        assert!(p.get("consoleSize").is_none());
    }

    #[test]
    fn terminal_exec_gets_the_callers_console_size() {
        let o = ExecOverrides {
            args: vec!["sh".into()],
            terminal: true,
            console_size: Some((120, 40)),
            ..Default::default()
        };
        let p: Value =
            serde_json::from_slice(&exec_process(CONFIG.as_bytes(), &o).unwrap()).unwrap();
        assert_eq!(p["consoleSize"], json!({"height": 40, "width": 120}));
    }

    #[test]
    fn config_without_process_is_rejected() {
        let err = exec_process(br#"{"root":{}}"#, &ExecOverrides::default()).unwrap_err();
        assert!(err.to_string().contains("process"));
    }

    #[test]
    fn users_are_numeric_uid_and_optional_gid() {
        assert_eq!(parse_user("5").unwrap(), (5, None));
        assert_eq!(parse_user("5:6").unwrap(), (5, Some(6)));
        assert!(parse_user("root").is_err());
        assert!(parse_user("5:x").is_err());
    }

    #[test]
    fn env_without_equals_is_rejected() {
        assert!(merge_env(&[], &["NOEQ".into()]).is_err());
        assert!(merge_env(&[], &["=v".into()]).is_err());
    }

    #[test]
    fn resources_json_holds_only_the_given_limits() {
        let flags = ResourceFlags {
            memory: Some(1 << 20),
            cpu_shares: Some(512),
            ..Default::default()
        };
        let v: Value = serde_json::from_slice(&linux_resources(&flags)).unwrap();
        assert_eq!(
            v,
            json!({"memory": {"limit": 1048576}, "cpu": {"shares": 512}})
        );
    }
}
