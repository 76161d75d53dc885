//! Compiles the protos with protox (pure Rust), so no system `protoc` is needed,
//! and writes the descriptor set that server reflection serves.

use std::{env, path::PathBuf};

const PROTOS: &[&str] = &[
    "proto/verdad/v1/common.proto",
    "proto/verdad/v1/touchpoint.proto",
    "proto/verdad/v1/touchpoint_service.proto",
    "proto/verdad/v1/api_key.proto",
    "proto/verdad/v1/api_key_service.proto",
    "proto/verdad/v1/organisation.proto",
    "proto/verdad/v1/organisation_service.proto",
    "proto/verdad/v1/standard.proto",
    "proto/verdad/v1/service_manual.proto",
    "proto/verdad/v1/standard_service.proto",
    "proto/verdad/v1/encounter.proto",
    "proto/verdad/v1/encounter_service.proto",
    "proto/verdad/v1/journey.proto",
    "proto/verdad/v1/journey_service.proto",
    "proto/verdad/v1/recovery_case.proto",
    "proto/verdad/v1/recovery_service.proto",
    "proto/verdad/v1/analysis.proto",
    "proto/verdad/v1/analysis_service.proto",
    "proto/verdad/v1/feed.proto",
    "proto/verdad/v1/feed_service.proto",
    "proto/verdad/v1/webhook.proto",
    "proto/verdad/v1/webhook_service.proto",
    // The HTTP door renders error details from the descriptors.
    "google/rpc/status.proto",
    "google/rpc/error_details.proto",
];

/// Where the imports are found: ours, and the vendored googleapis protos.
const INCLUDES: &[&str] = &["proto", "third_party/googleapis"];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // compile_fds does not emit this itself.
    println!("cargo:rerun-if-changed=proto");
    println!("cargo:rerun-if-changed=third_party/googleapis");
    // sqlx::migrate! embeds the migrations, but cargo does not know it
    // reads them: without this a new migration is left out of the build.
    println!("cargo:rerun-if-changed=migrations");

    let mut compiler = protox::Compiler::new(INCLUDES)?;
    compiler.include_imports(true).include_source_info(true);
    compiler.open_files(PROTOS)?;

    // compile_fds does not write the descriptor file reflection needs.
    // It is encoded by protox itself: prost_types' options drop
    // extensions, and the HTTP door reads its routes from the
    // google.api.http extension.
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    std::fs::write(
        out_dir.join("verdad_descriptor.bin"),
        compiler.encode_file_descriptor_set(),
    )?;
    let fds = compiler.file_descriptor_set();

    tonic_prost_build::configure()
        // Requests that do not parse are INVALID_ARGUMENT (src/grpc/codec.rs).
        .codec_path("crate::grpc::codec::VerdadCodec")
        .build_server(true)
        .build_client(true)
        .compile_fds(fds)?;
    Ok(())
}
