//! Synthetic NHS prescribing data, in the real file formats, for demos and national-scale benchmarks.
//!
//! Real EPD is public, but a developer needs a whole country's worth, for any number of months,
//! on a laptop without downloading 60 GB; the demo needs a system that looks like England. This
//! crate writes files that the real readers ingest unchanged: EPD in the current "with SNOMED code"
//! header (dm+d-style presentation names and a `SNOMED_CODE` per row), NHS Digital's practice map
//! and quinary list sizes, NHSBSA BNF Code Information, a practice IMD file, and the medicines
//! reference data behind them: a dm+d release, the BNF ↔ SNOMED mapping, a Drug Tariff per month
//! and a concessions page (see [`medicines`]). Output is deterministic for a seed.
//!
//! Realism comes from data, not invention: the 2,709 presentations, their relative volumes, pack
//! quantities and prices come from a real month (see `scripts/build-synth-catalogue.py`), the
//! antibiotic age/sex profile from the published 2013 STAR-PU weights, and practices get the
//! variation measures need to show something: list size and age mix, deprivation, local formulary
//! choices, antibiotic seasonality, per-practice trends and a few outliers.

mod catalogue;
pub mod events;
pub mod hospitals;
pub mod medicines;
mod system;
mod write;

pub use system::SynthSystem;

use ipmo_domain::YearMonth;
use std::path::PathBuf;

/// A CSV field, quoted when it holds a separator, quote or line break.
pub(crate) fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_string() }
}

/// Maps an I/O error on `path` to the synthesiser's error naming the file.
pub(crate) fn io_err(path: &std::path::Path) -> impl Fn(std::io::Error) -> SynthError + use<> {
    let path = path.display().to_string();
    move |e| SynthError::Io { path: path.clone(), source: e }
}

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

/// The files written for one month.
#[derive(Debug)]
pub struct MonthFiles {
    /// The month.
    pub month: YearMonth,
    /// EPD file.
    pub epd: PathBuf,
    /// Quinary list-size file.
    pub list_sizes: PathBuf,
    /// Hospital medicines (SCMD) file.
    pub scmd: PathBuf,
    /// SCMD lines written.
    pub scmd_lines: u64,
    /// EPD rows written.
    pub epd_rows: u64,
    /// Prescription items written.
    pub items: u64,
    /// Registered patients.
    pub patients: u64,
}

/// A synthetic system ready to write, so callers (the demo) can write and load one month at a
/// time instead of holding every month's files on disk at once. Month `t` is the same whichever
/// order months are written in.
pub struct Generator {
    config: SynthConfig,
    catalogue: catalogue::Catalogue,
    medicines: medicines::Medicines,
    system: SynthSystem,
    needs: Vec<(f64, f64)>,
    trusts: Vec<hospitals::Trust>,
}

impl Generator {
    /// Checks the configuration, creates the output directory and builds the system.
    pub fn new(config: &SynthConfig) -> Result<Self, SynthError> {
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
        let needs = write::all_needs(&system);
        let medicines = medicines::Medicines::new(&catalogue);
        let trusts = hospitals::trusts(&system, config.seed);
        Ok(Self { config: config.clone(), catalogue, medicines, system, needs, trusts })
    }

    /// Practices, PCNs, sub-ICB locations, ICBs and regions.
    pub fn org_counts(&self) -> [usize; 5] {
        let s = &self.system;
        [s.practices.len(), s.pcns.len(), s.sicbls.len(), s.icbs.len(), s.regions.len()]
    }

    /// Writes the organisation map, BNF codes, IMD, the medicines reference data and the trusts.
    pub fn write_reference(&self) -> Result<Vec<PathBuf>, SynthError> {
        let mut files = write::write_reference(&self.config, &self.system, &self.catalogue, &self.medicines)?;
        files.push(hospitals::write_trusts(&self.config, &self.system, &self.trusts)?);
        Ok(files)
    }

    /// Writes month `t` (0-based from the configured start).
    pub fn write_month(&self, t: u32) -> Result<MonthFiles, SynthError> {
        if t >= self.config.months {
            return Err(SynthError::Invalid(format!("month {t} is outside the {} configured", self.config.months)));
        }
        let mut files =
            write::write_month(&self.config, &self.system, &self.catalogue, &self.medicines, &self.needs, t)?;
        (files.scmd, files.scmd_lines) =
            hospitals::write_scmd_month(&self.config, &self.catalogue, &self.medicines, &self.trusts, t, files.month)?;
        Ok(files)
    }
}

/// Generates every file. `progress` receives a line per step.
pub fn generate(config: &SynthConfig, progress: &mut dyn FnMut(&str)) -> Result<SynthSummary, SynthError> {
    let generator = Generator::new(config)?;
    let mut summary = SynthSummary { orgs: generator.org_counts(), ..Default::default() };
    summary.files = generator.write_reference()?;
    progress(&format!("wrote the organisation map, BNF codes and IMD for {} practices", config.practices));
    for t in 0..config.months {
        let started = std::time::Instant::now();
        let m = generator.write_month(t)?;
        let secs = started.elapsed().as_secs_f64();
        progress(&format!(
            "{}: {} EPD rows, {} items ({:.2} per patient), {} hospital medicines lines, {:.0} rows/s",
            m.month,
            m.epd_rows,
            m.items,
            m.items as f64 / m.patients.max(1) as f64,
            m.scmd_lines,
            (m.epd_rows + m.scmd_lines) as f64 / secs.max(1e-9)
        ));
        summary.epd_rows += m.epd_rows;
        summary.items += m.items;
        summary.patients = m.patients;
        summary.files.extend([m.epd, m.list_sizes, m.scmd]);
    }
    Ok(summary)
}
