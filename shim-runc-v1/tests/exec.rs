//! Exec processes: exit codes, output, ids, concurrency, kill and delete.

mod common;

use std::sync::Arc;
use std::thread;

use common::*;
use shim_proto::shim::{
    DeleteProcessRequest, ExecProcessRequest, StartRequest, StateRequest, WaitRequest,
};
use shim_proto::time::is_go_zero;
use shim_proto::types::Status;

fn exec_reports_its_exit_code_output_and_delete_response() {
    let (shim, client, _) = running(&["sleep", "1000"]);
    let (out, err) = (shim.fifo("e1-stdout"), shim.fifo("e1-stderr"));
    let (reader, _err_reader) = (FifoReader::start(&out), FifoReader::start(&err));
    let io = Stdio3 {
        stdout: out.display().to_string(),
        stderr: err.display().to_string(),
        ..Default::default()
    };
    let pid = exec_started(
        &shim,
        &client,
        "e1",
        &["sh", "-c", "echo hi from exec; exit 7"],
        io,
    );
    assert_eq!(shim.wait_for(&client, "e1"), 7);
    assert_eq!(reader.finish().text(), "hi from exec\n");

    let st = state_now(&client, "e1");
    assert_eq!(
        (st.status(), st.exit_status, st.pid),
        (Status::Stopped, 7, pid)
    );
    assert_eq!(st.bundle, shim.bundle.display().to_string());

    let del = client
        .delete_process(ctx(), &DeleteProcessRequest { id: "e1".into() })
        .unwrap();
    assert_eq!((del.pid, del.exit_status), (pid, 7));
    assert!(!is_go_zero(del.exited_at.as_ref().unwrap()));
    assert_eq!(
        status_of(client.state(ctx(), &StateRequest { id: "e1".into() })).0,
        5
    );

    let (code, msg) = status_of(client.delete_process(
        ctx(),
        &DeleteProcessRequest {
            id: shim.id.clone(),
        },
    ));
    assert_eq!(
        (code, msg.as_str()),
        (3, "cannot delete init process with DeleteProcess")
    );
}

fn duplicate_exec_ids_already_exist_and_unknown_ids_are_not_found() {
    let (shim, client, _) = running(&["sleep", "1000"]);
    let req = |id: &str| ExecProcessRequest {
        id: id.into(),
        spec: Some(process_spec(&["true"], false)),
        ..Default::default()
    };
    client.exec(ctx(), &req("d1")).unwrap();
    let (code, msg) = status_of(client.exec(ctx(), &req("d1")));
    assert_eq!((code, msg.as_str()), (6, "id d1: already exists"));
    let (code, _) = status_of(client.exec(ctx(), &req(&shim.id)));
    assert_eq!(code, 6, "the init id is taken too");

    let (code, msg) = status_of(client.start(ctx(), &StartRequest { id: "nope".into() }));
    assert_eq!((code, msg.as_str()), (5, "process nope does not exist"));
    for r in [
        client
            .state(ctx(), &StateRequest { id: "nope".into() })
            .map(|_| ()),
        client
            .wait(ctx(), &WaitRequest { id: "nope".into() })
            .map(|_| ()),
        kill_process(&client, "nope", 9).map(|_| ()),
    ] {
        assert_eq!(status_of(r).0, 5);
    }
}

fn fifty_concurrent_execs_each_report_their_own_code() {
    let (shim, client, _) = running(&["sleep", "1000"]);
    let client = Arc::new(client);
    let shim = Arc::new(shim);
    let workers: Vec<_> = (0..50)
        .map(|i| {
            let (client, shim) = (client.clone(), shim.clone());
            thread::spawn(move || {
                let id = format!("x{i}");
                let code = format!("exit {i}");
                exec_started(&shim, &client, &id, &["sh", "-c", &code], Stdio3::default());
                (i, shim.wait_for(&client, &id))
            })
        })
        .collect();
    for w in workers {
        let (i, status) = w.join().unwrap();
        assert_eq!(status, i, "exec x{i}");
    }
}

fn killing_an_exec_gives_137_and_killing_it_again_is_not_found() {
    let (shim, client, _) = running(&["sleep", "1000"]);
    exec_started(&shim, &client, "k1", &["sleep", "1000"], Stdio3::default());
    kill_process(&client, "k1", 9).unwrap();
    assert_eq!(shim.wait_for(&client, "k1"), 137);
    let (code, msg) = status_of(kill_process(&client, "k1", 9));
    assert_eq!((code, msg.as_str()), (5, "process already finished"));
    // The init is untouched.
    let st = state_now(&client, &shim.id);
    assert_eq!(st.status(), Status::Running);
}

fn main() {
    trials::run(trials::trials!(
        missing();
        exec_reports_its_exit_code_output_and_delete_response,
        duplicate_exec_ids_already_exist_and_unknown_ids_are_not_found,
        fifty_concurrent_execs_each_report_their_own_code,
        killing_an_exec_gives_137_and_killing_it_again_is_not_found,
    ));
}
