//! Weir's wire protocol: the generated messages, clients and servers of the coordinator's
//! control plane ([`v1::coordinator_server`]) and the workers' data plane
//! ([`v1::exchange_server`]). See `proto/weir.proto` for what each message means.

/// Version 1 of the protocol.
#[allow(missing_docs, clippy::all)]
pub mod v1 {
    tonic::include_proto!("weir.v1");
}

pub use {prost, tonic};
