//! Routing one ttrpc request to the Shim service: method name, payload decode, call, reply encode.

use std::any::Any as PanicPayload;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::SystemTime;

use prost::Message;
use shim_core::service::ExitWatch;
use shim_proto::shim::WaitRequest;

use crate::errors::{self, Reply};
use crate::log;
use crate::service::{wait_response, Service};

/// The one service this shim serves.
pub const SHIM_SERVICE: &str = "containerd.runtime.linux.shim.v1.Shim";

/// Where a call's answer goes: the connection and stream that asked.
pub trait Respond: Send {
    /// False once the caller's connection is gone.
    fn wanted(&self) -> bool;
    /// The encoded response, or the status to answer with. Called at most once.
    fn respond(self: Box<Self>, reply: Reply<Vec<u8>>);
}

/// Run `method` and answer through `respond`: at once for every method but Wait, whose answer
/// comes when the process exits (no thread waits for it). A panicking handler is answered too.
pub fn call(svc: &Service, method: &str, payload: &[u8], respond: Box<dyn Respond>) {
    if method == "Wait" {
        match WaitRequest::decode(payload)
            .map_err(undecodable)
            .and_then(|r| svc.wait(r))
        {
            Ok(exit) => exit.watch(Box::new(WaitAnswer(respond))),
            Err(status) => respond.respond(Err(status)),
        }
        return;
    }
    let reply =
        catch_unwind(AssertUnwindSafe(|| route(svc, method, payload))).unwrap_or_else(|panic| {
            let text = panic_text(panic.as_ref());
            log::error!("handler panicked", "method" => method, "panic" => text);
            Err(errors::panicked(&text))
        });
    respond.respond(reply);
}

fn route(svc: &Service, method: &str, payload: &[u8]) -> Reply<Vec<u8>> {
    match method {
        "State" => handle(payload, |r| svc.state(r)),
        "Create" => handle(payload, |r| svc.create(r)),
        "Start" => handle(payload, |r| svc.start(r)),
        "Delete" => handle(payload, |r| svc.delete(r)),
        "DeleteProcess" => handle(payload, |r| svc.delete_process(r)),
        "ListPids" => handle(payload, |r| svc.list_pids(r)),
        "Pause" => handle(payload, |r| svc.pause(r)),
        "Resume" => handle(payload, |r| svc.resume(r)),
        "Checkpoint" => handle(payload, |r| svc.checkpoint(r)),
        "Kill" => handle(payload, |r| svc.kill(r)),
        "Exec" => handle(payload, |r| svc.exec(r)),
        "ResizePty" => handle(payload, |r| svc.resize_pty(r)),
        "CloseIO" => handle(payload, |r| svc.close_io(r)),
        "ShimInfo" => handle(payload, |r| svc.shim_info(r)),
        "Update" => handle(payload, |r| svc.update(r)),
        _ => Err(errors::unimplemented("method", method)),
    }
}

fn handle<Req, Resp>(payload: &[u8], f: impl FnOnce(Req) -> Reply<Resp>) -> Reply<Vec<u8>>
where
    Req: Message + Default,
    Resp: Message,
{
    let req = Req::decode(payload).map_err(undecodable)?;
    f(req).map(|resp| resp.encode_to_vec())
}

fn undecodable(e: prost::DecodeError) -> ttrpc::Status {
    errors::invalid(format!("decoding the request: {e}"))
}

/// A Wait's answer: told of the exit by the thread that records it, encoded for the connection.
struct WaitAnswer(Box<dyn Respond>);

impl ExitWatch for WaitAnswer {
    fn wanted(&self) -> bool {
        self.0.wanted()
    }

    fn exited(self: Box<Self>, status: u32, at: Option<SystemTime>) {
        self.0
            .respond(Ok(wait_response(status, at).encode_to_vec()));
    }
}

/// The message of a panic payload (`&str` or `String`), or a placeholder.
pub fn panic_text(payload: &(dyn PanicPayload + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic payload".to_string()
    }
}
