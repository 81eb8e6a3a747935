//! containerd's configuration and the CNI network list of an instance, rendered from the
//! templates in `harness/containerd/`.

use std::path::Path;

use super::options::{LogLevel, Subnet};
use crate::image::PAUSE_IMAGE;

const CONFIG_TEMPLATE: &str = include_str!("../../containerd/config.toml.in");
const CNI_TEMPLATE: &str = include_str!("../../containerd/cni.conflist.in");

/// Where Debian's `containernetworking-plugins` installs the CNI plugins.
pub(super) const CNI_BIN_DIR: &str = "/usr/lib/cni";
/// The CNI plugins the network list and the CRI plugin use.
pub(super) const CNI_PLUGINS: [&str; 4] = ["bridge", "host-local", "loopback", "portmap"];
/// The configuration file, under the instance directory.
pub(super) const CONFIG_FILE: &str = "config.toml";
/// The CNI network list, under the instance directory.
pub(super) const CNI_CONFLIST: &str = "cni/net.d/10-lightpod-e2e.conflist";

/// What the templates are filled with.
pub(super) struct Rendering<'a> {
    /// The absolute instance directory.
    pub dir: &'a Path,
    /// The CNI bridge.
    pub bridge: &'a str,
    /// The pod subnet.
    pub subnet: Subnet,
    /// containerd's log level.
    pub log_level: LogLevel,
}

impl Rendering<'_> {
    /// containerd's `config.toml`.
    pub fn config_toml(&self) -> String {
        self.render(CONFIG_TEMPLATE)
    }

    /// The CNI network list.
    pub fn cni_conflist(&self) -> String {
        self.render(CNI_TEMPLATE)
    }

    /// Replaces every `@NAME@` placeholder. The values were validated: none holds a quote,
    /// a backslash or a control character, so they go into TOML and JSON strings as they are.
    fn render(&self, template: &str) -> String {
        let dir = self.dir.display().to_string();
        let subnet = self.subnet.to_string();
        [
            ("@DIR@", dir.as_str()),
            ("@BRIDGE@", self.bridge),
            ("@SUBNET@", subnet.as_str()),
            ("@CNI_BIN_DIR@", CNI_BIN_DIR),
            ("@PAUSE_IMAGE@", PAUSE_IMAGE),
            ("@LOG_LEVEL@", self.log_level.as_str()),
        ]
        .iter()
        .fold(template.to_string(), |text, (placeholder, value)| {
            text.replace(placeholder, value)
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn rendering(dir: &Path) -> Rendering<'_> {
        Rendering {
            dir,
            bridge: "lph0",
            subnet: "10.250.91.0/24".parse().unwrap(),
            log_level: LogLevel::Debug,
        }
    }

    #[test]
    fn no_placeholder_is_left() {
        let dir = Path::new("/tmp/lp x");
        for (name, text) in [
            ("config.toml", rendering(dir).config_toml()),
            ("conflist", rendering(dir).cni_conflist()),
        ] {
            let left: Vec<&str> = text.lines().filter(|l| l.contains('@')).collect();
            assert!(left.is_empty(), "{name} keeps placeholders: {left:#?}");
        }
    }

    #[test]
    fn config_toml_points_everything_into_the_instance_directory() {
        let text = rendering(Path::new("/tmp/lp")).config_toml();
        let config: toml::Value = toml::from_str(&text).unwrap();
        let get = |path: &[&str]| {
            path.iter()
                .fold(&config, |value, key| &value[key])
                .as_str()
                .unwrap()
                .to_string()
        };
        let cri = "io.containerd.grpc.v1.cri";
        let cases = [
            (vec!["root"], "/tmp/lp/root"),
            (vec!["state"], "/tmp/lp/state"),
            (vec!["grpc", "address"], "/tmp/lp/containerd.sock"),
            (vec!["ttrpc", "address"], "/tmp/lp/containerd.sock.ttrpc"),
            (vec!["debug", "level"], "debug"),
            (vec!["plugins", cri, "sandbox_image"], PAUSE_IMAGE),
            (vec!["plugins", cri, "cni", "bin_dir"], CNI_BIN_DIR),
            (vec!["plugins", cri, "cni", "conf_dir"], "/tmp/lp/cni/net.d"),
        ];
        for (path, want) in cases {
            assert_eq!(get(&path), want, "{}", path.join("."));
        }
        assert_eq!(
            config["plugins"][cri]["restrict_oom_score_adj"].as_bool(),
            Some(true),
            "root here may lack CAP_SYS_RESOURCE"
        );
        let runtimes = &config["plugins"][cri]["containerd"]["runtimes"];
        assert_eq!(
            runtimes["lightpod"]["runtime_type"].as_str(),
            Some("io.containerd.lightpod.v2")
        );
        assert_eq!(
            runtimes["runc"]["runtime_type"].as_str(),
            Some("io.containerd.runc.v2")
        );
    }

    #[test]
    fn the_network_list_uses_the_bridge_subnet_and_ipam_directory() {
        let text = rendering(Path::new("/tmp/lp")).cni_conflist();
        let list: serde_json::Value = serde_json::from_str(&text).unwrap();
        let plugins = list["plugins"].as_array().unwrap();
        let types: Vec<&str> = plugins
            .iter()
            .map(|p| p["type"].as_str().unwrap())
            .collect();
        assert_eq!(types, ["bridge", "portmap"]);
        assert_eq!(plugins[0]["bridge"], "lph0");
        let ipam = &plugins[0]["ipam"];
        assert_eq!(ipam["ranges"][0][0]["subnet"], "10.250.91.0/24");
        assert_eq!(ipam["dataDir"], "/tmp/lp/cni/ipam");
        for plugin in types {
            assert!(
                CNI_PLUGINS.contains(&plugin),
                "{plugin} is checked for at start"
            );
        }
    }
}
