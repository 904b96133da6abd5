//! Events reach containerd's ttrpc socket (`<address>.ttrpc`, Events.Forward) without running
//! the publish binary; a fake containerd events server stands in for containerd here.

mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixListener;
use std::sync::mpsc;

use common::*;
use prost::Message;
use shim_proto::events_ttrpc::ForwardRequest;
use shim_proto::protobuf::Empty;

/// Serve one Events.Forward call on `listener`: (service, method, request), answered OK.
fn serve_one_forward(listener: UnixListener) -> (String, String, ForwardRequest) {
    let (mut sock, _) = listener.accept().unwrap();
    sock.set_read_timeout(Some(RPC_TIMEOUT)).unwrap();
    let mut header = [0u8; 10];
    sock.read_exact(&mut header).unwrap();
    let len = u32::from_be_bytes(header[0..4].try_into().unwrap()) as usize;
    let stream = u32::from_be_bytes(header[4..8].try_into().unwrap());
    assert_eq!(header[8], 1, "a request frame");
    let mut body = vec![0u8; len];
    sock.read_exact(&mut body).unwrap();
    let req = ttrpc::Request::decode(body.as_slice()).unwrap();
    let forward = ForwardRequest::decode(req.payload.as_slice()).unwrap();
    let resp = ttrpc::Response {
        status: None,
        payload: Empty {}.encode_to_vec(),
    }
    .encode_to_vec();
    let mut frame = (resp.len() as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(&stream.to_be_bytes());
    frame.extend_from_slice(&[2, 0]);
    frame.extend_from_slice(&resp);
    sock.write_all(&frame).unwrap();
    (req.service, req.method, forward)
}

fn an_exit_is_forwarded_to_containerds_ttrpc_socket_and_the_publish_binary_is_not_run() {
    let dir = TempDir::new();
    let address = dir.path().join("containerd.sock");
    let listener = UnixListener::bind(dir.path().join("containerd.sock.ttrpc")).unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(serve_one_forward(listener));
    });
    // Were the binary run, it would leave this file behind.
    let marker = dir.path().join("binary-was-run");
    let script = format!("touch {}", marker.display());
    let shim = ShimUnderTest::start_publishing(
        &["sh", "-c", "exit 6"],
        false,
        Mode::Fd3,
        Some(&script),
        &address,
    );
    let client = shim.client();
    let pid = shim.create_plain(&client);
    shim.start_task(&client);
    let waited = wait_response(&client, &shim.id);

    let (service, method, forward) = rx.recv_timeout(PATIENCE).expect("no Forward call");
    assert_eq!(
        (service.as_str(), method.as_str()),
        ("containerd.services.events.ttrpc.v1.Events", "Forward")
    );
    let envelope = forward.envelope.expect("an envelope");
    assert_eq!(envelope.namespace, shim.namespace);
    assert_eq!(envelope.topic, "/tasks/exit");
    assert!(envelope.timestamp.is_some(), "the envelope is stamped");
    let event = envelope.event.expect("an event");
    let exit: shim_proto::events::TaskExit =
        shim_proto::any::unpack(&event, shim_proto::type_url::TASK_EXIT).unwrap();
    assert_eq!(
        (exit.container_id.as_str(), exit.id.as_str()),
        (shim.id.as_str(), shim.id.as_str())
    );
    assert_eq!((exit.pid, exit.exit_status), (pid, 6));
    assert_eq!(exit.exited_at, waited.exited_at);
    assert!(!marker.exists(), "the publish binary ran");
}

fn main() {
    trials::run(trials::trials!(
        missing();
        an_exit_is_forwarded_to_containerds_ttrpc_socket_and_the_publish_binary_is_not_run,
    ));
}
