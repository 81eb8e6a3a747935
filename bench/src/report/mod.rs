//! The outputs of a run under `bench/results/`: `results.json` (every figure),
//! `results.md` (the tables), `results.png` (the chart, drawn by `bench/chart.py`).

mod chart;
mod markdown;

use std::path::{Path, PathBuf};

pub use self::{chart::draw_chart, markdown::render};
use crate::{error::BenchError, results::Results};

/// The files of a run's results.
#[derive(Debug, Clone)]
pub struct ResultFiles {
    /// Every figure, as JSON.
    pub json: PathBuf,
    /// The tables, as markdown.
    pub markdown: PathBuf,
    /// The chart.
    pub png: PathBuf,
}

impl ResultFiles {
    /// `results.json`, `results.md` and `results.png` in `dir`.
    pub fn in_dir(dir: &Path) -> ResultFiles {
        ResultFiles {
            json: dir.join("results.json"),
            markdown: dir.join("results.md"),
            png: dir.join("results.png"),
        }
    }
}

/// Writes the JSON and the markdown (the chart is drawn from the JSON afterwards).
///
/// # Errors
///
/// A file could not be written.
pub fn write(results: &Results, files: &ResultFiles) -> Result<(), BenchError> {
    if let Some(dir) = files.json.parent() {
        std::fs::create_dir_all(dir).map_err(|source| BenchError::WriteResults {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    let json = serde_json::to_string_pretty(results).map_err(BenchError::EncodeResults)?;
    let write = |path: &Path, text: &str| {
        std::fs::write(path, text).map_err(|source| BenchError::WriteResults {
            path: path.to_path_buf(),
            source,
        })
    };
    write(&files.json, &(json + "\n"))?;
    write(&files.markdown, &render(results))
}
