//! The gRPC door: the request made a message by the descriptors and sent
//! as raw bytes, the answer read back as JSON.

use bytes::{Buf, BufMut, Bytes};
use prost::Message;
use prost_reflect::DynamicMessage;
use serde_json::{Value, json};
use tonic::{
    Request, Status,
    codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder},
    metadata::MetadataValue,
};
use tonic_types::StatusExt;

use super::{Doors, Refusal, code_name, method_named};

impl Refusal {
    fn from_status(status: &Status) -> Self {
        let details = status.get_error_details();
        Refusal {
            code: code_name(status.code()).to_owned(),
            reason: details
                .error_info()
                .map(|info| info.reason.clone())
                .unwrap_or_default(),
            fields: details
                .bad_request()
                .map(|bad| {
                    bad.field_violations
                        .iter()
                        .map(|v| v.field.clone())
                        .collect()
                })
                .unwrap_or_default(),
            message: status.message().to_owned(),
            http_status: None,
        }
    }
}

/// Passes messages through as bytes.
#[derive(Default, Clone)]
struct BytesCodec;

impl Codec for BytesCodec {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = BytesCodec;
    type Decoder = BytesCodec;

    fn encoder(&mut self) -> Self::Encoder {
        BytesCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        BytesCodec
    }
}

impl Encoder for BytesCodec {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for BytesCodec {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

fn authorize<T>(request: &mut Request<T>, key: Option<&str>) {
    if let Some(key) = key {
        let value = MetadataValue::try_from(format!("Bearer {key}")).expect("a header value");
        request.metadata_mut().insert("authorization", value);
    }
}

impl Doors {
    /// Calls `rpc` over gRPC. A client stream's `request` is the list of
    /// its messages; ExportEventLog's pieces come back as `{"file": …}`;
    /// a watch answers `{}` once it is open, and is closed at once.
    pub(crate) async fn grpc(
        &self,
        rpc: &str,
        key: Option<&str>,
        request: &Value,
    ) -> Result<Value, Refusal> {
        let method = method_named(&self.descriptors, rpc);
        let path: http::uri::PathAndQuery =
            format!("/{}/{}", method.parent_service().full_name(), method.name())
                .parse()
                .unwrap();
        let encode = |value: &Value| -> Bytes {
            let message = DynamicMessage::deserialize(method.input(), value.clone())
                .unwrap_or_else(|e| {
                    panic!("{rpc}: {value} is not a {}: {e}", method.input().name())
                });
            Bytes::from(message.encode_to_vec())
        };
        let mut grpc = tonic::client::Grpc::new(self.channel.clone());
        grpc.ready().await.expect("the channel is ready");
        let decode = |bytes: Bytes| -> DynamicMessage {
            DynamicMessage::decode(method.output(), bytes)
                .unwrap_or_else(|e| panic!("{rpc} answered what is not its response: {e}"))
        };
        let answer = match (method.is_client_streaming(), method.is_server_streaming()) {
            (true, false) => {
                let messages: Vec<Bytes> = request
                    .as_array()
                    .expect("a client stream's request is a list of messages")
                    .iter()
                    .map(encode)
                    .collect();
                let mut call = Request::new(tokio_stream::iter(messages));
                authorize(&mut call, key);
                grpc.client_streaming(call, path, BytesCodec)
                    .await
                    .map(|response| decode(response.into_inner()))
            }
            (false, false) => {
                let mut call = Request::new(encode(request));
                authorize(&mut call, key);
                grpc.unary(call, path, BytesCodec)
                    .await
                    .map(|response| decode(response.into_inner()))
            }
            (false, true) if method.name() == "ExportEventLog" => {
                let mut call = Request::new(encode(request));
                authorize(&mut call, key);
                let mut stream = match grpc.server_streaming(call, path, BytesCodec).await {
                    Ok(response) => response.into_inner(),
                    Err(status) => return Err(Refusal::from_status(&status)),
                };
                let mut file = Vec::new();
                loop {
                    match stream.message().await {
                        Ok(Some(piece)) => {
                            let piece = decode(piece);
                            if let Some(chunk) = piece.get_field_by_name("chunk")
                                && let Some(bytes) = chunk.as_bytes()
                            {
                                file.extend_from_slice(bytes);
                            }
                        }
                        Ok(None) => break,
                        Err(status) => return Err(Refusal::from_status(&status)),
                    }
                }
                return Ok(json!({"file": String::from_utf8_lossy(&file)}));
            }
            (false, true) => {
                // A watch: that it opens is its answer; it is dropped open.
                let mut call = Request::new(encode(request));
                authorize(&mut call, key);
                return match grpc.server_streaming(call, path, BytesCodec).await {
                    Ok(_) => Ok(json!({})),
                    Err(status) => Err(Refusal::from_status(&status)),
                };
            }
            (true, true) => panic!("{rpc}: no bidirectional stream is expected"),
        };
        match answer {
            // As text and back, as the HTTP door's answer is read: serde_json
            // reads some floats one unit in the last place off (it lacks
            // float_roundtrip here), and both doors' answers must be read
            // alike to compare.
            Ok(message) => {
                Ok(serde_json::from_str(&serde_json::to_string(&message).unwrap()).unwrap())
            }
            Err(status) => Err(Refusal::from_status(&status)),
        }
    }
}
