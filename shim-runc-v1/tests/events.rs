//! Exit events through a fake `-containerd-binary` that hangs or fails: RPCs do not wait for it,
//! and queued exits go out in order once it works again. And through a fake containerd ttrpc
//! Events service that refuses: a permanent refusal drops that event only, Unavailable is
//! retried until the event is taken.
//!
//! The harness passes `-address /nonexistent` unless a test gives its own: there is no
//! `/nonexistent.ttrpc` socket beside it, so the shim publishes through the binary (its fallback
//! when containerd's ttrpc socket does not exist).

mod common;

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::sync::mpsc;
use std::thread;

use common::*;
use prost::Message;
use shim_proto::events::TaskExit;
use shim_proto::events_ttrpc::ForwardRequest;
use shim_proto::types::Status;

fn mkfifo(path: &Path) {
    nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
}

/// Reads `n` lines from the fifo `path` on a thread; the receiver gets them (or nothing, if they
/// never come). The fifo is opened read-write, so writers coming and going give no EOF.
fn lines_from(path: &Path, n: usize) -> mpsc::Receiver<Vec<String>> {
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let lines: Vec<String> = BufReader::new(f)
            .lines()
            .map_while(Result::ok)
            .take(n)
            .collect();
        let _ = tx.send(lines);
    });
    rx
}

fn decode_exit(bytes: &[u8]) -> TaskExit {
    let any = shim_proto::protobuf::Any::decode(bytes).unwrap();
    shim_proto::any::unpack(&any, shim_proto::type_url::TASK_EXIT).unwrap()
}

fn a_publish_that_hangs_delays_neither_state_nor_wait() {
    // The fake containerd holds `gate` open (read-write: that open never blocks), says it
    // entered, then blocks reading a line from `gate` until the test writes one.
    let dir = TempDir::new();
    let (entered, gate) = (dir.path().join("entered"), dir.path().join("gate"));
    mkfifo(&entered);
    mkfifo(&gate);
    let script = format!(
        "cat >/dev/null; exec 3<>{g}; echo in > {e}; read _ <&3; exit 0",
        e = entered.display(),
        g = gate.display()
    );
    let shim = ShimUnderTest::start_full(&["sh", "-c", "exit 7"], false, Mode::Fd3, Some(&script));
    let client = shim.client();
    let entered = lines_from(&entered, 1);
    shim.create_plain(&client);
    shim.start_task(&client);
    let got = entered
        .recv_timeout(PATIENCE)
        .expect("the exit was never published");
    assert_eq!(got, ["in"]);

    // The publisher is now stuck in the fake containerd: Wait and State must answer anyway.
    assert_eq!(shim.wait_for(&client, &shim.id), 7);
    let st = state_now(&client, &shim.id);
    assert_eq!(st.status(), Status::Stopped);
    assert_eq!(st.exit_status, 7);

    // Still blocked on the gate: a non-blocking open for writing finds its reader (ENXIO if the
    // fake had been killed or had ended; nothing else lets it past its read). A line releases it.
    let opened = OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&gate);
    let mut opened = match opened {
        Ok(f) => f,
        Err(e) => panic!("the fake containerd was no longer blocked: {e}"),
    };
    opened.write_all(b"go\n").unwrap();
    drop(opened);
    assert!(
        shim.wait_log("published event", PATIENCE),
        "the publish did not finish once released:\n{}",
        shim.log_text()
    );
}

fn exits_queued_while_publishing_fails_go_out_in_order_exec_then_init() {
    // While `down` exists the fake containerd fails (and says so once on `failing`); then it
    // stores each event as event-<n> and announces <n> on `delivered`.
    let dir = TempDir::new();
    let p = |name: &str| dir.path().join(name);
    let (down, failing, delivered) = (p("down"), p("failing"), p("delivered"));
    File::create(&down).unwrap();
    mkfifo(&failing);
    mkfifo(&delivered);
    let script = format!(
        "if [ -e {down} ]; then\n\
           cat >/dev/null\n\
           [ -e {told} ] || {{ touch {told}; echo failing > {failing}; }}\n\
           echo 'failed to dial: connection refused' >&2; exit 1\n\
         fi\n\
         n=$(cat {count} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {count}\n\
         cat > {dir}/event-$n\n\
         echo $n > {delivered}",
        down = down.display(),
        told = p("told").display(),
        failing = failing.display(),
        count = p("count").display(),
        dir = dir.path().display(),
        delivered = delivered.display(),
    );
    let shim = ShimUnderTest::start_full(&["sleep", "1000"], false, Mode::Fd3, Some(&script));
    let client = shim.client();
    let failing = lines_from(&failing, 1);
    let delivered = lines_from(&delivered, 2);
    shim.create_plain(&client);
    shim.start_task(&client);

    exec_started(
        &shim,
        &client,
        "e1",
        &["sh", "-c", "exit 3"],
        Stdio3::default(),
    );
    assert_eq!(shim.wait_for(&client, "e1"), 3);
    // The exec's exit is at the publisher, failing: the init's exit can only queue behind it.
    let got = failing
        .recv_timeout(PATIENCE)
        .expect("the exec exit was never tried");
    assert_eq!(got, ["failing"]);
    kill_process(&client, &shim.id, 9).unwrap();
    assert_eq!(shim.wait_for(&client, &shim.id), 137);

    std::fs::remove_file(&down).unwrap();
    let got = delivered
        .recv_timeout(PATIENCE)
        .expect("the queued exits were not delivered once publishing worked");
    assert_eq!(got, ["1", "2"]);
    let exec = decode_exit(&std::fs::read(p("event-1")).unwrap());
    let init = decode_exit(&std::fs::read(p("event-2")).unwrap());
    assert_eq!(
        (exec.id.as_str(), exec.exit_status),
        ("e1", 3),
        "first: {exec:?}"
    );
    assert_eq!(
        (init.id.as_str(), init.exit_status),
        (shim.id.as_str(), 137),
        "second: {init:?}"
    );
    assert_eq!(exec.container_id, shim.id);
    assert_eq!(init.container_id, shim.id);
}

fn an_undeliverable_exit_is_given_up_once_the_task_is_deleted_and_the_log_says_so() {
    // containerd stays away for good: every publish fails.
    let script = "cat >/dev/null; echo 'failed to dial: connection refused' >&2; exit 1";
    let shim = ShimUnderTest::start_full(&["sh", "-c", "exit 4"], false, Mode::Fd3, Some(script));
    let client = shim.client();
    shim.create_plain(&client);
    shim.start_task(&client);
    assert_eq!(shim.wait_for(&client, &shim.id), 4);
    assert!(
        shim.wait_log("msg=\"post event\"", PATIENCE),
        "the exit was never tried:\n{}",
        shim.log_text()
    );
    client
        .delete(ctx(), &shim_proto::protobuf::Empty {})
        .unwrap();
    assert!(
        shim.wait_log("msg=\"event not delivered\"", PATIENCE),
        "the publisher kept retrying after Delete:\n{}",
        shim.log_text()
    );
    let log = shim.log_text();
    let line = log
        .lines()
        .find(|l| l.contains("msg=\"event not delivered\""))
        .unwrap_or_default();
    assert!(line.contains("reason=\"task deleted\""), "{line}");
    assert!(line.contains("exit_status=4"), "{line}");
}

/// A fake containerd serving Events.Forward on `listener`, one call per connection (as the
/// shim makes them): the n-th call is answered with `codes[n]` (0 = OK; OK past the end). Each
/// call's (answer, TaskExit) goes to the receiver; the fake ends after `calls` calls.
fn fake_events(
    listener: UnixListener,
    codes: Vec<i32>,
    calls: usize,
) -> mpsc::Receiver<(i32, TaskExit)> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for n in 0..calls {
            let Ok((mut sock, _)) = listener.accept() else {
                return;
            };
            let mut header = [0u8; 10];
            if sock.read_exact(&mut header).is_err() {
                return;
            }
            let len = u32::from_be_bytes(header[0..4].try_into().unwrap()) as usize;
            let stream = u32::from_be_bytes(header[4..8].try_into().unwrap());
            let mut body = vec![0u8; len];
            sock.read_exact(&mut body).unwrap();
            let req = ttrpc::Request::decode(body.as_slice()).unwrap();
            assert_eq!(req.method, "Forward");
            let forward = ForwardRequest::decode(req.payload.as_slice()).unwrap();
            let event = forward.envelope.and_then(|e| e.event).unwrap();
            let code = codes.get(n).copied().unwrap_or(0);
            let resp = ttrpc::Response {
                status: Some(ttrpc::Status {
                    code,
                    message: format!("fake containerd answers {code}"),
                    ..Default::default()
                }),
                payload: if code == 0 {
                    shim_proto::protobuf::Empty {}.encode_to_vec()
                } else {
                    Vec::new()
                },
            }
            .encode_to_vec();
            let mut frame = (resp.len() as u32).to_be_bytes().to_vec();
            frame.extend_from_slice(&stream.to_be_bytes());
            frame.extend_from_slice(&[2, 0]);
            frame.extend_from_slice(&resp);
            sock.write_all(&frame).unwrap();
            let exit = shim_proto::any::unpack(&event, shim_proto::type_url::TASK_EXIT).unwrap();
            if tx.send((code, exit)).is_err() {
                return;
            }
        }
    });
    rx
}

/// A shim whose containerd is the fake Events service answering `codes` (see `fake_events`),
/// for a container running `args`; the publish binary must never run.
fn shim_with_fake_events(
    args: &[&str],
    codes: Vec<i32>,
    calls: usize,
) -> (ShimUnderTest, mpsc::Receiver<(i32, TaskExit)>, TempDir) {
    let dir = TempDir::new();
    let address = dir.path().join("containerd.sock");
    let listener = UnixListener::bind(dir.path().join("containerd.sock.ttrpc")).unwrap();
    let calls = fake_events(listener, codes, calls);
    let script = "echo 'the publish binary ran' >&2; exit 1";
    let shim = ShimUnderTest::start_publishing(args, false, Mode::Fd3, Some(script), &address);
    (shim, calls, dir)
}

fn an_exit_containerd_refuses_is_dropped_and_the_next_exit_still_arrives() {
    let invalid = ttrpc::Code::INVALID_ARGUMENT as i32;
    let (shim, calls, _dir) = shim_with_fake_events(&["sleep", "1000"], vec![invalid], 2);
    let client = shim.client();
    shim.create_plain(&client);
    shim.start_task(&client);
    exec_started(
        &shim,
        &client,
        "e1",
        &["sh", "-c", "exit 3"],
        Stdio3::default(),
    );
    assert_eq!(shim.wait_for(&client, "e1"), 3);
    let (code, first) = calls.recv_timeout(PATIENCE).expect("no Forward call");
    assert_eq!(
        (code, first.id.as_str(), first.exit_status),
        (invalid, "e1", 3)
    );
    assert!(
        shim.wait_log("msg=\"event refused by containerd, dropped\"", PATIENCE),
        "{}",
        shim.log_text()
    );
    let log = shim.log_text();
    let line = log
        .lines()
        .find(|l| l.contains("event refused by containerd, dropped"))
        .unwrap_or_default();
    assert!(line.contains("id=e1"), "{line}");

    // The refused exit holds nothing up: the init's exit is the next call, and is taken.
    kill_process(&client, &shim.id, 9).unwrap();
    assert_eq!(shim.wait_for(&client, &shim.id), 137);
    let (code, second) = calls
        .recv_timeout(PATIENCE)
        .expect("no second Forward call");
    assert_eq!(
        (code, second.id.as_str(), second.exit_status),
        (0, shim.id.as_str(), 137),
        "the refused exit was sent again: {second:?}"
    );
    assert!(
        !shim.log_text().contains("the publish binary ran"),
        "{}",
        shim.log_text()
    );
}

fn an_exit_containerd_answers_unavailable_is_retried_until_it_is_taken() {
    let unavailable = ttrpc::Code::UNAVAILABLE as i32;
    let (shim, calls, _dir) =
        shim_with_fake_events(&["sh", "-c", "exit 5"], vec![unavailable, unavailable], 3);
    let client = shim.client();
    shim.create_plain(&client);
    shim.start_task(&client);
    assert_eq!(shim.wait_for(&client, &shim.id), 5);
    let mut got = Vec::new();
    for _ in 0..3 {
        let (code, exit) = calls
            .recv_timeout(PATIENCE)
            .expect("the exit was not tried again");
        got.push((code, exit.id, exit.exit_status));
    }
    let id = shim.id.clone();
    assert_eq!(
        got,
        [
            (unavailable, id.clone(), 5),
            (unavailable, id.clone(), 5),
            (0, id, 5)
        ]
    );
    assert!(
        shim.wait_log("attempts=3", PATIENCE),
        "no delivery on the third attempt logged:\n{}",
        shim.log_text()
    );
    let log = shim.log_text();
    assert_eq!(log.matches("msg=\"post event\"").count(), 2, "{log}");
    assert!(!log.contains("event refused"), "{log}");
}

fn main() {
    trials::run(trials::trials!(
        missing();
        a_publish_that_hangs_delays_neither_state_nor_wait,
        exits_queued_while_publishing_fails_go_out_in_order_exec_then_init,
        an_undeliverable_exit_is_given_up_once_the_task_is_deleted_and_the_log_says_so,
        an_exit_containerd_refuses_is_dropped_and_the_next_exit_still_arrives,
        an_exit_containerd_answers_unavailable_is_retried_until_it_is_taken,
    ));
}
