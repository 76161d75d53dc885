//! Every RPC of the API, as the descriptor set the server registers for
//! reflection names them.

use prost::Message;
use prost_types::FileDescriptorSet;
use verdad::proto::FILE_DESCRIPTOR_SET;

/// A method of the API: its path and whether the caller or the server
/// streams.
#[derive(Debug, Clone)]
pub(crate) struct Method {
    pub(crate) path: String,
    pub(crate) client_streaming: bool,
    pub(crate) server_streaming: bool,
}

/// Every method of the verdad.v1 services.
pub(crate) fn methods() -> Vec<Method> {
    let set = FileDescriptorSet::decode(FILE_DESCRIPTOR_SET).unwrap();
    set.file
        .iter()
        .filter(|file| file.package() == "verdad.v1")
        .flat_map(|file| &file.service)
        .flat_map(|service| {
            service.method.iter().map(move |method| Method {
                path: format!("/verdad.v1.{}/{}", service.name(), method.name()),
                client_streaming: method.client_streaming(),
                server_streaming: method.server_streaming(),
            })
        })
        .collect()
}
