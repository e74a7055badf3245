//! Compiles `proto/weir.proto` into Rust with the pure-Rust `protox` compiler, so that building
//! needs no `protoc` on the machine.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let descriptors = protox::compile(["proto/weir.proto"], ["proto"])?;
    tonic_prost_build::configure().compile_fds(descriptors)?;
    println!("cargo:rerun-if-changed=proto/weir.proto");
    Ok(())
}
