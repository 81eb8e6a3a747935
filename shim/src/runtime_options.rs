//! The runtime options containerd passes with a task: `runtimeoptions.v1.Options` (containerd's
//! `pkg/runtimeoptions/v1`), which the CRI plugin fills from the `options` table of a runtime
//! in its configuration, for runtimes that are not runc. lightpod reads `ConfigPath`: the
//! configuration file of the pods of that RuntimeClass handler (deploy/containerd/).
//!
//! containerd sends the runtime's options in `CreateTaskRequest.options` when the client set
//! no task options of its own, which the CRI plugin does not.

use std::path::PathBuf;

use containerd_shim::protos::{
    protobuf::{rt::WireType, well_known_types::any::Any, CodedInputStream},
    ttrpc,
};

use crate::error::invalid;

/// The message's name at the end of its type URL.
const OPTIONS_TYPE: &str = "runtimeoptions.v1.Options";
/// Field number of `config_path`.
const CONFIG_PATH_FIELD: u32 = 2;

/// The `ConfigPath` of the task's runtime options; `None` without options, with options of
/// another type, or with an empty path.
///
/// # Errors
///
/// The options claim to be `runtimeoptions.v1.Options` but do not decode.
pub fn config_path(options: Option<&Any>) -> Result<Option<PathBuf>, ttrpc::Error> {
    let Some(options) = options else {
        return Ok(None);
    };
    if !options.type_url.ends_with(OPTIONS_TYPE) {
        return Ok(None);
    }
    let malformed = |e: containerd_shim::protos::protobuf::Error| {
        invalid(format!("runtime options ({OPTIONS_TYPE}): {e}"))
    };
    let mut input = CodedInputStream::from_bytes(&options.value);
    let mut path = String::new();
    while let Some(tag) = input.read_raw_tag_or_eof().map_err(malformed)? {
        if tag >> 3 == CONFIG_PATH_FIELD {
            path = input.read_string().map_err(malformed)?;
            continue;
        }
        let wire_type = WireType::new(tag & 7)
            .ok_or_else(|| invalid(format!("runtime options ({OPTIONS_TYPE}): bad tag {tag}")))?;
        input.skip_field(wire_type).map_err(malformed)?;
    }
    Ok((!path.is_empty()).then(|| PathBuf::from(path)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(type_url: &str, value: &[u8]) -> Any {
        let mut any = Any::new();
        any.type_url = type_url.into();
        any.value = value.to_vec();
        any
    }

    /// `runtimeoptions.v1.Options{type_url: "x", config_path: "/etc/lightpod/xen.toml"}`, as
    /// Go's protobuf encodes it.
    fn encoded() -> Vec<u8> {
        let path = b"/etc/lightpod/xen.toml";
        let mut bytes = vec![0x0a, 1, b'x', 0x12, path.len() as u8];
        bytes.extend_from_slice(path);
        bytes
    }

    #[test]
    fn reads_the_config_path_of_runtimeoptions() {
        let cases: Vec<(&str, Option<Any>, Option<&str>)> = vec![
            ("no options", None, None),
            (
                "runtimeoptions",
                Some(options(
                    "type.googleapis.com/runtimeoptions.v1.Options",
                    &encoded(),
                )),
                Some("/etc/lightpod/xen.toml"),
            ),
            (
                "runc's options are not ours",
                Some(options("containerd.runc.v1.Options", &encoded())),
                None,
            ),
            (
                "empty runtimeoptions",
                Some(options("runtimeoptions.v1.Options", &[])),
                None,
            ),
        ];
        for (name, any, want) in cases {
            let got = config_path(any.as_ref()).expect(name);
            assert_eq!(got.as_deref(), want.map(std::path::Path::new), "{name}");
        }
    }

    #[test]
    fn truncated_options_are_refused() {
        let bytes = encoded();
        let any = options("runtimeoptions.v1.Options", &bytes[..bytes.len() - 3]);
        assert!(config_path(Some(&any)).is_err());
    }
}
