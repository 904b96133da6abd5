//! Every request gets a reply: method handlers wrapped so a panic or a decode error becomes a status.
//!
//! ttrpc 0.10's sync server closes the whole connection when a `MethodHandler` returns `Err` (the
//! generated code does so for a request payload it cannot decode) and sends nothing when a handler
//! panics. containerd treats a closed connection as a dead shim, and a missing reply hangs it.

use std::any::Any;
use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};

use ttrpc::proto::ResponseInit;
use ttrpc::{Code, MethodHandler, Request, Response, TtrpcContext};

use crate::log;

type Handlers = HashMap<String, Box<dyn MethodHandler + Send + Sync>>;

/// Wrap every handler of a generated service map.
pub fn guard_all(methods: Handlers) -> Handlers {
    methods
        .into_iter()
        .map(|(path, inner)| {
            let guarded: Box<dyn MethodHandler + Send + Sync> = Box::new(Guarded {
                path: path.clone(),
                inner,
            });
            (path, guarded)
        })
        .collect()
}

struct Guarded {
    path: String,
    inner: Box<dyn MethodHandler + Send + Sync>,
}

impl MethodHandler for Guarded {
    fn handler(&self, ctx: TtrpcContext, req: Request) -> ttrpc::Result<()> {
        // What we need to answer ourselves if the generated handler does not.
        let stream_id = ctx.mh.stream_id;
        let res_tx = ctx.res_tx.clone();
        let conn_ctx = ctx.conn_ctx.clone();
        let status = match catch_unwind(AssertUnwindSafe(|| self.inner.handler(ctx, req))) {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(e)) => {
                log::warn!("request failed before a reply", "method" => self.path, "error" => format!("{e:?}"));
                match e {
                    ttrpc::Error::RpcStatus(s) => s,
                    // Undecodable request (or an unencodable reply): the caller sent garbage.
                    other => ttrpc::get_status(
                        Code::INVALID_ARGUMENT,
                        format!("{}: {other:?}", self.path),
                    ),
                }
            }
            Err(panic) => {
                let text = panic_text(panic.as_ref());
                log::error!("handler panicked", "method" => self.path, "panic" => text);
                ttrpc::get_status(Code::UNKNOWN, format!("panic: {text}"))
            }
        };
        // A failed send means the connection is gone already; nothing more to do for it.
        if let Err(e) =
            ttrpc::send_response(stream_id, Response::init_status(status), res_tx, &conn_ctx)
        {
            log::debug!("could not answer a failed request", "method" => self.path, "error" => format!("{e:?}"));
        }
        Ok(())
    }
}

/// The message of a panic payload (`&str` or `String`), or a placeholder.
pub fn panic_text(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic payload".to_string()
    }
}
