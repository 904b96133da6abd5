//! A shim started by hand (no containerd): fd 3 listener, argv as containerd sends it, and one
//! hand-encoded ttrpc `ShimInfo` call to prove that it serves.

use std::fs;
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use super::proc::{Exit, Proc};
use super::shims::Shim;
use super::sys;

/// A shim process started directly, with its own temp dir; killed and removed on drop.
pub struct ManualShim {
    pub dir: PathBuf,
    proc: Proc,
    stderr: Option<JoinHandle<String>>,
}

impl ManualShim {
    /// Starts `shim` with containerd's usual flags plus `extra`, serving on `<dir>/shim.sock`.
    pub fn start(shim: &Shim, tag: &str, extra: &[&str]) -> ManualShim {
        let dir = PathBuf::from(format!(
            "/tmp/e2e-{}-{tag}-{}",
            std::process::id(),
            shim.name
        ));
        let _ = fs::remove_dir_all(&dir);
        let bundle = dir.join("bundle");
        let work = dir.join("work");
        fs::create_dir_all(&bundle).expect("mkdir bundle");
        fs::create_dir_all(&work).expect("mkdir workdir");
        let listener = UnixListener::bind(dir.join("shim.sock")).expect("bind shim socket");
        let fd = listener.as_raw_fd();
        let mut cmd = Command::new(&shim.path);
        cmd.args(["-namespace", &format!("e2e-{tag}"), "-workdir"])
            .arg(&work)
            .arg("-address")
            .arg(dir.join("no-containerd.sock"))
            .args(["-containerd-binary", "/bin/true"])
            .args(extra)
            .arg("-debug")
            .current_dir(&bundle)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        // SAFETY: the closure only calls dup2/fcntl, which are async-signal-safe.
        unsafe {
            cmd.pre_exec(move || sys::install_as_fd3(fd));
        }
        let (proc, mut child) = Proc::spawn(&mut cmd).expect("spawn shim");
        drop(listener);
        let mut err = child.stderr.take().expect("shim stderr");
        let stderr = thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            s
        });
        ManualShim {
            dir,
            proc,
            stderr: Some(stderr),
        }
    }

    pub fn pid(&self) -> i32 {
        self.proc.pid()
    }

    /// Waits (bounded) for the shim to exit; returns how, and what it wrote to stderr.
    pub fn wait_exit(&mut self, bound: Duration) -> (Exit, String) {
        let exit = self.proc.wait_timeout(bound);
        if exit == Exit::TimedOut {
            return (exit, String::new());
        }
        let err = self
            .stderr
            .take()
            .map(|h| h.join().unwrap_or_default())
            .unwrap_or_default();
        (exit, err)
    }

    /// Calls `containerd.runtime.linux.shim.v1.Shim/ShimInfo`; returns the reported shim pid.
    pub fn shim_info(&self) -> io::Result<u32> {
        let mut s = UnixStream::connect(self.dir.join("shim.sock"))?;
        s.set_read_timeout(Some(Duration::from_secs(20)))?;
        let mut req = Vec::new();
        put_bytes(&mut req, 1, b"containerd.runtime.linux.shim.v1.Shim");
        put_bytes(&mut req, 2, b"ShimInfo");
        put_bytes(&mut req, 3, b"");
        let mut frame = Vec::new();
        frame.extend_from_slice(&(req.len() as u32).to_be_bytes());
        frame.extend_from_slice(&1u32.to_be_bytes()); // stream id
        frame.extend_from_slice(&[1, 0]); // request, no flags
        frame.extend_from_slice(&req);
        s.write_all(&frame)?;
        let mut header = [0u8; 10];
        s.read_exact(&mut header)?;
        let len = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let mut body = vec![0u8; len];
        s.read_exact(&mut body)?;
        let bad = |m: &str| io::Error::new(io::ErrorKind::InvalidData, m.to_string());
        if header[8] != 2 {
            return Err(bad("not a ttrpc response"));
        }
        let fields = fields(&body).ok_or_else(|| bad("bad response"))?;
        if let Some((_, Field::Bytes(status))) = fields.iter().find(|(n, _)| *n == 1) {
            let code = fields_of(status)
                .iter()
                .find_map(|(n, f)| match (n, f) {
                    (1, Field::Varint(c)) => Some(*c),
                    _ => None,
                })
                .unwrap_or(0);
            if code != 0 {
                return Err(bad(&format!("ShimInfo failed with code {code}")));
            }
        }
        let payload = fields
            .iter()
            .find_map(|(n, f)| match (n, f) {
                (2, Field::Bytes(p)) => Some(p.clone()),
                _ => None,
            })
            .unwrap_or_default();
        Ok(fields_of(&payload)
            .iter()
            .find_map(|(n, f)| match (n, f) {
                (1, Field::Varint(v)) => Some(*v as u32),
                _ => None,
            })
            .unwrap_or(0))
    }
}

impl Drop for ManualShim {
    fn drop(&mut self) {
        self.proc.kill_group();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_bytes(out: &mut Vec<u8>, field: u64, data: &[u8]) {
    put_varint(out, field << 3 | 2);
    put_varint(out, data.len() as u64);
    out.extend_from_slice(data);
}

enum Field {
    Varint(u64),
    Bytes(Vec<u8>),
}

fn varint(buf: &[u8], at: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(*at)?;
        *at += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return Some(v);
        }
    }
    None
}

/// Decodes the top-level fields of a protobuf message (varint and length-delimited only).
fn fields(buf: &[u8]) -> Option<Vec<(u64, Field)>> {
    let mut at = 0;
    let mut out = Vec::new();
    while at < buf.len() {
        let key = varint(buf, &mut at)?;
        let f = match key & 7 {
            0 => Field::Varint(varint(buf, &mut at)?),
            2 => {
                let n = varint(buf, &mut at)? as usize;
                let b = buf.get(at..at + n)?.to_vec();
                at += n;
                Field::Bytes(b)
            }
            _ => return None,
        };
        out.push((key >> 3, f));
    }
    Some(out)
}

fn fields_of(buf: &[u8]) -> Vec<(u64, Field)> {
    fields(buf).unwrap_or_default()
}
