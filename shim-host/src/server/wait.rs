//! A Wait's answer, sent when the process exits: no thread waits for it.

use std::time::SystemTime;

use prost::Message;
use shim_core::service::{ExitOf, ExitWatch};

use super::Respond;
use crate::status::Reply;

/// Answer a Wait through `respond`: with `response`'s message (the front's WaitResponse) once
/// `exit`'s process has exited, or at once with the status `exit` was refused with.
pub fn answer_at_exit<M: Message + 'static>(
    exit: Reply<ExitOf>,
    respond: Box<dyn Respond>,
    response: fn(u32, Option<SystemTime>) -> M,
) {
    match exit {
        Ok(exit) => exit.watch(Box::new(WaitAnswer { respond, response })),
        Err(status) => respond.respond(Err(status)),
    }
}

/// Told of the exit by the thread that records it, encoded for the connection.
struct WaitAnswer<M> {
    respond: Box<dyn Respond>,
    response: fn(u32, Option<SystemTime>) -> M,
}

impl<M: Message> ExitWatch for WaitAnswer<M> {
    fn wanted(&self) -> bool {
        self.respond.wanted()
    }

    fn exited(self: Box<Self>, status: u32, at: Option<SystemTime>) {
        let reply = (self.response)(status, at).encode_to_vec();
        self.respond.respond(Ok(reply));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc::{channel, Sender};
    use std::time::Duration;

    use shim_proto::task_v2::WaitResponse;

    /// Hands the reply it is given to the test.
    struct Caller(Sender<Reply<Vec<u8>>>);

    impl Respond for Caller {
        fn wanted(&self) -> bool {
            true
        }

        fn respond(self: Box<Self>, reply: Reply<Vec<u8>>) {
            self.0.send(reply).unwrap();
        }
    }

    fn response(status: u32, at: Option<SystemTime>) -> WaitResponse {
        WaitResponse {
            exit_status: status,
            exited_at: Some(crate::types::exit_time(at)),
        }
    }

    #[test]
    fn the_exit_is_answered_with_the_front_s_message() {
        let (tx, rx) = channel();
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(7);
        let watch: Box<dyn ExitWatch> = Box::new(WaitAnswer {
            respond: Box::new(Caller(tx)),
            response,
        });
        assert!(watch.wanted());
        watch.exited(137, Some(at));
        let bytes = rx.recv().unwrap().unwrap();
        assert_eq!(
            WaitResponse::decode(bytes.as_slice()).unwrap(),
            response(137, Some(at))
        );
    }

    #[test]
    fn a_refused_wait_is_answered_at_once() {
        let (tx, rx) = channel();
        let refused = crate::status::invalid("bad request");
        answer_at_exit(Err(refused), Box::new(Caller(tx)), response);
        let Err(s) = rx.try_recv().unwrap() else {
            panic!("a refused wait must be answered with its status");
        };
        assert_eq!((s.code, s.message.as_str()), (3, "bad request"));
    }
}
