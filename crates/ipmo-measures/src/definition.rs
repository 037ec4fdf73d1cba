//! The measure definition file format and its validation.
//!
//! One TOML file per measure, named after its id (`broad_spectrum.toml`):
//!
//! ```toml
//! id = "broad_spectrum"
//! title = "Broad-spectrum antibiotics"
//! description = "Co-amoxiclav, cephalosporins and quinolones as a share of oral antibacterial items."
//! why_it_matters = "Broad-spectrum antibiotics drive resistance and C. difficile infection."
//! tags = ["antimicrobial", "infections"]
//! opportunities = [14]              # national medicines optimisation opportunities served
//! direction = "lower_is_better"     # or "higher_is_better", "no_judgement"
//! is_percentage = true
//! is_cost_based = false
//! source = "OpenPrescribing `broad_spectrum`; SOF 2021/22 antibacterial metric (b)"
//! openprescribing_id = "broad_spectrum"   # optional: the OpenPrescribing measure it follows
//! differences = "…"                 # optional: each deliberate difference from it, with the reason
//! version = 1                     # raised on every change to what is counted; each version
//!                                   # after the first has a [[changes]] entry (version, date, what)
//! authored = "2026-11-23"
//! reviewed = "2026-11-23"
//! status = "live"                   # or "draft", "retired"
//! unit = "%"                        # optional: the unit in words, when the default reads badly
//! components = []                   # optional: for a composite (a sum of other measures), their ids
//!
//! [numerator]
//! value = "items"                   # items | quantity | actual_cost | nic | adq | weighted_quantity
//! codes = ["0501013K0", "0501021", "050112"]
//! exclude = []
//! name_contains = []                # optional: keep presentations whose name contains any of these
//! name_excludes = []                # optional: drop presentations whose name contains any of these
//! label = "broad-spectrum antibiotic items"   # optional: what the side counts, in words
//!
//! [[numerator.products]]            # optional, repeatable: keep presentations with a dm+d product
//! ingredient = ["omeprazole"]       #   that meets every condition of one rule (see `selection`):
//! strength = { above = 10 }         #   vtm, ingredient, strength (+ strength_unit), form_route,
//! form_route = ["%.oral"]           #   name, atc, vmp, ingredients = { at_most = 1 }, brand
//!
//! [[numerator.exclude_products]]    # optional, repeatable: drop presentations whose product meets one
//! ingredients = { at_least = 3 }
//!
//! [[numerator.exclude_during]]     # optional, repeatable: presentations left out in some months
//! codes = ["0601060D0FGAAA0"]       #   only (a list that changed on a date); from and until are
//! from = "2025-07"                  #   months, either may be left out
//!
//! [[numerator.any_of]]             # optional, repeatable: alternatives, each with its own codes,
//! codes = ["1302011"]               #   exclude, name filters and product rules; the side selects
//!                                   #   what any alternative selects (and has no selection of its own)
//!
//! [[numerator.quantity_per_item]]   # optional, repeatable: count only prescriptions whose quantity
//! codes = ["0501013B0%AB"]          #   per item meets the bound (above, at_least, below, at_most,
//! above = 15                        #   equals); read from the EPD's quantity split
//!
//! [denominator]
//! value = "items"                   # or "list_size" (per 1,000 patients), "star_pu_oral_antibacterial",
//!                                   # or "patients" with ages = ["0_4"], sexes = ["female"] (default
//!                                   # both) and per_thousand = false (default true)
//! codes = ["0501"]
//! exclude = ["050109", "050110", "0501130H0"]
//!
//! [target]                          # optional
//! value = 10.0
//! source = "NHS Oversight Framework 2021/22: broad-spectrum ≤ 10%"
//! ```
//!
//! An `ingredient_amount` side (with `amount_unit = "mg"`) sums quantity × the dm+d strength of the
//! ingredients its product rules name; a `ddd` side sums WHO defined daily doses from dm+d's
//! DDD supplement. Both need a dm+d release loaded.
//!
//! A `weighted_quantity` side names a factor table (`factors = "ome"` reads
//! `measures/tables/ome.csv`, columns `bnf_code,factor,note`) and sums quantity × factor, e.g.
//! oral morphine equivalent or kg CO2e.

use crate::codes::CodePattern;
use crate::error::MeasureError;
use crate::selection::{
    DatedExclusion, Presentation, ProductRule, QuantityRule, RawDatedExclusion, RawProductRule, RawQuantityRule,
};
use ipmo_domain::YearMonth;
use ipmo_stats::Direction;
use serde::Deserialize;
use std::path::Path;

/// Age bands of the published list sizes by sex and quinary age, grouped as the STAR-PU bands
/// the warehouse keeps.
pub const AGE_BANDS: [&str; 9] = ["0_4", "5_14", "15_24", "25_34", "35_44", "45_54", "55_64", "65_74", "75_plus"];

/// Tags a measure may carry; a closed list so that filters and the dashboard's groupings work.
pub const TAGS: &[&str] = &[
    "antimicrobial",
    "infections",
    "safety",
    "value",
    "cost",
    "lowpriority",
    "greener",
    "opioids",
    "pain",
    "cardiovascular",
    "respiratory",
    "diabetes",
    "mentalhealth",
    "centralnervous",
    "gastrointestinal",
    "generic",
    "nutrition",
    "efficacy",
    "endocrine",
    "core",
];

/// What a side sums.
#[derive(Clone, Debug, PartialEq)]
pub enum Quantity {
    /// Prescription items.
    Items,
    /// Total quantity (tablets, millilitres, inhalers… as published).
    Quantity,
    /// Actual cost in pounds.
    ActualCost,
    /// Net ingredient cost in pounds.
    Nic,
    /// Average daily quantities.
    Adq,
    /// Quantity × a per-code factor from a named table.
    WeightedQuantity(String),
    /// Amount of active ingredient: quantity × the dm+d strength per unit (tablet, ml, dose) of
    /// the ingredients the side's product rules name, in `unit` (mg, microgram, gram), times a
    /// per-code factor when `factors` names a table (1 ÷ ADQ turns milligrams into ADQs).
    IngredientAmount {
        /// The unit the amount is in.
        unit: String,
        /// A factor table to multiply by, if any.
        factors: Option<String>,
    },
    /// WHO defined daily doses: the ingredient amount in the unit of the product's DDD from dm+d's
    /// BNF/ATC/DDD supplement, divided by that DDD.
    Ddd,
    /// Inhalers, as OpenPrescribing counts them: the quantity, divided by the smallest dm+d pack
    /// of the product where the presentation's quantity per item across England that month is
    /// over 9 (the quantity is then doses, not inhalers).
    Inhalers,
    /// Registered patients (the value is per 1,000 patients).
    ListSize,
    /// The 2013 oral-antibacterial item STAR-PU.
    StarPuOralAntibacterial,
    /// Registered patients of some sexes and age bands (women aged 35–74, children under 5),
    /// per 1,000 or per patient.
    Patients {
        /// Positions in [`AGE_BANDS`] × sex: male bands 0–8, female bands 9–17.
        bands: Vec<usize>,
        /// The value is per 1,000 of them (else per one).
        per_thousand: bool,
        /// The bands in words, for labels ("female 35_44, 45_54").
        described: String,
    },
}

impl Quantity {
    /// Whether this sums prescribing (as opposed to a list-size statistic).
    pub fn is_prescribing(&self) -> bool {
        !matches!(self, Quantity::ListSize | Quantity::StarPuOralAntibacterial | Quantity::Patients { .. })
    }

    /// Whether it is money.
    pub fn is_cost(&self) -> bool {
        matches!(self, Quantity::ActualCost | Quantity::Nic)
    }

    /// The name used in definition files.
    pub fn name(&self) -> &str {
        match self {
            Quantity::Items => "items",
            Quantity::Quantity => "quantity",
            Quantity::ActualCost => "actual_cost",
            Quantity::Nic => "nic",
            Quantity::Adq => "adq",
            Quantity::WeightedQuantity(_) => "weighted_quantity",
            Quantity::IngredientAmount { .. } => "ingredient_amount",
            Quantity::Ddd => "ddd",
            Quantity::Inhalers => "inhalers",
            Quantity::ListSize => "list_size",
            Quantity::StarPuOralAntibacterial => "star_pu_oral_antibacterial",
            Quantity::Patients { .. } => "patients",
        }
    }

    /// The SQL expression over the `prescribing_current` view that gives this value.
    pub fn sql_column(&self) -> &str {
        match self {
            Quantity::Items => "items",
            Quantity::Quantity
            | Quantity::WeightedQuantity(_)
            | Quantity::IngredientAmount { .. }
            | Quantity::Ddd
            | Quantity::Inhalers => "quantity",
            Quantity::ActualCost => "actual_cost",
            Quantity::Nic => "nic",
            Quantity::Adq => "adq_usage",
            Quantity::ListSize => "total",
            Quantity::StarPuOralAntibacterial => "star_pu_oral_antibacterial",
            Quantity::Patients { .. } => "total",
        }
    }
}

/// A numerator or denominator.
#[derive(Clone, Debug, PartialEq)]
pub struct Side {
    /// What is summed.
    pub quantity: Quantity,
    /// Presentations counted (empty for list sizes).
    pub codes: Vec<CodePattern>,
    /// Presentations left out even though `codes` matches them.
    pub exclude: Vec<CodePattern>,
    /// Presentations left out in some months only (a commissioning list that changed).
    pub exclude_during: Vec<DatedExclusion>,
    /// Keep only presentations whose name contains one of these (case-insensitive).
    pub name_contains: Vec<String>,
    /// Drop presentations whose name contains one of these (case-insensitive).
    pub name_excludes: Vec<String>,
    /// Keep only presentations with a dm+d product that meets one of these rules.
    pub products: Vec<ProductRule>,
    /// Drop presentations with a dm+d product that meets one of these rules.
    pub exclude_products: Vec<ProductRule>,
    /// Count only prescriptions whose quantity per item meets one of these rules (read from the
    /// EPD's quantity split, so the side sums items or quantity only).
    pub quantity_per_item: Vec<QuantityRule>,
    /// Alternatives: the side selects what any of them selects, and nothing of its own (each
    /// alternative's own codes, filters and rules hold together). A composite's numerator holds
    /// its components' numerators here.
    pub any_of: Vec<Side>,
    /// What the side counts, in words ("oral antibacterial items"), for axis titles and tables.
    pub label: Option<String>,
}

impl Side {
    /// What the side counts, in words: its label, or a plain description of its quantity.
    pub fn describe(&self) -> String {
        if let Some(l) = &self.label {
            return l.clone();
        }
        match &self.quantity {
            Quantity::Items => "items".into(),
            Quantity::Quantity => "units (tablets, capsules, millilitres…)".into(),
            Quantity::ActualCost => "actual cost (£)".into(),
            Quantity::Nic => "net ingredient cost (£)".into(),
            Quantity::Adq => "average daily quantities".into(),
            Quantity::WeightedQuantity(t) => format!("quantity weighted by the {} table", t.replace('_', " ")),
            Quantity::IngredientAmount { unit, factors: None } => format!("ingredient ({unit})"),
            Quantity::IngredientAmount { unit, factors: Some(t) } => {
                format!("ingredient ({unit}) weighted by the {} table", t.replace('_', " "))
            }
            Quantity::Ddd => "defined daily doses".into(),
            Quantity::Inhalers => "inhalers".into(),
            Quantity::ListSize => "registered patients".into(),
            Quantity::StarPuOralAntibacterial => "STAR-PU (oral antibacterial items)".into(),
            Quantity::Patients { described, .. } => format!("registered patients ({described})"),
        }
    }
}

impl Side {
    /// Whether a presentation is counted on this side: its code matches (or the side selects by
    /// dm+d alone), no exclusion, name filter or excluded product drops it, and when the side has
    /// product rules one of its dm+d products meets one.
    pub fn selects(&self, p: &Presentation) -> bool {
        self.selects_in(p, None)
    }

    /// [`Side::selects`] in one month, when dated exclusions apply (with no month, none does:
    /// the presentation is counted in some month).
    pub fn selects_in(&self, p: &Presentation, month: Option<YearMonth>) -> bool {
        if !self.quantity.is_prescribing() {
            return false;
        }
        if !self.any_of.is_empty() {
            return self.any_of.iter().any(|s| s.selects_in(p, month));
        }
        if let Some(m) = month
            && self.exclude_during.iter().any(|d| d.excludes(&p.code, m))
        {
            return false;
        }
        if self.codes.is_empty() {
            if self.products.is_empty() {
                return false;
            }
        } else if !self.codes.iter().any(|c| c.matches(&p.code)) {
            return false;
        }
        if self.exclude.iter().any(|c| c.matches(&p.code)) {
            return false;
        }
        let lower = p.name.to_ascii_lowercase();
        if !self.name_contains.is_empty() && !self.name_contains.iter().any(|n| lower.contains(n.as_str())) {
            return false;
        }
        if self.name_excludes.iter().any(|n| lower.contains(n.as_str())) {
            return false;
        }
        if !self.products.is_empty() && !self.products.iter().any(|r| r.selects(p)) {
            return false;
        }
        !self.exclude_products.iter().any(|r| r.selects(p))
    }

    /// What the side selects, in words, one criterion a line (alternatives indented under "any
    /// of"), for `ipmo measures show` and the measure page: the same words in both.
    pub fn criteria(&self) -> Vec<String> {
        let codes = |v: &[CodePattern]| v.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
        let mut out = Vec::new();
        if !self.codes.is_empty() {
            out.push(format!("BNF codes {}", codes(&self.codes)));
        }
        if !self.exclude.is_empty() {
            out.push(format!("leaving out BNF codes {}", codes(&self.exclude)));
        }
        for d in &self.exclude_during {
            out.push(format!("leaving out BNF codes {d}"));
        }
        if !self.name_contains.is_empty() {
            out.push(format!("name contains {}", self.name_contains.join(" or ")));
        }
        if !self.name_excludes.is_empty() {
            out.push(format!("name contains none of {}", self.name_excludes.join(", ")));
        }
        for r in &self.products {
            out.push(format!("dm+d product: {r}"));
        }
        for r in &self.exclude_products {
            out.push(format!("leaving out dm+d products: {r}"));
        }
        for r in &self.quantity_per_item {
            out.push(format!("counting only prescriptions where {r}"));
        }
        if !self.any_of.is_empty() {
            out.push("any of:".into());
            for (i, a) in self.any_of.iter().enumerate() {
                for (j, line) in a.criteria().into_iter().enumerate() {
                    let lead = if j == 0 { format!("{}. ", i + 1) } else { "   ".into() };
                    out.push(format!("  {lead}{line}"));
                }
            }
        }
        out
    }

    /// Whether the side reads dm+d (and so needs a release loaded to select or weigh anything).
    pub fn uses_dmd(&self) -> bool {
        !self.products.is_empty()
            || !self.exclude_products.is_empty()
            || matches!(self.quantity, Quantity::IngredientAmount { .. } | Quantity::Ddd | Quantity::Inhalers)
            || self.any_of.iter().any(Side::uses_dmd)
    }

    /// The product rules whose named ingredients an amount is taken from: the side's own, or its
    /// alternatives' (a presentation's amount comes from the first rule one of its products meets).
    pub fn rules_for_amounts(&self) -> Vec<ProductRule> {
        let mut rules = self.products.clone();
        for a in &self.any_of {
            rules.extend(a.rules_for_amounts());
        }
        rules
    }

    /// Whether what the side selects depends on the month.
    pub fn is_dated(&self) -> bool {
        !self.exclude_during.is_empty() || self.any_of.iter().any(Side::is_dated)
    }

    /// Whether the side reads the EPD's quantity split rather than the monthly totals.
    pub fn uses_quantity_split(&self) -> bool {
        !self.quantity_per_item.is_empty() || self.any_of.iter().any(Side::uses_quantity_split)
    }
}

/// Lifecycle of a definition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Under review; computed but marked as draft.
    Draft,
    /// In use.
    Live,
    /// Kept for history; not computed.
    Retired,
}

impl Status {
    /// The name used in definition files and stored tables.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Draft => "draft",
            Status::Live => "live",
            Status::Retired => "retired",
        }
    }
}

/// How directions are spelt in definition files and stored tables.
const DIRECTIONS: [(&str, Direction); 3] = [
    ("lower_is_better", Direction::LowerIsBetter),
    ("higher_is_better", Direction::HigherIsBetter),
    ("no_judgement", Direction::Neither),
];

/// The definition-file spelling of a direction.
pub fn direction_name(direction: Direction) -> &'static str {
    DIRECTIONS.iter().find(|(_, d)| *d == direction).map_or("no_judgement", |(name, _)| name)
}

/// One change to what a measure counts: the version it made, when, and what changed, so a
/// pharmacist comparing this month's number with last year's knows whether the measure moved.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Change {
    /// The version the change made.
    pub version: u32,
    /// When (YYYY-MM-DD).
    pub date: String,
    /// What changed and why, in words.
    pub what: String,
}

/// An optional target with where it comes from.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// The value, in the measure's unit.
    pub value: f64,
    /// Who set it.
    pub source: String,
}

/// A validated measure definition.
#[derive(Clone, Debug, PartialEq)]
pub struct Measure {
    /// Identifier, equal to the file name without `.toml`.
    pub id: String,
    /// Short title.
    pub title: String,
    /// What is counted, in words.
    pub description: String,
    /// Why it matters clinically or financially.
    pub why_it_matters: String,
    /// Tags from [`TAGS`].
    pub tags: Vec<String>,
    /// National medicines optimisation opportunities (1–16) this measure evidences.
    pub opportunities: Vec<u8>,
    /// Which way is better.
    pub direction: Direction,
    /// Shown ×100 as a percentage.
    pub is_percentage: bool,
    /// Cost savings are computed (numerator is money).
    pub is_cost_based: bool,
    /// Whether it appears in alerts.
    pub include_in_alerts: bool,
    /// Numerator.
    pub numerator: Side,
    /// Denominator.
    pub denominator: Side,
    /// Optional target.
    pub target: Option<Target>,
    /// Where the definition comes from.
    pub source: String,
    /// The OpenPrescribing measure this one follows or adapts, so a pharmacist can compare the
    /// two and ask for values by either id.
    pub openprescribing_id: Option<String>,
    /// Where this measure deliberately differs from the OpenPrescribing measure it follows, and
    /// why: a pharmacist comparing the two numbers reads this first. Empty when it is the same.
    pub differences: Option<String>,
    /// Definition version, raised on every change to what is counted.
    pub version: u32,
    /// What each version after the first changed, oldest first.
    pub changes: Vec<Change>,
    /// When first written.
    pub authored: String,
    /// When last clinically reviewed.
    pub reviewed: String,
    /// Lifecycle.
    pub status: Status,
    /// SHA-256 of the definition file and any factor table it uses, stored beside every result.
    pub hash: String,
    /// The unit in words, when the definition gives one (otherwise [`Measure::unit`] builds it).
    pub unit_override: Option<String>,
    /// For a composite measure, the measures it sums: it counts exactly what they count, so a
    /// total over measures adds either the composite or its components, never both.
    pub components: Vec<String>,
}

/// How a measure stands against OpenPrescribing, for a pharmacist comparing numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fidelity {
    /// Follows an OpenPrescribing measure with no stated difference.
    Same,
    /// Follows one, with deliberate differences stated in `differences`.
    DeliberatelyDifferent,
    /// Has no OpenPrescribing counterpart.
    OursOnly,
}

impl Fidelity {
    /// In words, for listings.
    pub fn as_str(self) -> &'static str {
        match self {
            Fidelity::Same => "same as OpenPrescribing",
            Fidelity::DeliberatelyDifferent => "deliberately different",
            Fidelity::OursOnly => "ours only",
        }
    }
}

impl Measure {
    /// How it stands against OpenPrescribing.
    pub fn fidelity(&self) -> Fidelity {
        match (&self.openprescribing_id, &self.differences) {
            (None, _) => Fidelity::OursOnly,
            (Some(_), None) => Fidelity::Same,
            (Some(_), Some(_)) => Fidelity::DeliberatelyDifferent,
        }
    }

    /// `value = numerator × multiplier / denominator`: 100 for percentages, 1,000 for per-1,000
    /// patients, 1 otherwise.
    pub fn multiplier(&self) -> f64 {
        if self.is_percentage {
            100.0
        } else if self.denominator.quantity == Quantity::ListSize
            || matches!(self.denominator.quantity, Quantity::Patients { per_thousand: true, .. })
        {
            1000.0
        } else {
            1.0
        }
    }

    /// The unit, in words, for labels: "%", "items per 1,000 patients", "£ per item".
    pub fn unit(&self) -> String {
        if let Some(u) = &self.unit_override {
            return u.clone();
        }
        if self.is_percentage {
            return "%".into();
        }
        let num = match &self.numerator.quantity {
            Quantity::ActualCost | Quantity::Nic => "£",
            Quantity::Items => "items",
            Quantity::Quantity => "units",
            Quantity::Adq => "ADQs",
            Quantity::WeightedQuantity(_) => "weighted units",
            Quantity::IngredientAmount { unit, factors: None } => unit.as_str(),
            Quantity::IngredientAmount { .. } => "weighted amount",
            Quantity::Ddd => "DDDs",
            Quantity::Inhalers => "inhalers",
            _ => "",
        };
        let per = match &self.denominator.quantity {
            Quantity::ListSize => "1,000 patients",
            Quantity::StarPuOralAntibacterial => "STAR-PU",
            Quantity::Patients { per_thousand: true, .. } => "1,000 patients in the age bands",
            Quantity::Patients { .. } => "patient in the age bands",
            Quantity::Items => "item",
            Quantity::Quantity | Quantity::WeightedQuantity(_) => "unit",
            Quantity::IngredientAmount { unit, .. } => unit.as_str(),
            Quantity::Ddd => "DDD",
            Quantity::Inhalers => "inhaler",
            Quantity::Adq => "ADQ",
            Quantity::ActualCost | Quantity::Nic => "£ spent",
        };
        format!("{num} per {per}")
    }

    /// Whether the measure is the sum of others (see [`Measure::components`]).
    pub fn is_composite(&self) -> bool {
        !self.components.is_empty()
    }

    /// Whether the numerator counts events (items, units, doses) rather than money: what a
    /// funnel plot's Poisson or binomial model needs.
    pub fn counts_events(&self) -> bool {
        matches!(
            self.numerator.quantity,
            Quantity::Items
                | Quantity::Quantity
                | Quantity::Adq
                | Quantity::WeightedQuantity(_)
                | Quantity::IngredientAmount { .. }
                | Quantity::Ddd
                | Quantity::Inhalers
        )
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSide {
    #[serde(default)]
    value: Option<String>,
    #[serde(default)]
    codes: Vec<String>,
    #[serde(default)]
    exclude: Vec<String>,
    #[serde(default)]
    exclude_during: Vec<RawDatedExclusion>,
    #[serde(default)]
    factors: Option<String>,
    #[serde(default)]
    amount_unit: Option<String>,
    #[serde(default)]
    ages: Vec<String>,
    #[serde(default)]
    sexes: Vec<String>,
    #[serde(default)]
    per_thousand: Option<bool>,
    #[serde(default)]
    name_contains: Vec<String>,
    #[serde(default)]
    name_excludes: Vec<String>,
    #[serde(default)]
    products: Vec<RawProductRule>,
    #[serde(default)]
    exclude_products: Vec<RawProductRule>,
    #[serde(default)]
    quantity_per_item: Vec<RawQuantityRule>,
    #[serde(default)]
    any_of: Vec<RawSide>,
    #[serde(default)]
    label: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMeasure {
    id: String,
    title: String,
    description: String,
    why_it_matters: String,
    tags: Vec<String>,
    #[serde(default)]
    opportunities: Vec<u8>,
    direction: String,
    is_percentage: bool,
    #[serde(default)]
    is_cost_based: bool,
    #[serde(default)]
    include_in_alerts: Option<bool>,
    numerator: RawSide,
    denominator: RawSide,
    #[serde(default)]
    target: Option<Target>,
    source: String,
    #[serde(default)]
    openprescribing_id: Option<String>,
    #[serde(default)]
    differences: Option<String>,
    version: u32,
    #[serde(default)]
    changes: Vec<Change>,
    authored: String,
    reviewed: String,
    status: String,
    #[serde(default)]
    unit: Option<String>,
    #[serde(default)]
    components: Vec<String>,
}

/// Parses and validates one definition. `tables` lists the factor tables that exist; `hash` is
/// computed by the caller over the file and its tables.
pub fn parse(path: &Path, text: &str, tables: &[String], hash: String) -> Result<Measure, MeasureError> {
    let raw: RawMeasure =
        toml::from_str(text).map_err(|e| MeasureError::Parse { path: path.to_path_buf(), message: e.to_string() })?;
    let bad = |field: &str, msg: String| MeasureError::invalid(path, field, msg);
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
    if raw.id != stem {
        return Err(bad("id", format!("\"{}\" must equal the file name \"{stem}\"; rename one of them", raw.id)));
    }
    if raw.id.is_empty() || !raw.id.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_') {
        return Err(bad("id", format!("\"{}\" must be lower-case letters, digits and _", raw.id)));
    }
    for (field, value) in [
        ("title", &raw.title),
        ("description", &raw.description),
        ("why_it_matters", &raw.why_it_matters),
        ("source", &raw.source),
    ] {
        if value.trim().is_empty() {
            return Err(bad(field, "must not be empty".into()));
        }
    }
    if let Some(op) = &raw.openprescribing_id
        && (op.is_empty() || !op.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_'))
    {
        return Err(bad(
            "openprescribing_id",
            format!("\"{op}\" is not an OpenPrescribing measure id (lower-case letters, digits and _)"),
        ));
    }
    if raw.tags.is_empty() {
        return Err(bad("tags", format!("give at least one of: {}", TAGS.join(", "))));
    }
    if let Some(t) = raw.tags.iter().find(|t| !TAGS.contains(&t.as_str())) {
        return Err(bad("tags", format!("\"{t}\" is not a known tag; use one of: {}", TAGS.join(", "))));
    }
    if let Some(o) = raw.opportunities.iter().find(|o| !(1..=16).contains(*o)) {
        return Err(bad("opportunities", format!("{o} is not one of the 16 national opportunities (1–16)")));
    }
    let direction = DIRECTIONS.iter().find(|(name, _)| *name == raw.direction).map(|(_, d)| *d).ok_or_else(|| {
        bad(
            "direction",
            format!("\"{}\" must be \"lower_is_better\", \"higher_is_better\" or \"no_judgement\"", raw.direction),
        )
    })?;
    let status = [Status::Draft, Status::Live, Status::Retired]
        .into_iter()
        .find(|s| s.as_str() == raw.status)
        .ok_or_else(|| bad("status", format!("\"{}\" must be \"draft\", \"live\" or \"retired\"", raw.status)))?;
    if raw.version == 0 {
        return Err(bad("version", "versions start at 1".into()));
    }
    let mut changes = raw.changes;
    changes.sort_by_key(|c| c.version);
    for c in &changes {
        if c.version < 2 || c.version > raw.version {
            return Err(bad(
                "changes",
                format!("version {} is not between 2 and the definition's {}", c.version, raw.version),
            ));
        }
        if !is_iso_date(&c.date) {
            return Err(bad("changes", format!("\"{}\" is not a date like 2026-11-23", c.date)));
        }
        if c.what.trim().is_empty() {
            return Err(bad("changes", format!("say what version {} changed", c.version)));
        }
    }
    for v in 2..=raw.version {
        match changes.iter().filter(|c| c.version == v).count() {
            0 => return Err(bad("changes", format!("add a [[changes]] entry saying what version {v} changed"))),
            1 => {}
            _ => return Err(bad("changes", format!("version {v} has more than one entry"))),
        }
    }
    for (field, date) in [("authored", &raw.authored), ("reviewed", &raw.reviewed)] {
        if !is_iso_date(date) {
            return Err(bad(field, format!("\"{date}\" is not a date like 2026-11-23")));
        }
    }
    let numerator = side(path, "numerator", raw.numerator, tables, !raw.components.is_empty(), None)?;
    let denominator = side(path, "denominator", raw.denominator, tables, false, None)?;
    if !numerator.quantity.is_prescribing() {
        return Err(bad(
            "numerator.value",
            "a numerator sums prescribing; list sizes belong in the denominator".into(),
        ));
    }
    if raw.is_percentage && !denominator.quantity.is_prescribing() {
        return Err(bad("is_percentage", "a percentage needs a prescribing denominator, not a list size".into()));
    }
    if raw.is_cost_based {
        if !numerator.quantity.is_cost() {
            return Err(bad(
                "is_cost_based",
                "savings are in pounds, so the numerator value must be actual_cost or nic".into(),
            ));
        }
        if denominator.quantity.is_prescribing() && !denominator.quantity.is_cost() {
            return Err(bad(
                "is_cost_based",
                "savings need the denominator in pounds too, or a list size; an items or quantity ratio has no saving in its own unit".into(),
            ));
        }
        if direction != Direction::LowerIsBetter {
            return Err(bad(
                "is_cost_based",
                "savings assume lower is better; set direction = \"lower_is_better\"".into(),
            ));
        }
    }
    for (i, c) in raw.components.iter().enumerate() {
        if *c == raw.id {
            return Err(bad("components", "a measure cannot be its own component".into()));
        }
        if raw.components[..i].contains(c) {
            return Err(bad("components", format!("\"{c}\" is listed twice")));
        }
    }
    if let Some(t) = &raw.target
        && !t.value.is_finite()
    {
        return Err(bad("target.value", "must be a number".into()));
    }
    Ok(Measure {
        id: raw.id,
        title: raw.title,
        description: raw.description,
        why_it_matters: raw.why_it_matters,
        tags: raw.tags,
        opportunities: raw.opportunities,
        direction,
        is_percentage: raw.is_percentage,
        is_cost_based: raw.is_cost_based,
        include_in_alerts: raw.include_in_alerts.unwrap_or(status == Status::Live),
        numerator,
        denominator,
        target: raw.target,
        source: raw.source,
        openprescribing_id: raw.openprescribing_id,
        differences: raw.differences.map(|d| d.trim().to_string()).filter(|d| !d.is_empty()),
        version: raw.version,
        changes,
        authored: raw.authored,
        reviewed: raw.reviewed,
        status,
        hash,
        unit_override: raw.unit.map(|u| u.trim().to_string()).filter(|u| !u.is_empty()),
        components: raw.components,
    })
}

/// Parses one side; `composite` allows a numerator that selects nothing of its own (a composite's
/// is its components'). An alternative of `any_of` is parsed with its side's value as `inherited`.
fn side(
    path: &Path,
    which: &str,
    raw: RawSide,
    tables: &[String],
    composite: bool,
    inherited: Option<&Quantity>,
) -> Result<Side, MeasureError> {
    let bad = |field: &str, msg: String| MeasureError::invalid(path, &format!("{which}.{field}"), msg);
    if let Some(parent) = inherited {
        let own = [
            ("value", raw.value.is_some()),
            ("factors", raw.factors.is_some()),
            ("label", raw.label.is_some()),
            ("quantity_per_item", !raw.quantity_per_item.is_empty()),
            ("any_of", !raw.any_of.is_empty()),
        ];
        if let Some((field, _)) = own.iter().find(|(_, given)| *given) {
            return Err(bad(
                field,
                "an alternative of any_of only selects presentations; give this on its side".into(),
            ));
        }
        let mut alternative = RawSide { value: Some(parent.name().to_string()), ..raw };
        match parent {
            Quantity::WeightedQuantity(t) | Quantity::IngredientAmount { factors: Some(t), .. } => {
                alternative.factors = Some(t.clone());
            }
            _ => {}
        }
        if let Quantity::IngredientAmount { unit, .. } = parent {
            alternative.amount_unit = Some(unit.clone());
        }
        return side(path, which, alternative, tables, false, None);
    }
    let Some(value) = raw.value.as_deref() else {
        return Err(bad(
            "value",
            "say what the side sums: items, quantity, actual_cost, nic, adq, weighted_quantity or list_size".into(),
        ));
    };
    let quantity = match value {
        "items" => Quantity::Items,
        "quantity" => Quantity::Quantity,
        "actual_cost" => Quantity::ActualCost,
        "nic" => Quantity::Nic,
        "adq" => Quantity::Adq,
        "list_size" => Quantity::ListSize,
        "star_pu_oral_antibacterial" => Quantity::StarPuOralAntibacterial,
        "patients" => {
            if raw.ages.is_empty() {
                return Err(bad("ages", format!("name the age bands counted: {}", AGE_BANDS.join(", "))));
            }
            let sexes =
                if raw.sexes.is_empty() { vec!["male".to_string(), "female".to_string()] } else { raw.sexes.clone() };
            let mut bands = Vec::new();
            for sex in &sexes {
                let offset = match sex.as_str() {
                    "male" => 0,
                    "female" => AGE_BANDS.len(),
                    other => return Err(bad("sexes", format!("\"{other}\" must be male or female"))),
                };
                for age in &raw.ages {
                    let at = AGE_BANDS.iter().position(|b| b == age).ok_or_else(|| {
                        bad("ages", format!("\"{age}\" is not an age band; use {}", AGE_BANDS.join(", ")))
                    })?;
                    bands.push(offset + at);
                }
            }
            bands.sort_unstable();
            bands.dedup();
            Quantity::Patients {
                bands,
                per_thousand: raw.per_thousand.unwrap_or(true),
                described: format!("{} aged {}", sexes.join(" and "), raw.ages.join(", ").replace('_', "–")),
            }
        }
        "ddd" => Quantity::Ddd,
        "inhalers" => Quantity::Inhalers,
        "ingredient_amount" => {
            let Some(unit) = raw.amount_unit.clone() else {
                return Err(bad("amount_unit", "say the unit of the amount: mg, microgram or gram".into()));
            };
            if !crate::selection::is_mass_unit(&unit) {
                return Err(bad("amount_unit", format!("\"{unit}\" is not mg, microgram, gram or nanogram")));
            }
            let factors = match &raw.factors {
                Some(t) if tables.contains(t) => Some(t.clone()),
                Some(t) => return Err(bad("factors", format!("no factor table \"{t}\": add measures/tables/{t}.csv"))),
                None => None,
            };
            Quantity::IngredientAmount { unit, factors }
        }
        "weighted_quantity" => match &raw.factors {
            Some(t) if tables.contains(t) => Quantity::WeightedQuantity(t.clone()),
            Some(t) => {
                return Err(bad("factors", format!("no factor table \"{t}\": add measures/tables/{t}.csv")));
            }
            None => return Err(bad("factors", "a weighted_quantity needs `factors = \"table name\"`".into())),
        },
        other => {
            return Err(bad(
                "value",
                format!(
                    "\"{other}\" must be one of items, quantity, actual_cost, nic, adq, weighted_quantity, ingredient_amount, ddd, inhalers, list_size, patients, star_pu_oral_antibacterial"
                ),
            ));
        }
    };
    if raw.factors.is_some() && !matches!(quantity, Quantity::WeightedQuantity(_) | Quantity::IngredientAmount { .. }) {
        return Err(bad("factors", "only a weighted_quantity or an ingredient_amount uses a factor table".into()));
    }
    let patients = matches!(quantity, Quantity::Patients { .. });
    if !patients && (!raw.ages.is_empty() || !raw.sexes.is_empty() || raw.per_thousand.is_some()) {
        return Err(bad("ages", "only a patients side has ages, sexes and per_thousand".into()));
    }
    if raw.amount_unit.is_some() && !matches!(quantity, Quantity::IngredientAmount { .. }) {
        return Err(bad("amount_unit", "only an ingredient_amount has an amount unit".into()));
    }
    let parse_all = |field: &str, list: &[String]| -> Result<Vec<CodePattern>, MeasureError> {
        list.iter().map(|c| CodePattern::parse(c).map_err(|m| bad(field, m))).collect()
    };
    let codes = parse_all("codes", &raw.codes)?;
    let exclude = parse_all("exclude", &raw.exclude)?;
    let products = build_each(raw.products, RawProductRule::build, "products", &bad)?;
    let exclude_during = build_each(raw.exclude_during, RawDatedExclusion::build, "exclude_during", &bad)?;
    let exclude_products = build_each(raw.exclude_products, RawProductRule::build, "exclude_products", &bad)?;
    let quantity_per_item = build_each(raw.quantity_per_item, RawQuantityRule::build, "quantity_per_item", &bad)?;
    let any_of = raw
        .any_of
        .into_iter()
        .enumerate()
        .map(|(i, alt)| side(path, &format!("{which}.any_of[{}]", i + 1), alt, tables, false, Some(&quantity)))
        .collect::<Result<Vec<_>, _>>()?;
    if !any_of.is_empty()
        && (!codes.is_empty()
            || !exclude.is_empty()
            || !raw.name_contains.is_empty()
            || !raw.name_excludes.is_empty()
            || !products.is_empty()
            || !exclude_products.is_empty())
    {
        return Err(bad(
            "any_of",
            "a side with alternatives selects what any of them selects; move its own codes, filters and rules into them"
                .into(),
        ));
    }
    if quantity.is_prescribing() && codes.is_empty() && products.is_empty() && any_of.is_empty() && !composite {
        return Err(bad("codes", "list the BNF codes or prefixes to sum, or dm+d `products` rules".into()));
    }
    if !quantity_per_item.is_empty() && !matches!(quantity, Quantity::Items | Quantity::Quantity) {
        return Err(bad(
            "quantity_per_item",
            format!(
                "the quantity split holds items and quantity per item only, so such a side sums items or quantity, not {}",
                quantity.name()
            ),
        ));
    }
    let has_codes = !codes.is_empty()
        || !any_of.is_empty()
        || !exclude.is_empty()
        || !exclude_during.is_empty()
        || !products.is_empty()
        || !exclude_products.is_empty()
        || !quantity_per_item.is_empty();
    if !quantity.is_prescribing() && has_codes {
        return Err(bad("codes", format!("a {} denominator takes no codes", quantity.name())));
    }
    let lower = |v: Vec<String>| v.into_iter().map(|s| s.to_ascii_lowercase()).collect();
    Ok(Side {
        quantity,
        codes,
        exclude,
        exclude_during,
        name_contains: lower(raw.name_contains),
        name_excludes: lower(raw.name_excludes),
        products,
        exclude_products,
        quantity_per_item,
        any_of,
        label: raw.label.map(|l| l.trim().to_string()).filter(|l| !l.is_empty()),
    })
}

/// Builds each entry of a repeated table (`[[numerator.products]]`…) with `build`; an error names
/// the entry (`products[2]`) and the key within it.
fn build_each<R, T>(
    list: Vec<R>,
    build: fn(R) -> Result<T, (String, String)>,
    field: &str,
    bad: &dyn Fn(&str, String) -> MeasureError,
) -> Result<Vec<T>, MeasureError> {
    list.into_iter()
        .enumerate()
        .map(|(i, r)| {
            build(r).map_err(|(f, m)| {
                let at = if f.is_empty() { String::new() } else { format!(".{f}") };
                bad(&format!("{field}[{}]{at}", i + 1), m)
            })
        })
        .collect()
}

fn is_iso_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter().enumerate().all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
        && (1..=12).contains(&s[5..7].parse::<u8>().unwrap_or(0))
        && (1..=31).contains(&s[8..10].parse::<u8>().unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) const GOOD: &str = r#"
id = "methotrexate"
title = "Methotrexate 10 mg tablets"
description = "10 mg tablets as a share of all methotrexate tablet items."
why_it_matters = "Mixing strengths causes fatal overdoses."
tags = ["safety"]
direction = "lower_is_better"
is_percentage = true
source = "OpenPrescribing methotrexate"
version = 1
authored = "2026-11-23"
reviewed = "2026-11-23"
status = "live"

[numerator]
value = "items"
codes = ["1001030U0%AC"]

[denominator]
value = "items"
codes = ["1001030U0%AB", "1001030U0%AC"]
"#;

    fn parse_text(text: &str) -> Result<Measure, MeasureError> {
        parse(Path::new("measures/methotrexate.toml"), text, &["ome".to_string()], "h".into())
    }

    fn field_of(text: &str) -> String {
        match parse_text(text) {
            Err(MeasureError::Invalid { field, .. }) => field,
            other => panic!("expected an invalid-field error, got {other:?}"),
        }
    }

    #[test]
    fn a_good_definition_parses() {
        let m = parse_text(GOOD).unwrap();
        assert_eq!(m.multiplier(), 100.0);
        assert_eq!(m.unit(), "%");
        assert!(m.numerator.selects(&Presentation::named("1001030U0AAACAC", "Methotrexate_Tab 10mg")));
        assert!(!m.numerator.selects(&Presentation::named("1001030U0AAABAB", "Methotrexate_Tab 2.5mg")));
        assert!(m.include_in_alerts);
    }

    #[test]
    fn errors_name_the_field() {
        assert_eq!(field_of(&GOOD.replace("id = \"methotrexate\"", "id = \"mtx\"")), "id");
        assert_eq!(field_of(&GOOD.replace("[\"safety\"]", "[\"safty\"]")), "tags");
        assert_eq!(field_of(&GOOD.replace("lower_is_better", "low")), "direction");
        assert_eq!(
            field_of(&GOOD.replace("\"1001030U0%AC\"]\n\n[denominator]", "\"10-01\"]\n\n[denominator]")),
            "numerator.codes"
        );
        assert_eq!(
            field_of(&GOOD.replace(
                "value = \"items\"\ncodes = [\"1001030U0%AB\"",
                "value = \"pills\"\ncodes = [\"1001030U0%AB\""
            )),
            "denominator.value"
        );
        assert_eq!(
            field_of(&GOOD.replace("is_percentage = true", "is_percentage = true\nis_cost_based = true")),
            "is_cost_based"
        );
        assert_eq!(field_of(&GOOD.replace("2026-11-23\"\nreviewed", "23/11/2026\"\nreviewed")), "authored");
        assert_eq!(field_of(&GOOD.replace("status = \"live\"", "status = \"on\"")), "status");
        let list =
            GOOD.replace("value = \"items\"\ncodes = [\"1001030U0%AB\", \"1001030U0%AC\"]", "value = \"list_size\"");
        assert_eq!(field_of(&list), "is_percentage");
        let weighted = GOOD.replace(
            "value = \"items\"\ncodes = [\"1001030U0%AC\"]",
            "value = \"weighted_quantity\"\nfactors = \"co2\"\ncodes = [\"03\"]",
        );
        assert_eq!(field_of(&weighted), "numerator.factors");
        match parse_text(&GOOD.replace("version = 1", "version = \"one\"")) {
            Err(MeasureError::Parse { message, .. }) => assert!(message.contains("line"), "{message}"),
            other => panic!("{other:?}"),
        }
        match parse_text(&format!("{GOOD}\ncolour = \"red\"")) {
            Err(MeasureError::Parse { message, .. }) => assert!(message.contains("colour"), "{message}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn name_filters_and_exclusions() {
        let text = GOOD.replace(
            "codes = [\"1001030U0%AC\"]",
            "codes = [\"0501\"]\nexclude = [\"050109\"]\nname_contains = [\"Tab\", \"Cap\"]\nname_excludes = [\"inj\"]",
        );
        let m = parse_text(&text).unwrap();
        assert!(m.numerator.selects(&Presentation::named("0501013B0AAABAB", "Amoxicillin_Cap 500mg")));
        assert!(!m.numerator.selects(&Presentation::named("0501090K0AAAAAA", "Isoniazid_Tab 100mg")));
        assert!(!m.numerator.selects(&Presentation::named("0501013B0AAAXAX", "Amoxicillin_Oral Susp 250mg/5ml")));
        assert!(!m.numerator.selects(&Presentation::named("0501013B0AAAYAY", "Amoxicillin_Cap Inj")));
    }
}
