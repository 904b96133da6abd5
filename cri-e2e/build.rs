//! Compiles the vendored CRI v1 api.proto into a tonic client (no server: we are the kubelet).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=protos/runtime/v1/api.proto");
    tonic_build::configure()
        .build_server(false)
        .compile_protos(&["protos/runtime/v1/api.proto"], &["protos"])?;
    Ok(())
}
