//! Synthetic hospital medicines: NHS trusts in each ICB (an ODS `etr` file, headerless as ODS
//! publishes it) and their monthly SCMD, in NHSBSA's layout to May 2026 and the unit-dose layout
//! from June 2026, about 312,000 lines a month for England as the real files have.
//!
//! Trusts issue the same VMPs primary care prescribes, about four in five of them each month, in
//! amounts that follow primary care's volume and the trust's size; one line in 140 is a return
//! (a negative quantity), as in the real data.

use crate::catalogue::Catalogue;
use crate::medicines::Medicines;
use crate::system::SynthSystem;
use crate::{SynthConfig, SynthError, csv_field, io_err};
use ipmo_domain::YearMonth;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

/// Practices per acute trust in England (about 6,300 practices, 140 acute trusts).
const PRACTICES_PER_TRUST: usize = 45;
/// Share of the VMPs a trust issues in a month.
const ISSUED_SHARE: f64 = 0.8;
/// Share of lines that are returns.
const RETURN_SHARE: f64 = 1.0 / 140.0;
/// Hospital issues of a medicine against its catchment's primary care prescribing.
const HOSPITAL_SHARE: f64 = 0.08;
/// The first month NHSBSA published the unit-dose layout.
const UNIT_DOSE_FROM: (u16, u8) = (2026, 6);

/// One synthetic trust.
pub struct Trust {
    /// ODS-style code (`R` and two letters or digits).
    pub code: String,
    /// Name.
    pub name: String,
    /// Position of its ICB in [`SynthSystem::icbs`].
    pub icb: usize,
    /// Its catchment's registered patients.
    pub patients: f64,
}

/// A deterministic number in [0, 1) for a tuple (SplitMix64 over the parts).
fn unit(parts: [u64; 4]) -> f64 {
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    for p in parts {
        x ^= p.wrapping_add(0x9E37_79B9_7F4A_7C15).wrapping_add(x << 6).wrapping_add(x >> 2);
        x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        x = z ^ (z >> 31);
    }
    (x >> 11) as f64 / (1u64 << 53) as f64
}

/// A chemical code as a number, to key the draw of a trust's lean towards it.
fn chemical_key(code: &str) -> u64 {
    code.bytes().fold(0u64, |h, b| h.wrapping_mul(131).wrapping_add(u64::from(b)))
}

/// The trusts of a system: one per 45 practices or so (at least two per ICB), spread over the ICBs in turn, each with
/// a share of its ICB's patients.
pub fn trusts(sys: &SynthSystem, seed: u64) -> Vec<Trust> {
    let n = sys.practices.len().div_ceil(PRACTICES_PER_TRUST).max(2 * sys.icbs.len());
    let mut patients = vec![0.0; sys.icbs.len()];
    for p in &sys.practices {
        patients[sys.sicbls[sys.pcns[p.pcn].parent].parent] += p.list_size;
    }
    let per_icb: Vec<usize> = (0..sys.icbs.len()).map(|i| (0..n).filter(|t| t % sys.icbs.len() == i).count()).collect();
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHJKLMNPQRTVWXY";
    (0..n)
        .map(|t| {
            let icb = t % sys.icbs.len();
            let size = 0.6 + 0.8 * unit([seed, 1, t as u64, 0]);
            let place = sys.icbs[icb].name.trim_start_matches("NHS ").trim_end_matches(" Integrated Care Board");
            let kind =
                ["Hospitals NHS Foundation Trust", "Teaching Hospitals NHS Trust", "NHS Trust"][t / sys.icbs.len() % 3];
            Trust {
                code: format!(
                    "R{}{}",
                    ALPHABET[t / ALPHABET.len() % ALPHABET.len()] as char,
                    ALPHABET[t % ALPHABET.len()] as char
                ),
                name: format!("{place} {kind}"),
                icb,
                patients: patients[icb] / per_icb[icb].max(1) as f64 * size,
            }
        })
        .collect()
}

/// Writes `etr.csv` as ODS publishes it: no header, 27 columns, dates as YYYYMMDD.
pub fn write_trusts(config: &SynthConfig, sys: &SynthSystem, trusts: &[Trust]) -> Result<PathBuf, SynthError> {
    let path = config.out.join("etr.csv");
    let err = io_err(&path);
    let mut w = BufWriter::new(File::create(&path).map_err(&err)?);
    for t in trusts {
        let icb = &sys.icbs[t.icb];
        let region = &sys.regions[icb.parent];
        let mut fields = vec![
            t.code.clone(),
            t.name.to_uppercase(),
            region.code.clone(),
            icb.code.clone(),
            "GENERAL HOSPITAL".into(),
            String::new(),
            String::new(),
            t.name.split(' ').next().unwrap_or_default().to_uppercase(),
            String::new(),
            format!("ZZ{} 1AA", 10 + t.icb),
            "20000401".into(),
        ];
        fields.resize(27, String::new());
        fields[21] = "0".into();
        let line: Vec<String> = fields.iter().map(|f| format!("\"{f}\"")).collect();
        writeln!(w, "{}", line.join(",")).map_err(&err)?;
    }
    w.flush().map_err(&err)?;
    Ok(path)
}

/// Writes month `t`'s SCMD (`scmd_YYYYMM.csv`), returning its path and line count.
pub fn write_scmd_month(
    config: &SynthConfig,
    cat: &Catalogue,
    meds: &Medicines,
    trusts: &[Trust],
    t: u32,
    month: YearMonth,
) -> Result<(PathBuf, u64), SynthError> {
    let path = config.out.join(format!("scmd_{}.csv", month.compact()));
    let err = io_err(&path);
    let mut w = BufWriter::new(File::create(&path).map_err(&err)?);
    let unit_dose = month >= YearMonth::new(UNIT_DOSE_FROM.0, UNIT_DOSE_FROM.1).expect("a valid month");
    if unit_dose {
        writeln!(w, "YEAR_MONTH,ODS_CODE,VMP_SNOMED_CODE,VMP_PRODUCT_NAME,VMP_UDFS_UNIT_OF_MEASURE_IDENTIFIER,VMP_UDFS_UNIT_OF_MEASURE_NAME,TOTAL_QUANTITY_IN_VMP_UDFS_UNIT_OF_MEASURE,INDICATIVE_COST,VMP_UNIT_DOSE_UNIT_OF_MEASURE_NAME,TOTAL_QUANTITY_IN_VMP_UNIT_DOSE_UNIT_OF_MEASURE")
    } else {
        writeln!(w, "YEAR_MONTH,ODS_CODE,VMP_SNOMED_CODE,VMP_PRODUCT_NAME,UNIT_OF_MEASURE_IDENTIFIER,UNIT_OF_MEASURE_NAME,TOTAL_QUANITY_IN_VMP_UNIT,INDICATIVE_COST")
    }
    .map_err(&err)?;
    let (mut lines, ym) = (0u64, month.compact());
    for (ti, trust) in trusts.iter().enumerate() {
        for (i, (p, m)) in cat.presentations.iter().zip(&meds.by_presentation).enumerate() {
            let key = |salt: u64| unit([config.seed, ti as u64, i as u64, u64::from(t) * 8 + salt]);
            if key(0) >= ISSUED_SHARE {
                continue;
            }
            let (vpid, vmp_name, unit_name) = m.vmp();
            // Each trust leans towards some chemicals and away from others, so that the shares
            // cross-sector measures take differ from trust to trust.
            let lean = 0.5 + unit([config.seed, 2, ti as u64, chemical_key(&p.chemical_code)]);
            let mean = p.rate * p.quantity_per_item * trust.patients * HOSPITAL_SHARE * lean;
            let mut quantity = (mean * (0.5 + key(1))).max(1.0).round();
            if key(2) < RETURN_SHARE {
                quantity = -(quantity * 0.1).max(1.0).round();
            }
            let cost = quantity * p.nic_pence_per_unit / 100.0;
            let unit_id = match unit_name {
                "tablet" => "428673006",
                "capsule" => "428641000",
                "ml" => "258773002",
                "gram" => "258682000",
                _ => "3317411000001100",
            };
            write!(
                w,
                "{ym},{},{vpid},{},{unit_id},{unit_name},{quantity:.2},{cost:.2}",
                trust.code,
                csv_field(vmp_name)
            )
            .map_err(&err)?;
            if unit_dose {
                // Tablets, capsules and doses are their own unit doses; liquids and creams have none.
                match unit_name {
                    "tablet" | "capsule" | "dose" => write!(w, ",{unit_name},{quantity:.2}"),
                    _ => write!(w, ",,"),
                }
                .map_err(&err)?;
            }
            writeln!(w).map_err(&err)?;
            lines += 1;
        }
    }
    w.flush().map_err(&err)?;
    Ok((path, lines))
}
