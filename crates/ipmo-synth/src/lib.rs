//! Synthetic NHS prescribing data, in the real file formats, for demos and national-scale benchmarks.
//!
//! Real EPD is public, but a developer needs a whole country's worth, for any number of months,
//! on a laptop without downloading 60 GB; the demo needs a system that looks like England. This
//! crate writes files that the real readers ingest unchanged: EPD in the current "with SNOMED code"
//! header, NHS Digital's practice map and quinary list sizes, NHSBSA BNF Code Information and a
//! practice IMD file. Output is deterministic for a seed.
//!
//! Realism comes from data, not invention: the 2,709 presentations, their relative volumes, pack
//! quantities and prices come from a real month (see `scripts/build-synth-catalogue.py`), the
//! antibiotic age/sex profile from the published 2013 STAR-PU weights, and practices get the
//! variation measures need to show something: list size and age mix, deprivation, local formulary
//! choices, antibiotic seasonality, per-practice trends and a few outliers.

mod catalogue;
mod system;
mod write;

pub use system::SynthSystem;

use ipmo_domain::YearMonth;
use std::path::PathBuf;

/// What to generate.
#[derive(Clone, Debug)]
pub struct SynthConfig {
    /// Output directory (created if missing).
    pub out: PathBuf,
    /// Number of GP practices (England has about 6,300).
    pub practices: usize,
    /// Number of months.
    pub months: u32,
    /// First month.
    pub start: YearMonth,
    /// Seed; the same seed gives byte-identical files.
    pub seed: u64,
}

/// Why generation failed.
#[derive(Debug, thiserror::Error)]
pub enum SynthError {
    /// A file could not be written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// The configuration cannot produce a sensible system.
    #[error("{0}")]
    Invalid(String),
}

/// What was written.
#[derive(Debug, Default)]
pub struct SynthSummary {
    /// Files written, in order.
    pub files: Vec<PathBuf>,
    /// EPD rows written.
    pub epd_rows: u64,
    /// Prescription items written.
    pub items: u64,
    /// Registered patients in the last month.
    pub patients: u64,
    /// Practices, PCNs, sub-ICB locations, ICBs and regions.
    pub orgs: [usize; 5],
}

/// Generates the files. `progress` receives a line per file.
pub fn generate(config: &SynthConfig, progress: &mut dyn FnMut(&str)) -> Result<SynthSummary, SynthError> {
    if config.practices == 0 || config.practices > 20_000 {
        return Err(SynthError::Invalid(format!("--practices must be 1 to 20000 (got {})", config.practices)));
    }
    if config.months == 0 || config.months > 240 {
        return Err(SynthError::Invalid(format!("--months must be 1 to 240 (got {})", config.months)));
    }
    std::fs::create_dir_all(&config.out)
        .map_err(|e| SynthError::Io { path: config.out.display().to_string(), source: e })?;
    let catalogue = catalogue::Catalogue::load();
    let system = SynthSystem::build(config.practices, config.seed);
    write::write_all(config, &system, &catalogue, progress)
}
