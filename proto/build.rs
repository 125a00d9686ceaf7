fn main() -> Result<(), Box<dyn std::error::Error>> {
    // PROTOC comes from .cargo/config.toml (tools/protoc); fall back to the vendored binary directly
    // when the wrapper is not reachable (e.g. a build from another directory).
    if std::env::var_os("PROTOC").is_none_or(|p| !std::path::Path::new(&p).exists()) {
        std::env::set_var("PROTOC", protoc_bin_vendored::protoc_bin_path()?);
    }
    println!("cargo:rerun-if-changed=proto/federation.proto");
    tonic_prost_build::configure().compile_protos(&["proto/federation.proto"], &["proto"])?;
    Ok(())
}
