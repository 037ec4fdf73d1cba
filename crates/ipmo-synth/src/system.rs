//! A synthetic health system: regions, ICBs, sub-ICB locations, PCNs and practices.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, LogNormal, Normal};

/// England's seven NHS commissioning regions (real codes and names).
pub(crate) const REGIONS: [(&str, &str); 7] = [
    ("Y56", "London"),
    ("Y58", "South West"),
    ("Y59", "South East"),
    ("Y60", "Midlands"),
    ("Y61", "East of England"),
    ("Y62", "North West"),
    ("Y63", "North East and Yorkshire"),
];

/// Invented place names for synthetic organisations, so no one mistakes them for real ones.
const PLACES: [&str; 48] = [
    "Ashdown",
    "Brackenford",
    "Caldermoor",
    "Dunholme",
    "Eastwick",
    "Fernleigh",
    "Greyhaven",
    "Hartsbury",
    "Ivybridge Vale",
    "Juniper Cross",
    "Kestrel Downs",
    "Larkfield",
    "Millbrook",
    "Northcote",
    "Oakhampton",
    "Pennyworth",
    "Queensmead",
    "Rosewell",
    "Stonebridge",
    "Thornbury Fields",
    "Upton Marsh",
    "Valewood",
    "Westerleigh",
    "Yarrowby",
    "Ambercliff",
    "Birchmoor",
    "Coldharbour",
    "Deepdale",
    "Elmstead",
    "Foxley",
    "Glenholt",
    "Hollowmere",
    "Ironbridge Chase",
    "Kingsmere",
    "Lowther",
    "Marlowe",
    "Netherby",
    "Orchard Hey",
    "Pinewood",
    "Redmarsh",
    "Silverdale Moor",
    "Tallis",
    "Underhill",
    "Wrenfield",
    "Ashgrove",
    "Brightwater",
    "Copperfield",
    "Danesford",
];

const STREETS: [&str; 16] = [
    "High Street",
    "Church Lane",
    "Station Road",
    "Park View",
    "Mill Lane",
    "Victoria Road",
    "The Green",
    "Market Place",
    "Queens Road",
    "Bridge Street",
    "London Road",
    "Castle Street",
    "Elm Grove",
    "North Road",
    "Riverside",
    "Manor Way",
];

/// An organisation above practice level.
#[derive(Clone, Debug)]
pub struct Org {
    pub code: String,
    pub name: String,
    pub parent: usize,
}

/// A practice and the traits that drive its prescribing.
#[derive(Clone, Debug)]
pub struct Practice {
    pub code: String,
    pub name: String,
    pub address: String,
    pub town: String,
    pub postcode: String,
    pub pcn: usize,
    pub list_size: f64,
    pub list_growth: f64,
    /// Positive: older population.
    pub age_skew: f64,
    pub imd_score: f64,
    pub antibiotic_propensity: f64,
    pub antibiotic_trend: f64,
    pub broad_spectrum_propensity: f64,
    pub chapter_factor: [f64; 24],
    pub price_factor: f64,
    pub formulary_seed: u64,
}

/// The whole system.
pub struct SynthSystem {
    /// NHS England regions (the seven real ones).
    pub regions: Vec<Org>,
    /// Integrated care boards; each region has at least one.
    pub icbs: Vec<Org>,
    /// Sub-ICB locations (the former CCGs).
    pub sicbls: Vec<Org>,
    /// Primary care networks of about five practices.
    pub pcns: Vec<Org>,
    /// Standard GP practices, the unit prescribing is reported at.
    pub practices: Vec<Practice>,
}

impl SynthSystem {
    /// Builds a system of `n` practices in England's proportions: 42 ICBs and 106 sub-ICB
    /// locations for 6,300 practices, PCNs of about five practices, at least one ICB per region.
    pub fn build(n: usize, seed: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let scale = n as f64 / 6_300.0;
        let n_icb = ((42.0 * scale).round() as usize).clamp(7, 42);
        let n_sicbl = ((106.0 * scale).round() as usize).clamp(n_icb, 106.max(n_icb));
        let n_pcn = ((n as f64 / 4.9).round() as usize).clamp(n_sicbl.min(n), n.max(1));
        let regions: Vec<Org> = REGIONS
            .iter()
            .enumerate()
            .map(|(i, (c, nm))| Org { code: c.to_string(), name: nm.to_string(), parent: i })
            .collect();
        let place = |i: usize| {
            let base = PLACES[i % PLACES.len()];
            if i < PLACES.len() { base.to_string() } else { format!("{base} {}", i / PLACES.len() + 1) }
        };
        let icbs: Vec<Org> = (0..n_icb)
            .map(|i| Org {
                code: format!("Q{}{}", (b'A' + (i / 26) as u8) as char, (b'A' + (i % 26) as u8) as char),
                name: format!("NHS {} Integrated Care Board", place(i)),
                parent: i % 7,
            })
            .collect();
        let sicbls: Vec<Org> = (0..n_sicbl)
            .map(|i| {
                let icb = i % n_icb;
                Org {
                    code: format!("{:02}{}", 10 + i / 26, (b'A' + (i % 26) as u8) as char),
                    name: format!(
                        "{} - {:02}{}",
                        icbs[icb].name.replace(" Integrated Care Board", " ICB"),
                        10 + i / 26,
                        (b'A' + (i % 26) as u8) as char
                    ),
                    parent: icb,
                }
            })
            .collect();
        let pcns: Vec<Org> = (0..n_pcn)
            .map(|i| Org {
                code: format!("U{:05}", 10_000 + i * 7),
                name: format!("{} PCN", place(n_icb + i).to_uppercase()),
                parent: i % n_sicbl,
            })
            .collect();
        let list = LogNormal::new(8_600f64.ln(), 0.55).expect("valid");
        let unit = Normal::new(0.0, 1.0).expect("valid");
        let practices = (0..n)
            .map(|i| {
                let pcn = i % n_pcn;
                let region = icbs[sicbls[pcns[pcn].parent].parent].parent;
                let letter = [b'E', b'L', b'H', b'C', b'D', b'N', b'B'][region] as char;
                let z = |rng: &mut ChaCha8Rng| -> f64 { unit.sample(rng) };
                let outlier = rng.random_bool(0.04);
                let mut chapter_factor = [1.0_f64; 24];
                for f in &mut chapter_factor {
                    *f = (0.15 * z(&mut rng)).exp();
                }
                let town = place(i % 97 + 11).to_uppercase();
                Practice {
                    code: format!("{letter}{:05}", 81_001 + i),
                    name: format!(
                        "{} {}",
                        STREETS[i % STREETS.len()].to_uppercase(),
                        ["SURGERY", "MEDICAL CENTRE", "HEALTH CENTRE", "PRACTICE"][i % 4]
                    ),
                    address: format!("{} {}", 1 + i % 180, STREETS[(i * 7) % STREETS.len()].to_uppercase()),
                    postcode: format!(
                        "ZZ{} {}{}{}",
                        1 + i % 99,
                        i % 10,
                        (b'A' + (i % 26) as u8) as char,
                        (b'A' + ((i / 26) % 26) as u8) as char
                    ),
                    town,
                    pcn,
                    list_size: list.sample(&mut rng).clamp(900.0, 60_000.0),
                    list_growth: 0.01 + 0.015 * z(&mut rng),
                    age_skew: 0.6 * z(&mut rng),
                    imd_score: (22.0 * (0.55 * z(&mut rng)).exp()).clamp(2.0, 80.0),
                    antibiotic_propensity: (0.22 * z(&mut rng)).exp() * if outlier { 1.8 } else { 1.0 },
                    antibiotic_trend: -0.05 + 0.04 * z(&mut rng),
                    broad_spectrum_propensity: (0.45 * z(&mut rng)).exp(),
                    chapter_factor,
                    price_factor: (0.04 * z(&mut rng)).exp(),
                    formulary_seed: rng.random(),
                }
            })
            .collect();
        Self { regions, icbs, sicbls, pcns, practices }
    }

    /// The chain above a practice: (PCN, sub-ICB, ICB, region).
    pub fn chain(&self, p: &Practice) -> (&Org, &Org, &Org, &Org) {
        let pcn = &self.pcns[p.pcn];
        let sicbl = &self.sicbls[pcn.parent];
        let icb = &self.icbs[sicbl.parent];
        (pcn, sicbl, icb, &self.regions[icb.parent])
    }
}

/// England's registered population by five-year band (0–4 … 95+), roughly, as shares.
pub(crate) const AGE_PROFILE: [f64; 20] =
    [5.5, 6.0, 5.9, 5.4, 6.0, 7.0, 7.2, 7.0, 6.5, 6.4, 6.8, 6.6, 5.7, 4.9, 4.8, 3.6, 2.4, 1.4, 0.6, 0.2];

/// A practice's patients by sex and five-year band in month `t` (months since the start).
pub(crate) fn quinary(p: &Practice, t: u32) -> ([i64; 20], [i64; 20]) {
    let size = p.list_size * (1.0 + p.list_growth * f64::from(t) / 12.0);
    let weights: Vec<f64> =
        AGE_PROFILE.iter().enumerate().map(|(b, s)| s * (p.age_skew * (b as f64 - 9.0) / 10.0).exp()).collect();
    let total: f64 = weights.iter().sum();
    let mut male = [0i64; 20];
    let mut female = [0i64; 20];
    for b in 0..20 {
        let n = size * weights[b] / total;
        let female_share = 0.49 + 0.12 * ((b as f64 - 12.0) / 8.0).max(0.0);
        female[b] = (n * female_share).round() as i64;
        male[b] = (n * (1.0 - female_share)).round() as i64;
    }
    (male, female)
}
