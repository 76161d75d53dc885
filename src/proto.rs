//! The generated gRPC code of `proto/verdad/v1`.

#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod verdad {
    pub mod v1 {
        tonic::include_proto!("verdad.v1");
    }
}

/// The encoded descriptors of Verdad's protos, served by reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/verdad_descriptor.bin"));
