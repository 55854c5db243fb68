//! Generates the wire messages from the project's own .proto files (proto/wire/src/main/proto), with the protoc
//! that PROTOC names (tools/launcher/env.sh sets it to Debian's protobuf-compiler).
fn main() {
    let protos = "../../proto/wire/src/main/proto";
    println!("cargo:rerun-if-changed={protos}");
    prost_build::Config::new()
        .bytes(["."])
        .compile_protos(&[format!("{protos}/bridge_control.proto"), format!("{protos}/bridge_data.proto")], &[protos, "/usr/include"])
        .expect("generating the wire messages from proto/wire/src/main/proto (is protoc installed? set PROTOC)");
}
