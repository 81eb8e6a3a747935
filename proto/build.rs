//! Generates the Rust messages and ttrpc stubs of `agent/v1/agent.proto`.
//!
//! The protobuf parser is the pure-Rust one of `protobuf-parse`, so building needs no `protoc`.

use std::{fs, path::Path};

use ttrpc_codegen::{Codegen, Customize, ProtobufCustomize};

fn main() {
    let proto = "agent/v1/agent.proto";
    println!("cargo:rerun-if-changed={proto}");

    let out_dir = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR for build scripts");
    Codegen::new()
        .out_dir(&out_dir)
        .inputs([proto])
        .include("agent/v1")
        .rust_protobuf()
        .customize(Customize {
            async_all: true,
            ..Default::default()
        })
        .rust_protobuf_customize(ProtobufCustomize::default().gen_mod_rs(false))
        .run()
        .expect("generate the agent API from agent.proto");

    // `include!` rejects inner attributes; lib.rs sets the allowances on the module instead.
    for file in ["agent.rs", "agent_ttrpc.rs"] {
        let path = Path::new(&out_dir).join(file);
        let code = fs::read_to_string(&path).expect("read generated code");
        let kept: Vec<&str> = code
            .lines()
            .filter(|l| !(l.starts_with("#![") || l.starts_with("//!")))
            .collect();
        fs::write(&path, kept.join("\n")).expect("write generated code");
    }
}
