//! The gRPC methods the server serves, read once from the descriptors it
//! also serves by reflection: what a call's path names, whether its caller
//! streams. Metrics and logs name a call by these, never by the path a
//! caller sent.

use std::{collections::HashMap, sync::OnceLock};

use prost::Message;
use prost_types::FileDescriptorSet;

/// The name of calls to paths the server does not serve.
pub const UNKNOWN: &str = "unimplemented";

/// A method the server serves.
#[derive(Debug)]
pub struct Method {
    /// `/verdad.v1.EncounterService/RecordEncounter`.
    pub path: String,
    /// Whether the caller sends a stream of messages rather than one.
    pub client_streaming: bool,
}

/// The method at `path`, if the server serves one there.
pub fn find(path: &str) -> Option<&'static Method> {
    static METHODS: OnceLock<HashMap<String, Method>> = OnceLock::new();
    let methods = METHODS.get_or_init(|| {
        [
            crate::proto::FILE_DESCRIPTOR_SET,
            tonic_health::pb::FILE_DESCRIPTOR_SET,
            tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
            tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
        ]
        .into_iter()
        .filter_map(|encoded| FileDescriptorSet::decode(encoded).ok())
        .flat_map(|set| set.file)
        .flat_map(|file| {
            let package = file.package().to_owned();
            file.service.into_iter().flat_map(move |service| {
                let prefix = format!("/{package}.{}/", service.name());
                service.method.into_iter().map(move |method| Method {
                    path: format!("{prefix}{}", method.name()),
                    client_streaming: method.client_streaming(),
                })
            })
        })
        .map(|method| (method.path.clone(), method))
        .collect()
    });
    methods.get(path)
}

/// The path of the method at `path`, or [`UNKNOWN`] for any other path:
/// a caller without a key could otherwise grow the metrics' label set with
/// made-up paths.
pub fn name(path: &str) -> &'static str {
    find(path).map_or(UNKNOWN, |method| method.path.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_servers_own_methods_are_named() {
        for served in [
            "/verdad.v1.EncounterService/RecordEncounter",
            "/verdad.v1.AnalysisService/GetMotCycle",
            "/grpc.health.v1.Health/Check",
            "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
            "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        ] {
            assert_eq!(name(served), served);
        }
        for made_up in [
            "",
            "/",
            "/verdad.v1.EncounterService/Nope",
            "/verdad.v1.EncounterService/",
            "/made.up.Service/RecordEncounter",
            "/verdad.v1.EncounterService/RecordEncounter/",
        ] {
            assert_eq!(name(made_up), UNKNOWN, "{made_up:?}");
        }
    }

    #[test]
    fn client_streams_are_known_as_such() {
        let ingest = find("/verdad.v1.EncounterService/IngestEncounters").unwrap();
        assert!(ingest.client_streaming);
        let record = find("/verdad.v1.EncounterService/RecordEncounter").unwrap();
        assert!(!record.client_streaming);
    }
}
