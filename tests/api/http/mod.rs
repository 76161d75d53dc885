//! The HTTP/JSON door and gRPC-Web, over real loopback connections.

mod conformance;
mod door;
mod readme;
mod streams;
mod web;
