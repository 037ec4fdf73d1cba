//! Writing the synthetic system as the real files.

use crate::catalogue::{Catalogue, Kind};
use crate::medicines::{GHOST_PREMIUM, GHOST_SHARE, Medicines};
use crate::system::{Practice, SynthSystem, quinary};
use crate::{SynthConfig, SynthError, csv_field, io_err};
use ipmo_domain::YearMonth;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Binomial, Distribution, Poisson};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

const EPD_HEADER: &str = "YEAR_MONTH,REGIONAL_OFFICE_NAME,REGIONAL_OFFICE_CODE,ICB_NAME,ICB_CODE,PCO_NAME,PCO_CODE,PRACTICE_NAME,PRACTICE_CODE,ADDRESS_1,ADDRESS_2,ADDRESS_3,ADDRESS_4,POSTCODE,BNF_CHEMICAL_SUBSTANCE_CODE,BNF_CHEMICAL_SUBSTANCE_NAME,BNF_PRESENTATION_CODE,BNF_PRESENTATION_NAME,BNF_CHAPTER_PLUS_CODE,QUANTITY,ITEMS,TOTAL_QUANTITY,ADQ_USAGE,NIC,ACTUAL_COST,UNIDENTIFIED,SNOMED_CODE";

/// 2013 oral antibacterial item STAR-PU weights by quinary band (male, female), so synthetic
/// antibiotic volume follows the published age/sex profile.
fn antibiotic_weight(band: usize, female: bool) -> f64 {
    #[allow(clippy::approx_constant)] // 0.6931 is a published STAR-PU weight, not ln 2.
    const W: [(f64, f64); 9] = [
        (0.8377, 0.7652),
        (0.3139, 0.3966),
        (0.3397, 0.6257),
        (0.2409, 0.5803),
        (0.2669, 0.5851),
        (0.3159, 0.6186),
        (0.4480, 0.7389),
        (0.6931, 0.9727),
        (0.9861, 1.2658),
    ];
    let star = match band {
        0 => 0,
        1 | 2 => 1,
        3 | 4 => 2,
        5 | 6 => 3,
        7 | 8 => 4,
        9 | 10 => 5,
        11 | 12 => 6,
        13 | 14 => 7,
        _ => 8,
    };
    if female { W[star].1 } else { W[star].0 }
}

/// Relative prescribing of all other medicines by quinary band.
fn general_weight(band: usize) -> f64 {
    [0.35, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7, 0.85, 1.0, 1.3, 1.6, 2.0, 2.5, 3.0, 3.4, 3.7, 3.9, 4.0][band]
}

/// Per patient, how much this practice's age mix prescribes relative to England's.
fn needs(p: &Practice) -> (f64, f64) {
    let (m, f) = quinary(p, 0);
    let total = (m.iter().sum::<i64>() + f.iter().sum::<i64>()).max(1) as f64;
    let national: f64 = crate::system::AGE_PROFILE.iter().sum();
    let (mut abx, mut general, mut abx_nat, mut general_nat) = (0.0, 0.0, 0.0, 0.0);
    for b in 0..20 {
        abx += m[b] as f64 * antibiotic_weight(b, false) + f[b] as f64 * antibiotic_weight(b, true);
        general += (m[b] + f[b]) as f64 * general_weight(b);
        let share = crate::system::AGE_PROFILE[b] / national;
        abx_nat += share * 0.5 * (antibiotic_weight(b, false) + antibiotic_weight(b, true));
        general_nat += share * general_weight(b);
    }
    (abx / total / abx_nat, general / total / general_nat)
}

fn hash(a: u64, b: u64) -> u64 {
    let mut x = a ^ b.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}

/// The first ICB's antimicrobial stewardship programme, so the demo's programme has an effect to
/// show: from the middle of the period its practices' broad-spectrum prescribing falls by 15%,
/// reached over three months.
fn stewardship(sys: &SynthSystem, p: &Practice, t: u32, months: u32) -> f64 {
    let (_, _, icb, _) = sys.chain(p);
    let start = months / 2;
    if t < start || !is_first_icb(sys, &icb.code) {
        return 1.0;
    }
    1.0 - 0.15 * (f64::from(t - start + 1) / 3.0).min(1.0)
}

/// Whether `code` is the first ICB, which runs the programmes the demo shows (stewardship, the
/// esomeprazole switch); its code also sorts first, so the demo's programme is seeded for it.
fn is_first_icb(sys: &SynthSystem, code: &str) -> bool {
    sys.icbs.first().is_some_and(|first| first.code == code)
}

/// A number in 0..1 fixed by `a` and `b`, for choices that must not draw on the random stream.
fn fixed_draw(a: u64, b: u64) -> f64 {
    (hash(a, b) >> 11) as f64 / (1u64 << 53) as f64
}

/// A practice's lasting preference for one presentation (local formularies, habits): lognormal,
/// mean one, the same every month.
fn formulary(seed: u64, index: usize) -> f64 {
    let h = hash(seed, index as u64);
    let u = |k: u32| ((h >> (k * 21)) & 0x1f_ffff) as f64 / f64::from(1u32 << 21);
    let z = 2.0 * (u(0) + u(1) + u(2) - 1.5);
    (0.8 * z).exp() / (0.32f64).exp()
}

/// Writes the files that do not change month to month: the organisation map (dated at the last
/// month), BNF code information and practice IMD.
pub(crate) fn write_reference(
    config: &SynthConfig,
    sys: &SynthSystem,
    cat: &Catalogue,
    meds: &Medicines,
) -> Result<Vec<PathBuf>, SynthError> {
    let last = config.start.plus(config.months - 1);
    let mut files = vec![write_org_map(config, sys, last)?, write_bnf_codes(config, cat)?, write_imd(config, sys)?];
    files.extend(meds.write(config, cat)?);
    Ok(files)
}

/// Writes month `t` (0-based from `config.start`): the EPD file and the list sizes.
pub(crate) fn write_month(
    config: &SynthConfig,
    sys: &SynthSystem,
    cat: &Catalogue,
    meds: &Medicines,
    needs: &[(f64, f64)],
    t: u32,
) -> Result<crate::MonthFiles, SynthError> {
    let month = config.start.plus(t);
    let (epd, epd_rows, items) = write_epd_month(config, sys, (cat, meds), needs, t, month)?;
    let (list_sizes, patients) = write_list_sizes(config, sys, t, month)?;
    // The caller writes the month's hospital medicines beside these.
    Ok(crate::MonthFiles { month, epd, list_sizes, scmd: PathBuf::new(), scmd_lines: 0, epd_rows, items, patients })
}

/// Per-practice prescribing needs, computed once for all months.
pub(crate) fn all_needs(sys: &SynthSystem) -> Vec<(f64, f64)> {
    sys.practices.iter().map(needs).collect()
}

fn write_epd_month(
    config: &SynthConfig,
    sys: &SynthSystem,
    (cat, meds): (&Catalogue, &Medicines),
    needs: &[(f64, f64)],
    t: u32,
    month: YearMonth,
) -> Result<(std::path::PathBuf, u64, u64), SynthError> {
    let path = config.out.join(format!("epd_{}.csv", month.compact()));
    let file = File::create(&path).map_err(io_err(&path))?;
    let mut w = BufWriter::with_capacity(1 << 22, file);
    let err = io_err(&path);
    writeln!(w, "{EPD_HEADER}").map_err(&err)?;
    let writer = EpdMonth::new(config, sys, (cat, meds), needs, t, month);
    let pseudo: Vec<Practice> = sys
        .icbs
        .iter()
        .enumerate()
        .map(|(i, icb)| {
            let mut p = sys.practices[i % sys.practices.len()].clone();
            p.code = format!("{}998", icb.code);
            p.name = "UNIDENTIFIED DOCTORS".into();
            p.list_size = 250.0;
            p
        })
        .collect();
    let all: Vec<(usize, &Practice)> = sys.practices.iter().chain(pseudo.iter()).enumerate().collect();
    let (mut rows, mut items_total) = (0u64, 0u64);
    // Each practice draws from a random stream of its own, so practices can be written on every
    // core and the file is the same byte for byte. The workers write a batch while this thread
    // writes the batch before it to the file.
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, 8);
    let batch = workers * PRACTICES_PER_WORKER;
    let mut previous: Vec<Vec<u8>> = Vec::new();
    for chunk in all.chunks(batch).map(Some).chain(std::iter::once(None)) {
        let generated: Vec<(Vec<u8>, u64, u64)> = std::thread::scope(|scope| -> Result<_, SynthError> {
            let handles: Vec<_> = chunk
                .unwrap_or(&[])
                .chunks(PRACTICES_PER_WORKER)
                .map(|share| {
                    let writer = &writer;
                    scope.spawn(move || {
                        let mut out = Vec::with_capacity(share.len() << 20);
                        let (mut rows, mut items) = (0, 0);
                        for &(idx, p) in share {
                            let (r, i) = writer.practice_rows(idx, p, &mut out);
                            rows += r;
                            items += i;
                        }
                        (out, rows, items)
                    })
                })
                .collect();
            for block in previous.drain(..) {
                w.write_all(&block).map_err(&err)?;
            }
            Ok(handles.into_iter().map(|h| h.join().expect("a synthesis thread does not panic")).collect())
        })?;
        for (block, r, i) in generated {
            rows += r;
            items_total += i;
            previous.push(block);
        }
    }
    w.flush().map_err(&err)?;
    Ok((path, rows, items_total))
}

/// Practices one worker writes between two writes to the file (about a megabyte each).
const PRACTICES_PER_WORKER: usize = 8;

/// What every practice's rows of one month share: the presentations' fixed columns, prices and
/// the season.
struct EpdMonth<'a> {
    config: &'a SynthConfig,
    sys: &'a SynthSystem,
    cat: &'a Catalogue,
    meds: &'a Medicines,
    needs: &'a [(f64, f64)],
    t: u32,
    month: YearMonth,
    season: f64,
    pres_parts: Vec<String>,
    position: std::collections::HashMap<&'a str, usize>,
    price_factors: Vec<f64>,
}

impl<'a> EpdMonth<'a> {
    fn new(
        config: &'a SynthConfig,
        sys: &'a SynthSystem,
        (cat, meds): (&'a Catalogue, &'a Medicines),
        needs: &'a [(f64, f64)],
        t: u32,
        month: YearMonth,
    ) -> Self {
        let pres_parts: Vec<String> = cat
            .presentations
            .iter()
            .zip(&meds.by_presentation)
            .map(|(p, m)| {
                // Today's EPD names presentations as dm+d does, not with the 2017 abbreviations.
                format!(
                    "{},{},{},{},{},",
                    p.chemical_code,
                    csv_field(&p.chemical_name),
                    p.code,
                    csv_field(&m.name),
                    csv_field(&p.chapter_plus)
                )
            })
            .collect();
        let season = (2.0 * std::f64::consts::PI * f64::from(month.month() - 1) / 12.0).cos();
        let position = cat.presentations.iter().enumerate().map(|(i, p)| (p.code.as_str(), i)).collect();
        let price_factors = cat
            .presentations
            .iter()
            .map(|p| crate::events::price_factor(&p.chemical_code, t as i32, config.months))
            .collect();
        Self { config, sys, cat, meds, needs, t, month, season, pres_parts, position, price_factors }
    }

    /// Appends one practice's rows (practice `idx` of the system, or an ICB's unidentified
    /// doctors) to `out`; returns the rows and items written.
    fn practice_rows(&self, idx: usize, p: &Practice, out: &mut Vec<u8>) -> (u64, u64) {
        // Indices past the system's practices are the ICBs' unidentified doctors.
        let unidentified = idx >= self.sys.practices.len();
        let t = self.t;
        let (mut rows, mut items) = (0u64, 0u64);
        let mut line = String::with_capacity(512);
        let (abx_need, gen_need) = self.needs[idx % self.needs.len()];
        let (_, sicbl, icb, region) = self.sys.chain(p);
        let switching = !unidentified && is_first_icb(self.sys, &icb.code);
        let prefix = format!(
            "{},{},{},{},{},{},{},{},{},{},{},{},,{},",
            self.month.compact(),
            csv_field(&region.name.to_uppercase()),
            region.code,
            csv_field(&icb.name.to_uppercase()),
            icb.code,
            csv_field(&sicbl.name.to_uppercase()),
            sicbl.code,
            csv_field(&p.name),
            p.code,
            csv_field(&p.address),
            csv_field(&p.town),
            "ENGLAND",
            p.postcode
        );
        let size = p.list_size * (1.0 + p.list_growth * f64::from(t) / 12.0);
        let years = f64::from(t) / 12.0;
        let mut rng = ChaCha8Rng::seed_from_u64(hash(self.config.seed ^ p.formulary_seed, u64::from(t) + 1));
        for (pi, pres) in self.cat.presentations.iter().enumerate() {
            let chapter: usize = pres.code[..2].parse().unwrap_or(0);
            let mut lambda = pres.rate * size * p.chapter_factor[chapter.min(23)] * formulary(p.formulary_seed, pi);
            lambda *= match pres.kind {
                Kind::Antibacterial | Kind::BroadSpectrum => {
                    let broad = if pres.kind == Kind::BroadSpectrum {
                        p.broad_spectrum_propensity * stewardship(self.sys, p, t, self.config.months)
                    } else {
                        1.0
                    };
                    abx_need
                        * p.antibiotic_propensity
                        * broad
                        * (1.0 + 0.22 * self.season)
                        * (1.0 + p.antibiotic_trend * years).max(0.2)
                }
                Kind::Respiratory => gen_need * (1.0 + 0.06 * self.season),
                Kind::MentalHealthOrPain => gen_need * (1.0 + 0.006 * (p.imd_score - 22.0)).max(0.5),
                Kind::Other => gen_need,
            } * (1.0 + 0.02 * years);
            let k = if lambda <= 0.0 {
                0
            } else if lambda < 1e-3 {
                u64::from(rng.random::<f64>() < lambda)
            } else {
                Poisson::new(lambda).map(|d| d.sample(&mut rng) as u64).unwrap_or(0)
            };
            if k == 0 {
                continue;
            }
            items += k;
            let extra = Poisson::new(0.9 * ((1 + k) as f64).ln()).map(|d| d.sample(&mut rng) as u64).unwrap_or(0);
            let splits = (1 + extra).min(k).min(6) as usize;
            let base = pres.quantity_per_item.round().max(1.0);
            let mut quantities: Vec<f64> = Vec::with_capacity(splits);
            // Quantities an item is written for, most common first. Acute oral antibiotics come
            // in courses (amoxicillin 500 mg: 15 capsules for five days, 21 for seven, …);
            // everything else in multiples of its usual pack.
            let course = pres.code.starts_with("0501")
                && (pres.name.contains("_Cap") || pres.name.contains("_Tab"))
                && pres.quantity_per_item <= 35.0;
            let multiples: &[f64] = if course {
                &[0.714, 1.0, 0.476, 1.43, 1.333, 0.667]
            } else {
                &[1.0, 2.0, 0.5, 3.0, 1.5, 4.0, 0.25, 6.0]
            };
            for &m in multiples {
                let q = (base * m).round().max(1.0);
                if !quantities.contains(&q) {
                    quantities.push(q);
                }
                if quantities.len() == splits {
                    break;
                }
            }
            let mut remaining = k - quantities.len() as u64;
            for (j, &q) in quantities.iter().enumerate() {
                let left = quantities.len() - j;
                let extra_items = if left == 1 {
                    remaining
                } else {
                    let share = 1.0 / (0..left).map(|i| 0.6f64.powi(i as i32)).sum::<f64>();
                    Binomial::new(remaining, share.clamp(0.0, 1.0)).map(|d| d.sample(&mut rng)).unwrap_or(0)
                };
                remaining -= extra_items;
                let n = 1 + extra_items;
                let total_q = q * n as f64;
                // A row of the first ICB's switch is written as the presentation switched to,
                // decided by a draw fixed for the row (not taken from the random stream).
                let draw = fixed_draw(p.formulary_seed ^ (pi as u64) << 8, u64::from(t) * 64 + j as u64);
                let pi =
                    match switching.then(|| crate::events::switched(&pres.code, t, self.config.months, draw)).flatten()
                    {
                        Some(to) => self.position.get(to).copied().unwrap_or(pi),
                        None => pi,
                    };
                let pres = &self.cat.presentations[pi];
                // A share of a ghost-branded generic's rows name the manufacturer's product and
                // cost its higher price (a second fixed draw, again not from the random stream).
                let ghost_draw = fixed_draw(p.formulary_seed ^ 0x9e37 ^ (pi as u64) << 8, u64::from(t) * 64 + j as u64);
                let ghost = self.meds.by_presentation[pi].ghost.as_deref().filter(|_| ghost_draw < GHOST_SHARE);
                let premium = if ghost.is_some() { GHOST_PREMIUM } else { 1.0 };
                let nic_pence = (total_q * pres.nic_pence_per_unit * self.price_factors[pi] * p.price_factor * premium)
                    .round()
                    .max(0.0) as i64;
                let cost_e5 = (nic_pence as f64 * 1000.0 * pres.cost_ratio).round() as i64;
                line.clear();
                line.push_str(&prefix);
                line.push_str(&self.pres_parts[pi]);
                use std::fmt::Write as _;
                let _ = writeln!(
                    line,
                    "{q:.1},{n},{total_q:.1},{:.3},{}.{:02},{}.{:05},{},{}",
                    total_q * pres.adq_per_unit,
                    nic_pence / 100,
                    nic_pence % 100,
                    cost_e5 / 100_000,
                    cost_e5 % 100_000,
                    if unidentified { "Y" } else { "N" },
                    ghost.unwrap_or(&self.meds.by_presentation[pi].snomed_code)
                );
                out.extend_from_slice(line.as_bytes());
                rows += 1;
            }
        }
        (rows, items)
    }
}

fn write_org_map(config: &SynthConfig, sys: &SynthSystem, last: YearMonth) -> Result<std::path::PathBuf, SynthError> {
    let path = config.out.join("gp-reg-pat-prac-map.csv");
    let mut w = BufWriter::new(File::create(&path).map_err(io_err(&path))?);
    let err = io_err(&path);
    writeln!(w, "PUBLICATION,EXTRACT_DATE,PRACTICE_CODE,PRACTICE_NAME,PRACTICE_POSTCODE,PCN_CODE,PCN_NAME,ONS_SUB_ICB_LOCATION_CODE,SUB_ICB_LOCATION_CODE,SUB_ICB_LOCATION_NAME,ONS_ICB_CODE,ICB_CODE,ICB_NAME,ONS_COMM_REGION_CODE,COMM_REGION_CODE,COMM_REGION_NAME,SUPPLIER_NAME").map_err(&err)?;
    let date = last.first_day().format("%d%b%Y").to_string();
    for (i, p) in sys.practices.iter().enumerate() {
        let (pcn, sicbl, icb, region) = sys.chain(p);
        writeln!(
            w,
            "GP_PRAC_PAT_LIST,{date},{},{},{},{},{},E38{:06},{},{},E54{:06},{},{},E40{:06},{},{},{}",
            p.code,
            csv_field(&p.name),
            p.postcode,
            pcn.code,
            csv_field(&pcn.name),
            900_000 + pcn.parent,
            sicbl.code,
            csv_field(&sicbl.name),
            900_000 + sicbl.parent,
            icb.code,
            csv_field(&icb.name),
            900_000 + icb.parent,
            region.code,
            region.name,
            ["EMIS", "TPP"][i % 2]
        )
        .map_err(&err)?;
    }
    w.flush().map_err(&err)?;
    Ok(path)
}

fn write_list_sizes(
    config: &SynthConfig,
    sys: &SynthSystem,
    t: u32,
    month: YearMonth,
) -> Result<(std::path::PathBuf, u64), SynthError> {
    let path = config.out.join(format!("gp-reg-pat-prac-quin-age_{}.csv", month.compact()));
    let mut w = BufWriter::new(File::create(&path).map_err(io_err(&path))?);
    let err = io_err(&path);
    writeln!(w, "PUBLICATION,EXTRACT_DATE,ORG_TYPE,ORG_CODE,ONS_CODE,POSTCODE,SEX,AGE_GROUP_5,NUMBER_OF_PATIENTS")
        .map_err(&err)?;
    let date = month.first_day().format("%d%b%Y").to_string().to_uppercase();
    let mut patients = 0u64;
    for p in &sys.practices {
        let (m, f) = quinary(p, t);
        let (tm, tf) = (m.iter().sum::<i64>(), f.iter().sum::<i64>());
        patients += (tm + tf) as u64;
        let row = |w: &mut BufWriter<File>, sex: &str, age: &str, n: i64| {
            writeln!(w, "GP_PRAC_PAT_LIST,{date},GP,{},,{},{sex},{age},{n}", p.code, p.postcode)
        };
        row(&mut w, "ALL", "ALL", tm + tf).map_err(&err)?;
        for (sex, counts, total) in [("MALE", &m, tm), ("FEMALE", &f, tf)] {
            row(&mut w, sex, "ALL", total).map_err(&err)?;
            for (b, n) in counts.iter().enumerate() {
                let label = if b == 19 { "95+".to_string() } else { format!("{}_{}", b * 5, b * 5 + 4) };
                row(&mut w, sex, &label, *n).map_err(&err)?;
            }
        }
    }
    w.flush().map_err(&err)?;
    Ok((path, patients))
}

fn write_bnf_codes(config: &SynthConfig, cat: &Catalogue) -> Result<std::path::PathBuf, SynthError> {
    let path = config.out.join("bnf_codes.csv");
    let mut w = BufWriter::new(File::create(&path).map_err(io_err(&path))?);
    let err = io_err(&path);
    writeln!(w, "BNF_CHAPTER,BNF_CHAPTER_CODE,BNF_SECTION,BNF_SECTION_CODE,BNF_PARAGRAPH,BNF_PARAGRAPH_CODE,BNF_SUBPARAGRAPH,BNF_SUBPARAGRAPH_CODE,BNF_CHEMICAL_SUBSTANCE,BNF_CHEMICAL_SUBSTANCE_CODE,BNF_PRODUCT,BNF_PRODUCT_CODE,BNF_PRESENTATION,BNF_PRESENTATION_CODE").map_err(&err)?;
    for p in &cat.presentations {
        let c = &p.code;
        let codes = [&c[..2], &c[..4], &c[..6], &c[..7], p.chemical_code.as_str(), &c[..11]];
        let mut fields = Vec::new();
        for code in codes {
            fields.push(csv_field(&cat.level_name(code)));
            fields.push(code.to_string());
        }
        fields.push(csv_field(&p.name));
        fields.push(c.clone());
        writeln!(w, "{}", fields.join(",")).map_err(&err)?;
    }
    w.flush().map_err(&err)?;
    Ok(path)
}

fn write_imd(config: &SynthConfig, sys: &SynthSystem) -> Result<std::path::PathBuf, SynthError> {
    let path = config.out.join("practice_imd.csv");
    let mut w = BufWriter::new(File::create(&path).map_err(io_err(&path))?);
    let err = io_err(&path);
    writeln!(w, "practice_code,imd_score").map_err(&err)?;
    for p in &sys.practices {
        writeln!(w, "{},{:.3}", p.code, p.imd_score).map_err(&err)?;
    }
    w.flush().map_err(&err)?;
    Ok(path)
}
