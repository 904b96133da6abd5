//! Generates the prost messages and ttrpc stubs from `protos/` into OUT_DIR.

use std::path::PathBuf;

use ttrpc_codegen_prost::{Codegen, Customize};

/// Every proto compiled, relative to `protos/`. The `google/protobuf/*` files they import are
/// vendored under `protos/google/protobuf/` (upstream protobuf 3.21.12, unmodified), so the build
/// needs protoc but not libprotobuf-dev's includes; `protos/` comes first on the include path.
const PROTOS: &[&str] = &[
    "types/mount.proto",
    "types/task/task.proto",
    "runctypes/runc.proto",
    "types/runc/options/oci.proto",
    "events/task.proto",
    "runtime/v1/shim/v1/shim.proto",
    "runtime/task/v2/shim.proto",
    "runtime/task/v3/shim.proto",
    "services/ttrpc/events/v1/events.proto",
    "cgroups/cgroup1/stats/metrics.proto",
    "cgroups/cgroup2/stats/metrics.proto",
];

fn main() {
    let root = PathBuf::from("protos");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=protos");
    println!("cargo:rerun-if-env-changed=PROTOC");
    for p in PROTOS {
        println!("cargo:rerun-if-changed=protos/{p}");
    }
    let out_dir = match std::env::var("OUT_DIR") {
        Ok(dir) => dir,
        Err(e) => panic!("OUT_DIR not set by cargo: {e}"),
    };
    let result = Codegen::new()
        .out_dir(out_dir)
        .inputs(PROTOS.iter().map(|p| root.join(p)))
        .include(&root)
        .prost()
        .customize(Customize {
            gen_mod: true,
            ..Default::default()
        })
        .run();
    if let Err(e) = result {
        panic!("generating shim protos failed (is protoc installed?): {e}");
    }
}
