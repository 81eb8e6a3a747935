//! `lightpod image build`: assemble the guest initramfs, or find it in the cache.

use std::process::ExitCode;

use lightpod_sandbox::{guest, Config};

/// Guest image subcommands.
#[derive(clap::Subcommand)]
pub enum ImageCommand {
    /// Build the guest initramfs for the configured kernel and agent (cached by content).
    Build,
}

/// Runs an image subcommand.
pub async fn image(
    config_path: Option<&std::path::Path>,
    cmd: ImageCommand,
) -> anyhow::Result<ExitCode> {
    let config = Config::load(config_path)?;
    match cmd {
        ImageCommand::Build => {
            let image = guest::resolve(&config.guest).await?;
            println!(
                "kernel   {} ({})",
                image.kernel.display(),
                image.kernel_release
            );
            println!("initrd   {}", image.initrd.display());
            println!("digest   {}", image.digest);
            println!(
                "{}",
                if image.built {
                    "built"
                } else {
                    "already in the cache"
                }
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}
