//! Compiles the protos with protox (pure Rust), so no system `protoc` is needed,
//! and writes the descriptor set that server reflection serves.

use std::{env, path::PathBuf};

use prost::Message;

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
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // compile_fds does not emit this itself.
    println!("cargo:rerun-if-changed=proto");
    // sqlx::migrate! embeds the migrations, but cargo does not know it
    // reads them: without this a new migration is left out of the build.
    println!("cargo:rerun-if-changed=migrations");

    let fds = protox::compile(PROTOS, ["proto"])?;

    // compile_fds does not write the descriptor file reflection needs.
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    std::fs::write(out_dir.join("verdad_descriptor.bin"), fds.encode_to_vec())?;

    tonic_prost_build::configure()
        // Requests that do not parse are INVALID_ARGUMENT (src/grpc/codec.rs).
        .codec_path("crate::grpc::codec::VerdadCodec")
        .build_server(true)
        .build_client(true)
        .compile_fds(fds)?;
    Ok(())
}
