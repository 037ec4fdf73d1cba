//! The built-in catalogue of real BNF presentations (see `scripts/build-synth-catalogue.py`).

use std::collections::HashMap;

/// One presentation with what a real month says about it.
pub struct Presentation {
    pub code: String,
    pub name: String,
    pub chemical_code: String,
    pub chemical_name: String,
    pub chapter_plus: String,
    /// Items per registered patient per month.
    pub rate: f64,
    pub quantity_per_item: f64,
    pub nic_pence_per_unit: f64,
    pub cost_ratio: f64,
    pub adq_per_unit: f64,
    pub kind: Kind,
}

/// Groups that the generator varies on purpose, so measures have signal.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Antibacterial,
    BroadSpectrum,
    Respiratory,
    MentalHealthOrPain,
    Other,
}

pub struct Catalogue {
    pub presentations: Vec<Presentation>,
    pub levels: HashMap<String, String>,
}

/// Patients registered at the four practices the catalogue was measured on.
const SOURCE_PATIENTS: f64 = 6_939.0 + 10_529.0 + 6_632.0 + 4_181.0;

impl Catalogue {
    pub fn load() -> Self {
        let mut levels = HashMap::new();
        let mut r = csv::Reader::from_reader(include_str!("../data/bnf_levels.csv").as_bytes());
        for rec in r.records().flatten() {
            levels.insert(rec[0].to_string(), rec[2].to_string());
        }
        let mut presentations = Vec::new();
        let mut r = csv::Reader::from_reader(include_str!("../data/catalogue.csv").as_bytes());
        for rec in r.records().flatten() {
            let code = rec[0].to_string();
            let num = |i: usize| rec[i].parse::<f64>().unwrap_or(0.0);
            let chemical_code = rec[2].to_string();
            let chapter = &code[..2];
            let kind = if code.starts_with("0501013K0") || code.starts_with("050102") || code.starts_with("050112") {
                Kind::BroadSpectrum
            } else if code.starts_with("0501") {
                Kind::Antibacterial
            } else if code.starts_with("03") {
                Kind::Respiratory
            } else if code.starts_with("0403") || code.starts_with("0407") || code.starts_with("0408") {
                Kind::MentalHealthOrPain
            } else {
                Kind::Other
            };
            presentations.push(Presentation {
                chemical_name: levels.get(&chemical_code).cloned().unwrap_or_default(),
                chapter_plus: format!("{chapter}: {}", levels.get(chapter).cloned().unwrap_or_default()),
                name: rec[1].to_string(),
                rate: num(3) / SOURCE_PATIENTS,
                quantity_per_item: num(5).max(1.0),
                nic_pence_per_unit: num(6),
                cost_ratio: if num(7) > 0.0 { num(7) } else { 0.93 },
                adq_per_unit: num(8),
                chemical_code,
                code,
                kind,
            });
        }
        // Rare medicines are where four practices say least about England: the low-priority
        // items (co-proxamol, trimipramine…) would otherwise be prescribed by half of all
        // practices. Their chemicals are brought to England's 2024 rate of items per patient.
        let mut r = csv::Reader::from_reader(include_str!("../data/national_rates.csv").as_bytes());
        for rec in r.records().flatten() {
            let national = rec[1].parse::<f64>().unwrap_or(0.0) / 1000.0;
            let sample: f64 = presentations.iter().filter(|p| p.chemical_code == rec[0]).map(|p| p.rate).sum();
            if sample > 0.0 && national > 0.0 {
                for p in presentations.iter_mut().filter(|p| p.chemical_code == rec[0]) {
                    p.rate *= national / sample;
                }
            }
        }
        Self { presentations, levels }
    }

    /// The name of a BNF level, or a neutral placeholder where the 2020 list lacks it.
    pub fn level_name(&self, code: &str) -> String {
        self.levels.get(code).cloned().unwrap_or_else(|| format!("BNF {code}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_is_real_and_calibrated() {
        let c = Catalogue::load();
        assert_eq!(c.presentations.len(), 2709);
        let items_per_patient: f64 = c.presentations.iter().map(|p| p.rate).sum();
        assert!((1.5..1.8).contains(&items_per_patient), "{items_per_patient}");
        assert!(c.presentations.iter().all(|p| ipmo_domain::BnfCode::parse_presentation(&p.code).is_ok()));
        assert!(c.presentations.iter().any(|p| p.kind == Kind::BroadSpectrum));
    }
}
