//! Medicines reference data consistent with the synthetic prescribing: a dm+d release (one VMP
//! per generic presentation, an AMP per branded one, a pack each), a Drug Tariff for every month
//! and a concessions page, all in the formats NHSBSA and CPE publish.
//!
//! The catalogue's names are the 2017 abbreviated BNF names (`Amoxicillin_Cap 500mg`); current
//! EPD and dm+d use dm+d names (`Amoxicillin 500mg capsules`). [`dmd_style`] rewrites one into the
//! other, so that the synthetic EPD, dm+d and Tariff exercise the name style of real data today.
//! Identifiers are SNOMED-shaped (digits, the NHS dm+d namespace `1000001`) and never real.

use crate::catalogue::Catalogue;
use crate::{SynthConfig, SynthError};
use crate::{csv_field, io_err};
use ipmo_domain::YearMonth;
use std::fmt::Write as _;
use std::path::PathBuf;

/// Abbreviations of the 2017 BNF names and their dm+d wording, longest first.
const FORMS: &[(&str, &str)] = &[
    ("Tab E/C", "gastro-resistant tablets"),
    ("Cap E/C", "gastro-resistant capsules"),
    ("Tab M/R", "modified-release tablets"),
    ("Cap M/R", "modified-release capsules"),
    ("Tab Disper", "dispersible tablets"),
    ("Tab Chble", "chewable tablets"),
    ("Tab Eff", "effervescent tablets"),
    ("Orodisper Tab", "orodispersible tablets"),
    ("Oral Soln", "oral solution"),
    ("Oral Susp", "oral suspension"),
    ("Oral Pdr", "oral powder"),
    ("Eye Dps", "eye drops"),
    ("Eye Oint", "eye ointment"),
    ("Ear Dps", "ear drops"),
    ("Nsl Spy", "nasal spray"),
    ("Inh Soln", "nebuliser liquid"),
    ("Soln", "oral solution"),
    ("Susp", "oral suspension"),
    ("Inha", "inhaler"),
    ("Inh", "inhaler"),
    ("Tab", "tablets"),
    ("Cap", "capsules"),
    ("Crm", "cream"),
    ("Oint", "ointment"),
    ("Gel", "gel"),
    ("Inj", "solution for injection"),
    ("Sach", "sachets"),
    ("Supp", "suppositories"),
    ("Patch", "transdermal patches"),
    ("Loz", "lozenges"),
    ("Liq", "liquid"),
    ("Lot", "lotion"),
    ("Shampoo", "shampoo"),
    ("Spy", "spray"),
];

/// Trailing qualifiers and their dm+d wording.
const QUALIFIERS: &[(&str, &str)] = &[("S/F", "sugar free"), ("CFF", "CFC free"), ("P/F", "preservative free")];

/// A 2017 abbreviated name in today's dm+d style: drug, strength, then the form in words
/// (`Salbutamol_Inha 100mcg (200 D) CFF` → `Salbutamol 100micrograms/dose inhaler CFC free`).
pub fn dmd_style(name: &str) -> String {
    let (product, rest) = name.split_once('_').unwrap_or((name, ""));
    let mut rest = format!(" {rest} ");
    let mut form = String::new();
    for (abbrev, words) in FORMS {
        let needle = format!(" {abbrev} ");
        if let Some(at) = rest.find(&needle) {
            form = (*words).to_string();
            rest.replace_range(at..at + needle.len(), " ");
            break;
        }
    }
    // Release qualifiers written apart from the form ("Tab 500mg M/R") go in front of it.
    for (abbrev, words) in [("M/R", "modified-release"), ("E/C", "gastro-resistant"), ("G/R", "gastro-resistant")] {
        let needle = format!(" {abbrev} ");
        if let Some(at) = rest.find(&needle)
            && !form.is_empty()
            && !form.starts_with(words)
        {
            form = format!("{words} {form}");
            rest.replace_range(at..at + needle.len(), " ");
        }
    }
    let mut qualifiers = Vec::new();
    for (abbrev, words) in QUALIFIERS {
        let needle = format!(" {abbrev} ");
        if let Some(at) = rest.find(&needle) {
            qualifiers.push(*words);
            rest.replace_range(at..at + needle.len(), " ");
        }
    }
    // Pack details in brackets ("(200 D)", "(Dual Pack)") are not part of a dm+d product name.
    let mut strength = String::new();
    let mut depth = 0;
    for c in rest.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            _ if depth == 0 => strength.push(c),
            _ => {}
        }
    }
    let mut strength: String = strength.split_whitespace().collect::<Vec<_>>().join(" ").replace("mcg", "micrograms");
    if form == "inhaler" && !strength.is_empty() && !strength.contains('/') {
        strength.push_str("/dose");
    }
    let mut out = product.trim().to_string();
    for part in [strength.as_str(), form.as_str()].into_iter().chain(qualifiers) {
        if !part.is_empty() {
            out.push(' ');
            out.push_str(part);
        }
    }
    out
}

/// Form-route, pack unit and pack size for a dm+d form.
fn form_details(form: &str) -> (&'static str, &'static str, f64) {
    let oral = |f: &str| f.ends_with("tablets") || f.ends_with("capsules");
    match form {
        "gastro-resistant tablets" => ("tabletgastro-resistant.oral", "tablet", 28.0),
        "gastro-resistant capsules" => ("capsulegastro-resistant.oral", "capsule", 28.0),
        "modified-release tablets" => ("tabletmodified-release.oral", "tablet", 28.0),
        "modified-release capsules" => ("capsulemodified-release.oral", "capsule", 28.0),
        f if oral(f) && f.contains("tablets") => ("tablet.oral", "tablet", 28.0),
        f if oral(f) => ("capsule.oral", "capsule", 28.0),
        "inhaler" => ("pressurizedinhalation.inhalation", "dose", 200.0),
        "oral solution" | "liquid" | "nebuliser liquid" => ("solution.oral", "ml", 100.0),
        "oral suspension" => ("suspension.oral", "ml", 100.0),
        "cream" => ("cream.cutaneous", "gram", 50.0),
        "ointment" => ("ointment.cutaneous", "gram", 30.0),
        "gel" => ("gel.cutaneous", "gram", 30.0),
        "eye drops" => ("eyedrops.ophthalmic", "ml", 10.0),
        "solution for injection" => ("solutioninjection.subcutaneous", "ml", 1.0),
        "sachets" | "oral powder" => ("powder.oral", "sachet", 20.0),
        "transdermal patches" => ("patch.transdermal", "patch", 4.0),
        "suppositories" => ("suppository.rectal", "suppository", 12.0),
        "nasal spray" => ("spray.nasal", "dose", 120.0),
        _ => ("other.other", "pack", 1.0),
    }
}

/// The device of an inhaler, read from its abbreviated BNF name: dry-powder devices and capsules,
/// soft-mist (Respimat) solutions, or a pressurised metered-dose inhaler.
fn inhaler_form_route(abbreviated: &str) -> &'static str {
    const POWDER: [&str; 10] = [
        "Pdr",
        "Accuhaler",
        "Turbohaler",
        "Easyhaler",
        "Novolizer",
        "Genuair",
        "Ellipta",
        "Breezhaler",
        "Inh Cap",
        "Nexthaler",
    ];
    if abbreviated.contains("Respimat") {
        "inhalationsolution.inhalation"
    } else if POWDER.iter().any(|w| abbreviated.contains(w)) {
        "powderinhalation.inhalation"
    } else {
        "pressurizedinhalation.inhalation"
    }
}

/// WHO ATC codes and DDDs (oral, where WHO gives several) of the chemicals the cross-sector
/// measures select, by BNF chemical code: what the dm+d supplement says of their VMPs.
const ATC_DDD: &[(&str, &str, f64, &str)] = &[
    ("0501011P0", "J01CE02", 2.0, "gram"),
    ("0501012G0", "J01CF05", 2.0, "gram"),
    ("0501013B0", "J01CA04", 1.5, "gram"),
    ("0501013K0", "J01CR02", 1.5, "gram"),
    ("0501015P0", "J01CA08", 0.6, "gram"),
    ("0501021A0", "J01DC04", 1.0, "gram"),
    ("0501021K0", "J01DC02", 0.5, "gram"),
    ("0501021L0", "J01DB01", 2.0, "gram"),
    ("0501030I0", "J01AA02", 0.1, "gram"),
    ("0501030L0", "J01AA04", 0.6, "gram"),
    ("0501030P0", "J01AA08", 0.2, "gram"),
    ("0501030T0", "J01AA06", 1.0, "gram"),
    ("0501050A0", "J01FA10", 0.3, "gram"),
    ("0501050B0", "J01FA09", 0.5, "gram"),
    ("0501050C0", "J01FA01", 1.0, "gram"),
    ("0501050H0", "J01FA01", 1.0, "gram"),
    ("0501080W0", "J01EA01", 0.4, "gram"),
    ("0501120L0", "J01MA02", 1.0, "gram"),
    ("0501120P0", "J01MA01", 0.4, "gram"),
    ("0501120X0", "J01MA12", 0.5, "gram"),
    ("0501130R0", "J01XE01", 0.2, "gram"),
    ("0208020V0", "B01AA03", 7.5, "mg"),
    ("0208020X0", "B01AE07", 0.3, "gram"),
    ("0208020Y0", "B01AF01", 20.0, "mg"),
    ("0208020Z0", "B01AF02", 10.0, "mg"),
    ("0208020AA", "B01AF03", 60.0, "mg"),
    ("0103050E0", "A02BC05", 30.0, "mg"),
    ("0103050L0", "A02BC03", 30.0, "mg"),
    ("0103050P0", "A02BC01", 20.0, "mg"),
    ("0103050R0", "A02BC02", 40.0, "mg"),
    ("0103050T0", "A02BC04", 20.0, "mg"),
    ("1001030U0", "L04AX03", 2.5, "mg"),
];

/// Units of measure the synthetic release uses (real dm+d codes).
const UNITS: &[(&str, &str)] = &[
    ("428673006", "tablet"),
    ("428641000", "capsule"),
    ("3317411000001100", "dose"),
    ("258773002", "ml"),
    ("258682000", "gram"),
    ("258684004", "mg"),
    ("258685003", "microgram"),
    ("733013000", "sachet"),
    ("419702001", "patch"),
    ("430293001", "suppository"),
    ("3318611000001103", "pack"),
];

fn unit_code(unit: &str) -> &'static str {
    UNITS.iter().find(|(_, u)| *u == unit).map_or("3318611000001103", |(c, _)| c)
}

/// A SNOMED-shaped id: sequence, the dm+d namespace, a partition and a check digit.
fn snomed_id(kind: u64, seq: usize) -> String {
    let n = kind * 1_000_000 + seq as u64;
    format!("{n}1000001{}{}", if kind == 9 { "11" } else { "10" }, n % 10)
}

/// Every this-many-th generic presentation also has a manufacturer's product (a "ghost brand").
const GHOST_EVERY: usize = 20;
/// Share of such a presentation's EPD rows prescribed as the manufacturer's product.
pub(crate) const GHOST_SHARE: f64 = 0.1;
/// The manufacturer's list price against the Tariff's, and what those rows cost against the rest.
pub(crate) const GHOST_PREMIUM: f64 = 1.3;

/// One synthetic product: what the EPD names it, and its place in dm+d and the Tariff.
pub struct Medicine {
    /// dm+d-style name (the VMP's or, for a brand, the AMP's).
    pub name: String,
    /// The id the EPD's `SNOMED_CODE` carries: the VMP's, or the AMP's for a brand.
    pub snomed_code: String,
    /// For some generics, the AMP id of a manufacturer's product ("… (Fictional Generics Ltd)",
    /// listed at 1.3 × the Tariff price) that a share of rows are prescribed as.
    pub ghost: Option<String>,
    vpid: String,
    vmp_name: String,
    vppid: String,
    chemical: usize,
    strength: Option<Strength>,
    form_route: &'static str,
    pack: (f64, &'static str),
    price_pence: i64,
    category: char,
    brand: Option<(String, String)>,
}

impl Medicine {
    /// The VMP behind the product: its id, its name, and the unit it is counted in (`tablet`,
    /// `ml`, `dose`), as hospital medicines data name it.
    pub fn vmp(&self) -> (&str, &str, &'static str) {
        (&self.vpid, &self.vmp_name, self.pack.1)
    }
}

/// The release, Tariff and concessions for a catalogue.
pub struct Medicines {
    /// One per catalogue presentation, in catalogue order.
    pub by_presentation: Vec<Medicine>,
    chemicals: Vec<(String, String)>,
}

/// A strength as dm+d gives it: an amount, and for liquids, inhalers and the like what it is in
/// (`500mg/5ml` is 500 mg in 5 ml).
type Strength = (f64, &'static str, Option<(f64, &'static str)>);

fn unit_word(text: &str) -> Option<&'static str> {
    Some(if text.starts_with("microgram") {
        "microgram"
    } else if text.starts_with("mg") {
        "mg"
    } else if text.starts_with("ml") {
        "ml"
    } else if text.starts_with("dose") {
        "dose"
    } else if text.starts_with('g') {
        "gram"
    } else {
        return None;
    })
}

fn strength_of(name: &str) -> Option<Strength> {
    let word = name.split_whitespace().find(|w| w.chars().next().is_some_and(|c| c.is_ascii_digit()))?;
    let amount = |text: &str| -> Option<(f64, &'static str)> {
        let number: String = text.chars().take_while(|c| c.is_ascii_digit() || *c == '.').collect();
        let value = if number.is_empty() { 1.0 } else { number.parse().ok()? };
        Some((value, unit_word(&text[number.len()..])?))
    };
    // "250mg/62mg/5ml" is two ingredients in 5 ml: the last part is what the first is in.
    let (numerator, per) = word.split_once('/').map_or((word, None), |(n, rest)| (n, rest.rsplit('/').next()));
    let (value, unit) = amount(numerator)?;
    // What a strength is in: a volume, a dose, or "per gram"; "320micrograms/9micrograms" is two
    // ingredients' strengths, not a ratio.
    let per = per.and_then(amount).filter(|(_, u)| matches!(*u, "ml" | "dose" | "gram"));
    Some((value, unit, per))
}

impl Medicines {
    /// Builds every product from the catalogue, deterministically.
    pub fn new(cat: &Catalogue) -> Self {
        let mut chemicals: Vec<(String, String)> = Vec::new();
        let mut by_presentation = Vec::with_capacity(cat.presentations.len());
        for (i, p) in cat.presentations.iter().enumerate() {
            let chemical = match chemicals.iter().position(|(code, _)| *code == p.chemical_code) {
                Some(c) => c,
                None => {
                    let name =
                        if p.chemical_name.is_empty() { p.chemical_code.clone() } else { p.chemical_name.clone() };
                    chemicals.push((p.chemical_code.clone(), name));
                    chemicals.len() - 1
                }
            };
            let name = dmd_style(&p.name);
            let branded = p.code.len() == 15 && &p.code[9..11] != "AA";
            let form =
                FORMS.iter().map(|(_, w)| *w).filter(|w| name.contains(*w)).max_by_key(|w| w.len()).unwrap_or("");
            let (mut form_route, unit, size) = form_details(form);
            if form == "inhaler" {
                form_route = inhaler_form_route(&p.name);
            }
            let strength = strength_of(&name);
            let vmp_name = if branded {
                let after = name.find(|c: char| c.is_ascii_digit()).map_or("", |at| &name[at..]);
                format!("{} {after}", chemicals[chemical].1).trim().to_string()
            } else {
                name.clone()
            };
            let vpid = snomed_id(3, i);
            let brand = branded.then(|| (snomed_id(4, i), name.clone()));
            let price_pence = (p.nic_pence_per_unit * size).round().max(1.0) as i64;
            let category = match i % 10 {
                0 | 1 => 'M',
                2 => 'A',
                _ => 'C',
            };
            let ghost = (brand.is_none() && i % GHOST_EVERY == 7).then(|| snomed_id(6, i));
            by_presentation.push(Medicine {
                ghost,
                snomed_code: brand.as_ref().map_or(vpid.clone(), |b| b.0.clone()),
                name,
                vpid,
                vmp_name,
                vppid: snomed_id(5, i),
                chemical,
                strength,
                form_route,
                pack: (size, unit),
                price_pence,
                category,
                brand,
            });
        }
        Self { by_presentation, chemicals }
    }

    /// Writes the release (a folder of XML files), the BNF ↔ SNOMED mapping, a Tariff per month
    /// and the concessions page into `config.out`. The Tariff and the concessions run a month past
    /// the prescribing, as the real ones do: both are published for the month in progress, weeks
    /// before its prescribing.
    pub fn write(&self, config: &SynthConfig, cat: &Catalogue) -> Result<Vec<PathBuf>, SynthError> {
        let first = config.start;
        let dir = config.out.join("dmd");
        std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        let stamp = first.first_day().format("%d%m%y").to_string();
        let mut files = Vec::new();
        for (kind, body) in self.release_files() {
            let version = match kind {
                "gtin" => "2_0",
                "bnf" => "1_0",
                _ => "2_3",
            };
            let path = dir.join(format!("f_{kind}{version}{stamp}.xml"));
            std::fs::write(&path, body).map_err(io_err(&path))?;
        }
        files.push(dir);
        let mapping = config.out.join("bnf_snomed_mapping.csv");
        let mut m = String::from("BNF Code,SNOMED Code,VMP / VMPP/ AMP / AMPP\n");
        for (p, med) in cat.presentations.iter().zip(&self.by_presentation) {
            let level = if med.brand.is_some() { "AMP" } else { "VMP" };
            let _ = writeln!(m, "{},{},{level}", p.code, med.snomed_code);
        }
        std::fs::write(&mapping, m).map_err(io_err(&mapping))?;
        files.push(mapping);
        for t in 0..=config.months {
            files.push(self.write_tariff(config, config.start.plus(t))?);
        }
        files.push(self.write_concessions(config)?);
        Ok(files)
    }

    /// Generic packs, each once (brands share their generic's pack only when they share a VMP).
    fn generics(&self) -> impl Iterator<Item = &Medicine> {
        self.by_presentation.iter().filter(|m| m.brand.is_none())
    }

    fn price_in(&self, config: &SynthConfig, m: &Medicine, month: YearMonth) -> i64 {
        // Category M moves quarterly, others drift a little each month.
        let step = if m.category == 'M' { month.month() as i64 / 3 } else { month.month() as i64 };
        let event =
            crate::events::price_factor(&self.chemicals[m.chemical].0, config.start.months_to(month), config.months);
        (m.price_pence as f64 * event * (1.0 + 0.01 * ((step * 7 + m.chemical as i64) % 5 - 2) as f64)).round().max(1.0)
            as i64
    }

    fn write_tariff(&self, config: &SynthConfig, month: YearMonth) -> Result<PathBuf, SynthError> {
        let path = config.out.join(format!("drug_tariff_part_viii_a_{}.csv", month.compact()));
        let mut s = format!("{} Drug Tariff Part VIIIA,,,,,,\r\n,,,,,,\r\n", month.first_day().format("%B"));
        s.push_str("Medicine,Pack size,,VMP Snomed Code,VMPP Snomed Code,Drug Tariff Category,Basic Price\r\n");
        for m in self.generics() {
            let _ = write!(
                s,
                "{},{},{},{},{},Part VIIIA Category {},{}\r\n",
                csv_field(&m.vmp_name),
                m.pack.0,
                m.pack.1,
                m.vpid,
                m.vppid,
                m.category,
                self.price_in(config, m, month)
            );
        }
        std::fs::write(&path, s).map_err(io_err(&path))?;
        Ok(path)
    }

    fn write_concessions(&self, config: &SynthConfig) -> Result<PathBuf, SynthError> {
        let path = config.out.join("price_concessions.html");
        let mut s = String::from(
            "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"UTF-8\"><title>Price concessions archive</title></head><body>\n<h1>Price concession archive</h1>\n",
        );
        for t in (0..=config.months).rev() {
            let month = config.start.plus(t);
            let _ = write!(
                s,
                "<div class=\"toggle\">{}</div><div class=\"toggle_container\"><table>\n<tr><td><strong>Drug</strong></td><td><strong>Pack size</strong></td><td><strong>Price concession</strong></td></tr>\n",
                month.first_day().format("%B %Y")
            );
            for (i, m) in self.generics().enumerate() {
                // About one generic pack in forty is short in a given month, Category M most often.
                let short = (i as u64 * 31 + u64::from(t) * 17 + u64::from(m.category == 'M') * 5).is_multiple_of(40);
                if !short {
                    continue;
                }
                let price = self.price_in(config, m, month) * (130 + (i as i64 % 170)) / 100;
                let _ = writeln!(
                    s,
                    "<tr><td>{}</td><td>{}</td><td>&pound;{}.{:02}</td></tr>",
                    m.vmp_name.replace('&', "&amp;").replace('<', "&lt;"),
                    m.pack.0,
                    price / 100,
                    price % 100
                );
            }
            s.push_str("</table></div>\n");
        }
        s.push_str("</body></html>\n");
        std::fs::write(&path, s).map_err(io_err(&path))?;
        Ok(path)
    }

    fn release_files(&self) -> Vec<(&'static str, String)> {
        let x = |s: &str| s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
        let head = |root: &str, xsd: &str| {
            format!(
                "<{root} xmlns=\"\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:noNamespaceSchemaLocation=\"{xsd}\">\n  <!-- Generated by ipmo synth -->\n"
            )
        };
        let mut vtm = head("VIRTUAL_THERAPEUTIC_MOIETIES", "vtm_v2_3.xsd");
        let mut ing = head("INGREDIENT_SUBSTANCES", "ingredient_v2_3.xsd");
        for (c, (_, name)) in self.chemicals.iter().enumerate() {
            let _ =
                write!(vtm, "  <VTM>\n    <VTMID>{}</VTMID>\n    <NM>{}</NM>\n  </VTM>\n", snomed_id(1, c), x(name));
            let _ = write!(ing, "  <ING>\n    <ISID>{}</ISID>\n    <NM>{}</NM>\n  </ING>\n", snomed_id(2, c), x(name));
        }
        vtm.push_str("</VIRTUAL_THERAPEUTIC_MOIETIES>\n");
        ing.push_str("</INGREDIENT_SUBSTANCES>\n");
        let (mut vmps, mut vpis, mut onts, mut supplement) =
            (String::new(), String::new(), String::new(), String::new());
        let (mut amps, mut vmpps, mut dtinfo, mut ampps, mut prices) =
            (String::new(), String::new(), String::new(), String::new(), String::new());
        let form_routes: Vec<&str> = {
            let mut f: Vec<&str> = self.by_presentation.iter().map(|m| m.form_route).collect();
            f.sort_unstable();
            f.dedup();
            f
        };
        let route_code = |fr: &str| format!("{:04}", form_routes.iter().position(|x| *x == fr).unwrap_or(0) + 1);
        let mut seen_vmp = std::collections::HashSet::new();
        for m in &self.by_presentation {
            if seen_vmp.insert(m.vpid.clone()) {
                // A discrete form counted one by one is its own unit dose (dm+d's UDFS 1 tablet).
                let unit_dose = match (m.strength, m.pack.1) {
                    (Some((_, _, None)), "tablet" | "capsule" | "sachet" | "patch" | "suppository") => {
                        let code = unit_code(m.pack.1);
                        format!(
                            "      <UDFS>1</UDFS>\n      <UDFS_UOMCD>{code}</UDFS_UOMCD>\n      <UNIT_DOSE_UOMCD>{code}</UNIT_DOSE_UOMCD>\n"
                        )
                    }
                    _ => String::new(),
                };
                let _ = write!(
                    vmps,
                    "    <VMP>\n      <VPID>{}</VPID>\n      <VTMID>{}</VTMID>\n      <NM>{}</NM>\n      <BASISCD>0001</BASISCD>\n      <PRES_STATCD>0001</PRES_STATCD>\n      <DF_INDCD>1</DF_INDCD>\n{unit_dose}    </VMP>\n",
                    m.vpid,
                    snomed_id(1, m.chemical),
                    x(&m.vmp_name)
                );
                let chemical = self.chemicals[m.chemical].0.as_str();
                if let Some((_, atc, ddd, unit)) = ATC_DDD.iter().find(|(c, ..)| *c == chemical) {
                    let _ = write!(
                        supplement,
                        "<VMP><VPID>{}</VPID><BNF>{}0{}</BNF><ATC>{atc}</ATC><DDD>{ddd}</DDD><DDD_UOMCD>{}</DDD_UOMCD></VMP>",
                        m.vpid,
                        &chemical[..6],
                        &chemical[6..7],
                        unit_code(unit)
                    );
                }
                if let Some((value, unit, per)) = m.strength {
                    let per = per.map_or(String::new(), |(v, u)| {
                        format!(
                            "      <STRNT_DNMTR_VAL>{v}</STRNT_DNMTR_VAL>\n      <STRNT_DNMTR_UOMCD>{}</STRNT_DNMTR_UOMCD>\n",
                            unit_code(u)
                        )
                    });
                    let _ = write!(
                        vpis,
                        "    <VPI>\n      <VPID>{}</VPID>\n      <ISID>{}</ISID>\n      <BASIS_STRNTCD>0001</BASIS_STRNTCD>\n      <STRNT_NMRTR_VAL>{value}</STRNT_NMRTR_VAL>\n      <STRNT_NMRTR_UOMCD>{}</STRNT_NMRTR_UOMCD>\n{per}    </VPI>\n",
                        m.vpid,
                        snomed_id(2, m.chemical),
                        unit_code(unit)
                    );
                }
                let _ = write!(
                    onts,
                    "    <ONT>\n      <VPID>{}</VPID>\n      <FORMCD>{}</FORMCD>\n    </ONT>\n",
                    m.vpid,
                    route_code(m.form_route)
                );
                let _ = write!(
                    vmpps,
                    "    <VMPP>\n      <VPPID>{}</VPPID>\n      <NM>{} {} {}</NM>\n      <VPID>{}</VPID>\n      <QTYVAL>{}</QTYVAL>\n      <QTY_UOMCD>{}</QTY_UOMCD>\n    </VMPP>\n",
                    m.vppid,
                    x(&m.vmp_name),
                    m.pack.0,
                    m.pack.1,
                    m.vpid,
                    m.pack.0,
                    unit_code(m.pack.1)
                );
                let category = match m.category {
                    'A' => "0001",
                    'M' => "0003",
                    _ => "0002",
                };
                let _ = write!(
                    dtinfo,
                    "    <DTINFO>\n      <VPPID>{}</VPPID>\n      <PAY_CATCD>{category}</PAY_CATCD>\n      <PRICE>{}</PRICE>\n    </DTINFO>\n",
                    m.vppid, m.price_pence
                );
            }
            // A manufacturer's generic, listed above the Tariff, and a brand, at half as much again.
            let ghost = m.ghost.as_ref().map(|apid| {
                let price = (m.price_pence as f64 * GHOST_PREMIUM).round() as i64;
                (apid.as_str(), format!("{} (Fictional Generics Ltd)", m.vmp_name), 2, price)
            });
            let brand = m.brand.as_ref().map(|(apid, name)| (apid.as_str(), name.clone(), 1, m.price_pence * 3 / 2));
            for (apid, name, supplier, price) in ghost.into_iter().chain(brand) {
                let appid = format!("{apid}9");
                let _ = write!(
                    amps,
                    "    <AMP>\n      <APID>{apid}</APID>\n      <VPID>{}</VPID>\n      <NM>{}</NM>\n      <DESC>{}</DESC>\n      <SUPPCD>{supplier}</SUPPCD>\n      <LIC_AUTHCD>0001</LIC_AUTHCD>\n      <AVAIL_RESTRICTCD>0001</AVAIL_RESTRICTCD>\n    </AMP>\n",
                    m.vpid,
                    x(&name),
                    x(&name)
                );
                let _ = write!(
                    ampps,
                    "    <AMPP>\n      <APPID>{appid}</APPID>\n      <NM>{} {} {}</NM>\n      <VPPID>{}</VPPID>\n      <APID>{apid}</APID>\n      <LEGAL_CATCD>0003</LEGAL_CATCD>\n    </AMPP>\n",
                    x(&name),
                    m.pack.0,
                    m.pack.1,
                    m.vppid
                );
                let _ = write!(
                    prices,
                    "    <PRICE_INFO>\n      <APPID>{appid}</APPID>\n      <PRICE>{price}</PRICE>\n      <PRICE_BASISCD>0001</PRICE_BASISCD>\n    </PRICE_INFO>\n"
                );
            }
        }
        let vmp = format!(
            "{}  <VMPS>\n{vmps}  </VMPS>\n  <VIRTUAL_PRODUCT_INGREDIENT>\n{vpis}  </VIRTUAL_PRODUCT_INGREDIENT>\n  <ONT_DRUG_FORM>\n{onts}  </ONT_DRUG_FORM>\n</VIRTUAL_MED_PRODUCTS>\n",
            head("VIRTUAL_MED_PRODUCTS", "vmp_v2_3.xsd")
        );
        let amp = format!(
            "{}  <AMPS>\n{amps}  </AMPS>\n</ACTUAL_MEDICINAL_PRODUCTS>\n",
            head("ACTUAL_MEDICINAL_PRODUCTS", "amp_v2_3.xsd")
        );
        let vmpp = format!(
            "{}  <VMPPS>\n{vmpps}  </VMPPS>\n  <DRUG_TARIFF_INFO>\n{dtinfo}  </DRUG_TARIFF_INFO>\n</VIRTUAL_MED_PRODUCT_PACK>\n",
            head("VIRTUAL_MED_PRODUCT_PACK", "vmpp_v2_3.xsd")
        );
        let ampp = format!(
            "{}  <AMPPS>\n{ampps}  </AMPPS>\n  <MEDICINAL_PRODUCT_PRICE>\n{prices}  </MEDICINAL_PRODUCT_PRICE>\n</ACTUAL_MEDICINAL_PROD_PACKS>\n",
            head("ACTUAL_MEDICINAL_PROD_PACKS", "ampp_v2_3.xsd")
        );
        let mut lookup = head("LOOKUP", "lookup_v2_3.xsd");
        let mut table = |name: &str, rows: &[(String, String)]| {
            let _ = writeln!(lookup, "  <{name}>");
            for (cd, desc) in rows {
                let _ =
                    write!(lookup, "    <INFO>\n      <CD>{cd}</CD>\n      <DESC>{}</DESC>\n    </INFO>\n", x(desc));
            }
            let _ = writeln!(lookup, "  </{name}>");
        };
        let pairs =
            |rows: &[(&str, &str)]| rows.iter().map(|(c, d)| (c.to_string(), d.to_string())).collect::<Vec<_>>();
        table("BASIS_OF_NAME", &pairs(&[("0001", "rINN - Recommended International Non-proprietary")]));
        table("VIRTUAL_PRODUCT_PRES_STATUS", &pairs(&[("0001", "Valid as a prescribable product")]));
        table("DF_INDICATOR", &pairs(&[("1", "Discrete"), ("2", "Continuous")]));
        table("BASIS_OF_STRNTH", &pairs(&[("0001", "Based on Ingredient Substance")]));
        table("UNIT_OF_MEASURE", &pairs(UNITS));
        table("ONT_FORM_ROUTE", &form_routes.iter().map(|f| (route_code(f), f.to_string())).collect::<Vec<_>>());
        table(
            "DT_PAYMENT_CATEGORY",
            &pairs(&[
                ("0001", "Part VIIIA Category A"),
                ("0002", "Part VIIIA Category C"),
                ("0003", "Part VIIIA Category M"),
            ]),
        );
        table("SUPPLIER", &pairs(&[("1", "Synthetic Pharma Ltd"), ("2", "Fictional Generics Ltd")]));
        table("LICENSING_AUTHORITY", &pairs(&[("0001", "Medicines - MHRA/EMA")]));
        table("AVAILABILITY_RESTRICTION", &pairs(&[("0001", "None")]));
        table("LEGAL_CATEGORY", &pairs(&[("0003", "POM")]));
        table("PRICE_BASIS", &pairs(&[("0001", "NHS Indicative Price")]));
        lookup.push_str("</LOOKUP>\n");
        // The supplement, one line without a terminator as NHSBSA writes it.
        let bnf = format!(
            "<?xml version=\"1.0\" encoding=\"utf-8\" ?><BNF_DETAILS xmlns=\"\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:noNamespaceSchemaLocation=\"bnf_v1_0.xsd\"><!-- Generated by ipmo synth --><VMPS>{supplement}</VMPS><AMPS></AMPS></BNF_DETAILS>"
        );
        vec![
            ("bnf", bnf),
            ("vtm", vtm),
            ("vmp", vmp),
            ("amp", amp),
            ("vmpp", vmpp),
            ("ampp", ampp),
            ("ingredient", ing),
            ("lookup", lookup),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn abbreviated_names_become_dmd_style() {
        assert_eq!(dmd_style("Amoxicillin_Cap 500mg"), "Amoxicillin 500mg capsules");
        assert_eq!(dmd_style("Salbutamol_Inha 100mcg (200 D) CFF"), "Salbutamol 100micrograms/dose inhaler CFC free");
        assert_eq!(dmd_style("Mesalazine_Tab E/C 400mg"), "Mesalazine 400mg gastro-resistant tablets");
        assert_eq!(dmd_style("Lactulose_Oral Soln 3.35g/5ml S/F"), "Lactulose 3.35g/5ml oral solution sugar free");
        assert_eq!(dmd_style("Octasa_MR Tab E/C 800mg"), "Octasa MR 800mg gastro-resistant tablets");
        assert_eq!(dmd_style("Metformin HCl_Tab 500mg M/R"), "Metformin HCl 500mg modified-release tablets");
        assert_eq!(strength_of("Amoxicillin 500mg capsules"), Some((500.0, "mg", None)));
        assert_eq!(
            strength_of("Salbutamol 100micrograms/dose inhaler"),
            Some((100.0, "microgram", Some((1.0, "dose"))))
        );
        assert_eq!(strength_of("Levetiracetam 500mg/5ml oral solution"), Some((500.0, "mg", Some((5.0, "ml")))));
        assert_eq!(strength_of("Budesonide 320micrograms/9micrograms inhaler"), Some((320.0, "microgram", None)));
        assert_eq!(strength_of("Hydrocortisone 10mg/g cream"), Some((10.0, "mg", Some((1.0, "gram")))));
        assert_eq!(strength_of("Co-Amoxiclav 250mg/62mg/5ml oral suspension"), Some((250.0, "mg", Some((5.0, "ml")))));
        assert_eq!(
            dmd_style("Phenoxymethylpenicillin_Soln 125mg/5ml"),
            "Phenoxymethylpenicillin 125mg/5ml oral solution"
        );
    }

    #[test]
    fn ids_are_snomed_shaped_and_distinct() {
        let ids: std::collections::HashSet<String> =
            (0..3000).flat_map(|i| [snomed_id(3, i), snomed_id(4, i), snomed_id(5, i)]).collect();
        assert_eq!(ids.len(), 9000);
        assert!(ids.iter().all(|id| (16..=18).contains(&id.len()) && id.contains("1000001")));
    }
}
