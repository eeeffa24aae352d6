//! Generated protobuf types and gRPC stubs (etcd's packages, our own .proto files).
#![allow(missing_docs, clippy::all, clippy::pedantic)]

/// etcd's `mvccpb` package: key-values and events.
pub mod mvccpb {
    tonic::include_proto!("mvccpb");
    include!(concat!(env!("OUT_DIR"), "/mvccpb.serde.rs"));
}

/// etcd's `authpb` package: users, roles, permissions.
pub mod authpb {
    tonic::include_proto!("authpb");
    include!(concat!(env!("OUT_DIR"), "/authpb.serde.rs"));
}

/// etcd's `etcdserverpb` package: the client API.
pub mod etcdserverpb {
    tonic::include_proto!("etcdserverpb");
    include!(concat!(env!("OUT_DIR"), "/etcdserverpb.serde.rs"));
}

/// cairn's internal messages: the commands the write path logs and applies.
pub mod cairnpb {
    tonic::include_proto!("cairnpb");
}
