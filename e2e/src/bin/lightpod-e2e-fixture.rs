//! Helper of `e2e/containerd/start.sh` and `stop.sh`:
//!
//! - `lightpod-e2e-fixture images`: builds the e2e OCI images (once per machine) and prints
//!   one `<name> <archive>` line per image, for start.sh to import;
//! - `lightpod-e2e-fixture remove-pods <socket>`: stops and removes every CRI pod sandbox of
//!   the containerd at `<socket>`, so CNI tears the pod networks down before stop.sh stops
//!   containerd.

#![allow(clippy::print_stdout)]

use std::path::Path;

use anyhow::{bail, Context};
use lightpod_e2e::{cri::CriClient, image};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["images"] => {
            for image in image::all_images() {
                println!("{} {}", image.name, image.path.display());
            }
            Ok(())
        }
        ["remove-pods", socket] => remove_pods(Path::new(socket)),
        _ => bail!("usage: lightpod-e2e-fixture images | remove-pods <containerd socket>"),
    }
}

fn remove_pods(socket: &Path) -> anyhow::Result<()> {
    let mut cri = CriClient::connect(socket).context("connect to CRI")?;
    let mut failed = 0;
    for pod in cri.list_pod_sandboxes(None).context("ListPodSandbox")? {
        let name = pod.metadata.map(|m| m.name).unwrap_or_default();
        let result = cri
            .stop_pod_sandbox(&pod.id)
            .and_then(|_| cri.remove_pod_sandbox(&pod.id));
        match result {
            Ok(()) => eprintln!("removed pod {name} ({})", pod.id),
            Err(e) => {
                eprintln!("pod {name} ({}): {e}", pod.id);
                failed += 1;
            }
        }
    }
    if failed > 0 {
        bail!("{failed} pods could not be removed");
    }
    Ok(())
}
