//! The chart: `bench/chart.py` (matplotlib) reads the JSON and draws the PNG. Python and
//! matplotlib are used instead of a Rust plotting crate so that the workspace build, which
//! already takes minutes on two cores, does not grow by a font and raster stack.

use std::{path::Path, process::Command};

/// Draws `png` from `json` with `python` running `script`; whether it did. A missing
/// interpreter or a failing script only warns: the JSON and markdown stand without it.
pub fn draw_chart(python: &Path, script: &Path, json: &Path, png: &Path) -> bool {
    let output = Command::new(python).arg(script).arg(json).arg(png).output();
    match output {
        Ok(output) if output.status.success() => true,
        Ok(output) => {
            tracing::warn!(
                python = %python.display(),
                status = %output.status,
                stderr = %String::from_utf8_lossy(&output.stderr).trim(),
                "the chart script failed; the JSON and markdown results are written"
            );
            false
        }
        Err(error) => {
            tracing::warn!(
                python = %python.display(),
                %error,
                "no chart: cannot run python (bench/run.sh makes a venv with matplotlib)"
            );
            false
        }
    }
}
