//! Container stdio through the shim: byte-exact output, stdin to EOF, and a terminal with resize.

mod common;

use std::io::Write;

use common::*;
use shim_proto::shim::{CloseIoRequest, ExecProcessRequest, ResizePtyRequest, StartRequest};

fn stdout_and_stderr_arrive_byte_exact_and_separately() {
    let shim = ShimUnderTest::start(
        &["sh", "-c", "echo out; echo err >&2; echo more; exit 0"],
        false,
    );
    let client = shim.client();
    let (out, err) = (shim.fifo("stdout"), shim.fifo("stderr"));
    let (out_r, err_r) = (FifoReader::start(&out), FifoReader::start(&err));
    let io = Stdio3 {
        stdout: out.display().to_string(),
        stderr: err.display().to_string(),
        ..Default::default()
    };
    shim.create(&client, io);
    shim.start_task(&client);
    assert_eq!(shim.wait_for(&client, &shim.id), 0);
    assert_eq!(out_r.finish().text(), "out\nmore\n");
    assert_eq!(err_r.finish().text(), "err\n");
}

fn sixty_four_mib_of_stdout_arrive_intact() {
    const SIZE: u64 = 64 << 20;
    let shim = ShimUnderTest::start(&["sh", "-c", "yes abcdefgh | head -c 67108864"], false);
    let client = shim.client();
    let (out, err) = (shim.fifo("stdout"), shim.fifo("stderr"));
    let (reader, err_reader) = (FifoReader::start(&out), FifoReader::start(&err));
    let io = Stdio3 {
        stdout: out.display().to_string(),
        stderr: err.display().to_string(),
        ..Default::default()
    };
    shim.create(&client, io);
    shim.start_task(&client);
    assert_eq!(shim.wait_for(&client, &shim.id), 0);
    let got = reader.finish();
    assert_eq!(err_reader.finish().len, 0);

    let mut expected = FNV_OFFSET;
    let unit = b"abcdefgh\n".repeat(7282); // 65538 bytes
    let mut left = SIZE as usize;
    while left > 0 {
        let n = left.min(unit.len() - unit.len() % 9);
        expected = fnv1a(expected, &unit[..n]);
        left -= n;
    }
    assert_eq!(got.len, SIZE);
    assert_eq!(got.hash, expected, "content differs");
}

fn stdin_reaches_the_container_and_closeio_gives_it_eof() {
    let shim = ShimUnderTest::start(&["cat"], false);
    let client = shim.client();
    let (inp, out, err) = (shim.fifo("stdin"), shim.fifo("stdout"), shim.fifo("stderr"));
    let data = b"hello\nworld\nno newline at the end".to_vec();
    let writer = FifoWriter::start(&inp, data.clone());
    let reader = FifoReader::start(&out);
    let _err_reader = FifoReader::start(&err);
    let io = Stdio3 {
        stdin: inp.display().to_string(),
        stdout: out.display().to_string(),
        stderr: err.display().to_string(),
        ..Default::default()
    };
    shim.create(&client, io);
    shim.start_task(&client);
    // All written (and our end closed) before CloseIO: the shim's own writer still keeps cat going.
    writer.finish();
    client
        .close_io(
            ctx(),
            &CloseIoRequest {
                id: shim.id.clone(),
                stdin: true,
            },
        )
        .unwrap();
    assert_eq!(shim.wait_for(&client, &shim.id), 0);
    assert_eq!(reader.finish().head, data);
}

fn a_terminal_sees_the_size_set_by_resize_pty() {
    let shim = ShimUnderTest::start(&["sh", "-c", "read x; stty size"], true);
    let client = shim.client();
    let (inp, out) = (shim.fifo("stdin"), shim.fifo("stdout"));
    let writer = open_writer(&inp);
    let reader = FifoReader::start(&out);
    let io = Stdio3 {
        stdin: inp.display().to_string(),
        stdout: out.display().to_string(),
        terminal: true,
        ..Default::default()
    };
    shim.create(&client, io);
    shim.start_task(&client);
    client
        .resize_pty(
            ctx(),
            &ResizePtyRequest {
                id: shim.id.clone(),
                width: 123,
                height: 45,
            },
        )
        .unwrap();
    // Only now let the shell go on to `stty size`.
    let mut stdin = writer
        .recv_timeout(PATIENCE)
        .expect("the shim never opened the stdin fifo");
    stdin.write_all(b"go\n").unwrap();
    assert_eq!(shim.wait_for(&client, &shim.id), 0);
    drop(stdin);
    let text = reader.finish().text();
    assert!(text.contains("45 123"), "stty size printed {text:?}");
}

fn a_resize_sent_before_a_terminal_exec_starts_is_applied_to_its_console() {
    let (shim, client, _) = running(&["sleep", "1000"]);
    let (inp, out) = (shim.fifo("t1-stdin"), shim.fifo("t1-stdout"));
    let writer = open_writer(&inp);
    let reader = FifoReader::start(&out);
    let req = ExecProcessRequest {
        id: "t1".into(),
        terminal: true,
        stdin: inp.display().to_string(),
        stdout: out.display().to_string(),
        spec: Some(process_spec(&["sh", "-c", "read x; stty size"], true)),
        ..Default::default()
    };
    client.exec(ctx(), &req).unwrap();
    // No console exists yet: the shim keeps the size until runc hands it one.
    client
        .resize_pty(
            ctx(),
            &ResizePtyRequest {
                id: "t1".into(),
                width: 101,
                height: 33,
            },
        )
        .unwrap();
    client
        .start(ctx(), &StartRequest { id: "t1".into() })
        .unwrap();
    // Start has returned, so the console exists; only now let the shell go on to `stty size`.
    let mut stdin = writer
        .recv_timeout(PATIENCE)
        .expect("the shim never opened the stdin fifo");
    stdin.write_all(b"go\n").unwrap();
    assert_eq!(shim.wait_for(&client, "t1"), 0);
    drop(stdin);
    let text = reader.finish().text();
    assert!(text.contains("33 101"), "stty size printed {text:?}");
}

fn a_binary_log_uri_runs_the_logger_with_the_namespace_from_the_command_line() {
    // The Go shim fails here ("namespace is required"): containerd 1.6 sends no metadata.
    let shim = ShimUnderTest::start(&["sh", "-c", "echo out; echo err >&2"], false);
    let dir = shim.dir().join("logger");
    std::fs::create_dir_all(&dir).unwrap();
    let logger = dir.join("logger.sh");
    std::fs::write(
        &logger,
        format!(
            "#!/bin/sh\n\
             {{ echo \"args=$*\"; echo \"id=$CONTAINER_ID\"; echo \"ns=$CONTAINER_NAMESPACE\"; env | wc -l; }} > {d}/meta\n\
             echo ready >&5; exec 5>&-\n\
             cat <&3 > {d}/stdout & cat <&4 > {d}/stderr; wait\n",
            d = dir.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&logger, std::fs::Permissions::from_mode(0o755)).unwrap();
    let uri = format!("binary://{}?level=debug&flag", logger.display());
    let io = Stdio3 {
        stdout: uri.clone(),
        stderr: uri,
        ..Default::default()
    };
    let client = shim.client();
    shim.create(&client, io);
    shim.start_task(&client);
    assert_eq!(shim.wait_for(&client, &shim.id), 0);
    client
        .delete(ctx(), &shim_proto::protobuf::Empty {})
        .unwrap();
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap();
    let meta = read("meta");
    assert!(meta.contains("args=level debug flag"), "{meta}");
    assert!(meta.contains(&format!("id={}", shim.id)), "{meta}");
    assert!(meta.contains(&format!("ns={}", shim.namespace)), "{meta}");
    assert_eq!(read("stdout"), "out\n");
    assert_eq!(read("stderr"), "err\n");
}

fn main() {
    trials::run(trials::trials!(
        missing();
        stdout_and_stderr_arrive_byte_exact_and_separately,
        sixty_four_mib_of_stdout_arrive_intact,
        stdin_reaches_the_container_and_closeio_gives_it_eof,
        a_terminal_sees_the_size_set_by_resize_pty,
        a_resize_sent_before_a_terminal_exec_starts_is_applied_to_its_console,
        a_binary_log_uri_runs_the_logger_with_the_namespace_from_the_command_line,
    ));
}
