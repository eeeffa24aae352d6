//! Compiles cairn's etcd-compatible protos with tonic (protoc comes from `protobuf-compiler`),
//! and serde implementations of etcd's packages for the JSON gateway (pbjson, with the proto
//! field names, as etcd's grpc-gateway writes them).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = [
        "proto/mvccpb/kv.proto",
        "proto/authpb/auth.proto",
        "proto/etcdserverpb/rpc.proto",
        "proto/cairnpb/internal.proto",
        "proto/cairnpb/peer.proto",
    ];
    for p in &protos {
        println!("cargo:rerun-if-changed={p}");
    }
    let descriptors = std::path::PathBuf::from(std::env::var("OUT_DIR")?).join("descriptors.bin");
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .file_descriptor_set_path(&descriptors)
        .compile_protos(&protos, &["proto"])?;
    pbjson_build::Builder::new()
        .register_descriptors(&std::fs::read(&descriptors)?)?
        .preserve_proto_field_names()
        // etcd's gateway ignores fields a message does not have.
        .ignore_unknown_fields()
        .build(&[".etcdserverpb", ".mvccpb", ".authpb"])?;
    Ok(())
}
