//! What a presentation is, and the rules that select presentations by it.
//!
//! A BNF code says where the BNF files a medicine, not what it is: the 2023 re-coding moved
//! whole sections, and names changed style when the EPD moved to dm+d descriptions. dm+d says
//! what a product is — its ingredients and their strengths, its form and route, its VTM, whether
//! it is a brand — and those facts do not move. So a measure side may select by them
//! ([`ProductRule`]), and by the quantity on each prescription ([`QuantityRule`]), beside its
//! BNF code patterns. A presentation here is one current BNF code with the dm+d products behind
//! it ([`Presentation`]); the warehouse builds them from the loaded dm+d release.

use crate::codes::{CodePattern, like};
use serde::Deserialize;
use std::fmt;

/// One presentation (a current BNF code): its name and the dm+d products it stands for (none when
/// no dm+d release is loaded or the code has no product).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Presentation {
    /// Current BNF code.
    pub code: String,
    /// BNF or EPD name ("" when unknown).
    pub name: String,
    /// The dm+d products published under this code.
    pub products: Vec<Product>,
}

impl Presentation {
    /// A presentation known only by its code and name.
    pub fn named(code: &str, name: &str) -> Self {
        Self { code: code.to_string(), name: name.to_string(), products: Vec::new() }
    }
}

/// What dm+d says about one product (a VMP, or an AMP with its VMP's facts).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Product {
    /// SNOMED id of the VMP or AMP.
    pub id: String,
    /// SNOMED id of the VMP (the product itself for a VMP).
    pub vmp_id: String,
    /// Whether it is a branded product (an AMP) rather than a generic one (a VMP).
    pub is_brand: bool,
    /// dm+d name.
    pub name: String,
    /// The VMP's name (the product's own for a VMP), which an AMP's rules may also match.
    pub vmp_name: String,
    /// The VTM's name, when the product has one.
    pub vtm: Option<String>,
    /// Ontology form-routes (`tablet.oral`, `pressurizedinhalation.inhalation`).
    pub form_routes: Vec<String>,
    /// Active ingredients with their strengths.
    pub ingredients: Vec<Ingredient>,
    /// WHO ATC code, from dm+d's BNF/ATC/DDD supplement.
    pub atc: Option<String>,
    /// WHO defined daily dose and its unit (`300`, `mg`), from the same supplement.
    pub ddd: Option<(f64, String)>,
    /// The smallest pack of the VMP (doses in an inhaler, tablets in a box), from dm+d's VMPPs.
    pub min_pack: Option<f64>,
}

/// One active ingredient of a product.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Ingredient {
    /// Ingredient substance name.
    pub name: String,
    /// Strength numerator and its unit (`200`, `microgram`).
    pub strength: Option<(f64, String)>,
    /// Strength denominator and its unit (`5`, `ml`), when strength is per an amount.
    pub per: Option<(f64, String)>,
}

impl Ingredient {
    /// Strength per one unit of the denominator (per dose, per ml…), in `unit` when given
    /// (mg, microgram, gram, nanogram convert into each other); `None` when there is no strength
    /// or its unit does not convert.
    pub fn strength_in(&self, unit: Option<&str>) -> Option<f64> {
        let (value, from) = self.strength.as_ref()?;
        let per = self.per.as_ref().map_or(1.0, |(d, _)| *d);
        if per == 0.0 {
            return None;
        }
        let value = match unit {
            None => *value,
            Some(to) => value * mass_factor(from)? / mass_factor(to)?,
        };
        Some(value / per)
    }
}

/// Whether `unit` is a mass unit strengths convert into.
pub fn is_mass_unit(unit: &str) -> bool {
    mass_factor(unit).is_some()
}

/// Milligrams per unit, for the mass units dm+d uses.
fn mass_factor(unit: &str) -> Option<f64> {
    Some(match unit.trim().to_ascii_lowercase().as_str() {
        "gram" | "g" => 1000.0,
        "mg" | "milligram" => 1.0,
        "microgram" | "mcg" => 0.001,
        "nanogram" => 0.000_001,
        _ => return None,
    })
}

/// A case-insensitive text pattern: the whole text, with `%` for any run of characters and `_` for
/// one, as SQL `LIKE` (`%.oral` is every oral form-route).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TextPattern {
    lower: String,
}

impl TextPattern {
    /// Parses a pattern (any non-empty text).
    pub fn parse(s: &str) -> Result<Self, String> {
        let lower = s.trim().to_lowercase();
        if lower.is_empty() {
            Err("an empty pattern matches nothing".into())
        } else if lower.len() > 200 {
            Err(format!("\"{}…\" is longer than 200 characters", &s[..s.floor_char_boundary(40)]))
        } else {
            Ok(Self { lower })
        }
    }

    /// Whether `text` matches, ignoring case.
    pub fn matches(&self, text: &str) -> bool {
        like(self.lower.as_bytes(), text.to_lowercase().as_bytes())
    }
}

impl fmt::Display for TextPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.lower)
    }
}

/// Bounds on a number: every bound given must hold.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bounds {
    /// Strictly greater than.
    pub above: Option<f64>,
    /// Greater than or equal to.
    pub at_least: Option<f64>,
    /// Strictly less than.
    pub below: Option<f64>,
    /// Less than or equal to.
    pub at_most: Option<f64>,
    /// Equal to.
    pub equals: Option<f64>,
}

impl Bounds {
    /// Whether `v` lies within every bound.
    pub fn hold(&self, v: f64) -> bool {
        self.above.is_none_or(|b| v > b)
            && self.at_least.is_none_or(|b| v >= b)
            && self.below.is_none_or(|b| v < b)
            && self.at_most.is_none_or(|b| v <= b)
            && self.equals.is_none_or(|b| v == b)
    }

    fn is_empty(&self) -> bool {
        self.above.is_none()
            && self.at_least.is_none()
            && self.below.is_none()
            && self.at_most.is_none()
            && self.equals.is_none()
    }

    fn check(&self) -> Result<(), String> {
        if self.is_empty() {
            return Err("give at least one of above, at_least, below, at_most, equals".into());
        }
        for v in [self.above, self.at_least, self.below, self.at_most, self.equals].into_iter().flatten() {
            if !v.is_finite() {
                return Err(format!("{v} is not a number"));
            }
        }
        Ok(())
    }
}

impl fmt::Display for Bounds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> =
            [(">", self.above), ("≥", self.at_least), ("<", self.below), ("≤", self.at_most), ("=", self.equals)]
                .into_iter()
                .filter_map(|(op, v)| v.map(|v| format!("{op} {v}")))
                .collect();
        f.write_str(&parts.join(" and "))
    }
}

/// A strength condition on one ingredient.
#[derive(Clone, Debug, PartialEq)]
pub struct StrengthRule {
    /// The bounds on strength per dose unit (per tablet, per actuation, per ml…).
    pub bounds: Bounds,
    /// The unit the bounds are in (`mg`, `microgram`); `None` compares dm+d's own numbers.
    pub unit: Option<String>,
}

/// Selection by what a product is. Every condition given must hold for one product; a
/// presentation is selected when one of its products meets the rule.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProductRule {
    /// VTM names.
    pub vtm: Vec<TextPattern>,
    /// Ingredient names: some ingredient matches one (and meets `strength`, when given).
    pub ingredient: Vec<TextPattern>,
    /// Strength of the matched ingredient (of any ingredient when `ingredient` is empty).
    pub strength: Option<StrengthRule>,
    /// Form-routes: one of the product's matches one of these.
    pub form_route: Vec<TextPattern>,
    /// dm+d product names: the product's own or, for an AMP, its VMP's.
    pub name: Vec<TextPattern>,
    /// ATC codes (`J01%`).
    pub atc: Vec<TextPattern>,
    /// VMP ids.
    pub vmp: Vec<String>,
    /// Bounds on the number of active ingredients.
    pub ingredients: Option<Bounds>,
    /// Only brands (`true`) or only generics (`false`).
    pub brand: Option<bool>,
}

impl ProductRule {
    /// Whether one product meets every condition.
    pub fn matches(&self, p: &Product) -> bool {
        let any = |patterns: &[TextPattern], text: Option<&str>| {
            patterns.is_empty() || text.is_some_and(|t| patterns.iter().any(|x| x.matches(t)))
        };
        if !any(&self.vtm, p.vtm.as_deref())
            || !(any(&self.name, Some(&p.name)) || any(&self.name, Some(&p.vmp_name)))
            || !any(&self.atc, p.atc.as_deref())
            || self.brand.is_some_and(|b| b != p.is_brand)
            || (!self.vmp.is_empty() && !self.vmp.contains(&p.vmp_id))
            || self.ingredients.as_ref().is_some_and(|b| !b.hold(p.ingredients.len() as f64))
        {
            return false;
        }
        if !self.form_route.is_empty() && !p.form_routes.iter().any(|f| self.form_route.iter().any(|x| x.matches(f))) {
            return false;
        }
        if self.ingredient.is_empty() && self.strength.is_none() {
            return true;
        }
        p.ingredients.iter().any(|i| {
            (self.ingredient.is_empty() || self.ingredient.iter().any(|x| x.matches(&i.name)))
                && self
                    .strength
                    .as_ref()
                    .is_none_or(|s| i.strength_in(s.unit.as_deref()).is_some_and(|v| s.bounds.hold(v)))
        })
    }

    /// Whether one of a presentation's products meets the rule.
    pub fn selects(&self, p: &Presentation) -> bool {
        p.products.iter().any(|x| self.matches(x))
    }

    /// The ingredients of a product the rule speaks of: those its ingredient names match, or all.
    fn ingredients_of<'p>(&self, p: &'p Product) -> impl Iterator<Item = &'p Ingredient> {
        p.ingredients
            .iter()
            .filter(|i| self.ingredient.is_empty() || self.ingredient.iter().any(|x| x.matches(&i.name)))
    }
}

/// The amount of ingredient in one unit of a presentation (one tablet, one ml, one dose), in
/// `unit`: the strength of the ingredients named by the first rule one of its products meets
/// (every ingredient when `rules` is empty or the rule names none). `None` when no product
/// qualifies or a strength is missing or in a unit that does not convert.
pub fn amount_per_unit(p: &Presentation, rules: &[ProductRule], unit: &str) -> Option<f64> {
    let every = ProductRule::default();
    let (product, rule) = qualifying(p, rules, &every)?;
    let amounts: Option<Vec<f64>> = rule.ingredients_of(product).map(|i| i.strength_in(Some(unit))).collect();
    amounts.filter(|a| !a.is_empty()).map(|a| a.iter().sum())
}

/// Defined daily doses in one unit of a presentation: the ingredient amount in the unit of the
/// product's DDD, divided by the DDD. `None` without a DDD, a strength, or a unit that converts.
pub fn ddds_per_unit(p: &Presentation, rules: &[ProductRule]) -> Option<f64> {
    let every = ProductRule::default();
    let (product, rule) = qualifying(p, rules, &every)?;
    let (ddd, unit) = product.ddd.as_ref().filter(|(d, _)| *d > 0.0)?;
    let amounts: Option<Vec<f64>> = rule.ingredients_of(product).map(|i| i.strength_in(Some(unit))).collect();
    amounts.filter(|a| !a.is_empty()).map(|a| a.iter().sum::<f64>() / ddd)
}

/// The smallest pack among a presentation's products, for turning doses into inhalers.
pub fn smallest_pack(p: &Presentation) -> Option<f64> {
    p.products.iter().filter_map(|x| x.min_pack).filter(|q| *q > 0.0).min_by(f64::total_cmp)
}

/// The first product of `p` that meets one of `rules` (any product when there are none), with
/// the rule it meets.
fn qualifying<'a>(
    p: &'a Presentation,
    rules: &'a [ProductRule],
    every: &'a ProductRule,
) -> Option<(&'a Product, &'a ProductRule)> {
    if rules.is_empty() {
        return p.products.first().map(|x| (x, every));
    }
    p.products.iter().find_map(|x| rules.iter().find(|r| r.matches(x)).map(|r| (x, r)))
}

impl fmt::Display for ProductRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |v: &[TextPattern]| v.iter().map(ToString::to_string).collect::<Vec<_>>().join(" or ");
        let mut parts = Vec::new();
        if !self.vtm.is_empty() {
            parts.push(format!("VTM {}", list(&self.vtm)));
        }
        if !self.ingredient.is_empty() {
            parts.push(format!("ingredient {}", list(&self.ingredient)));
        }
        if let Some(s) = &self.strength {
            parts.push(format!(
                "strength {}{}",
                s.bounds,
                s.unit.as_ref().map(|u| format!(" {u}")).unwrap_or_default()
            ));
        }
        if !self.form_route.is_empty() {
            parts.push(format!("form-route {}", list(&self.form_route)));
        }
        if !self.name.is_empty() {
            parts.push(format!("dm+d name {}", list(&self.name)));
        }
        if !self.atc.is_empty() {
            parts.push(format!("ATC {}", list(&self.atc)));
        }
        if !self.vmp.is_empty() {
            parts.push(format!("VMP {}", self.vmp.join(" or ")));
        }
        if let Some(b) = &self.ingredients {
            parts.push(format!("active ingredients {b}"));
        }
        if let Some(b) = self.brand {
            parts.push(if b { "brands only".into() } else { "generics only".into() });
        }
        f.write_str(&parts.join(", "))
    }
}

/// An exclusion that holds for some months only: a commissioning list that changed on a date
/// (blood glucose strips recommended from July 2025) is followed month by month.
#[derive(Clone, Debug, PartialEq)]
pub struct DatedExclusion {
    /// The presentations excluded.
    pub codes: Vec<CodePattern>,
    /// First month it holds (from the start when `None`).
    pub from: Option<ipmo_domain::YearMonth>,
    /// Last month it holds (for ever when `None`).
    pub until: Option<ipmo_domain::YearMonth>,
}

impl DatedExclusion {
    /// Whether it excludes `code` in `month`.
    pub fn excludes(&self, code: &str, month: ipmo_domain::YearMonth) -> bool {
        self.from.is_none_or(|f| month >= f)
            && self.until.is_none_or(|u| month <= u)
            && self.codes.iter().any(|c| c.matches(code))
    }
}

impl fmt::Display for DatedExclusion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let codes: Vec<String> = self.codes.iter().map(ToString::to_string).collect();
        let when = match (self.from, self.until) {
            (Some(a), Some(b)) => format!("from {a} to {b}"),
            (Some(a), None) => format!("from {a}"),
            (None, Some(b)) => format!("until {b}"),
            (None, None) => "always".into(),
        };
        write!(f, "{} {when}", codes.join(", "))
    }
}

/// A dated exclusion as a definition file writes it.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDatedExclusion {
    codes: Vec<String>,
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    until: Option<String>,
}

impl RawDatedExclusion {
    /// Validates it; the error names the field within it.
    pub(crate) fn build(self) -> Result<DatedExclusion, (String, String)> {
        let month = |field: &str, v: Option<String>| -> Result<Option<ipmo_domain::YearMonth>, (String, String)> {
            v.map(|s| s.parse().map_err(|_| (field.to_string(), format!("\"{s}\" is not a month like 2025-07"))))
                .transpose()
        };
        let codes: Vec<CodePattern> = self
            .codes
            .iter()
            .map(|c| CodePattern::parse(c).map_err(|m| ("codes".to_string(), m)))
            .collect::<Result<_, _>>()?;
        if codes.is_empty() {
            return Err(("codes".into(), "list the BNF codes excluded".into()));
        }
        let (from, until) = (month("from", self.from)?, month("until", self.until)?);
        if from.is_none() && until.is_none() {
            return Err((
                String::new(),
                "give from, until or both; an exclusion for all months belongs in exclude".into(),
            ));
        }
        if let (Some(a), Some(b)) = (from, until)
            && a > b
        {
            return Err(("until".into(), format!("{b} is before {a}")));
        }
        Ok(DatedExclusion { codes, from, until })
    }
}

/// A condition on the quantity per item: rows of the EPD's quantity split count only when it
/// holds (amoxicillin 500 mg: more than 15 capsules).
#[derive(Clone, Debug, PartialEq)]
pub struct QuantityRule {
    /// The presentations the bound applies to (all the side selects when empty).
    pub codes: Vec<CodePattern>,
    /// The bound on quantity per item.
    pub bounds: Bounds,
}

impl QuantityRule {
    /// Whether the rule speaks for a presentation.
    pub fn covers(&self, code: &str) -> bool {
        self.codes.is_empty() || self.codes.iter().any(|p| p.matches(code))
    }
}

impl Bounds {
    /// The bounds as a SQL condition on `column`.
    pub fn sql(&self, column: &str) -> String {
        let parts: Vec<String> =
            [(">", self.above), (">=", self.at_least), ("<", self.below), ("<=", self.at_most), ("=", self.equals)]
                .into_iter()
                .filter_map(|(op, v)| v.map(|v| format!("{column} {op} {v}")))
                .collect();
        parts.join(" AND ")
    }
}

impl QuantityRule {
    /// The rule as a SQL condition on a code column and a quantity-per-item column.
    pub fn sql(&self, code: &str, per_item: &str) -> String {
        let bound = self.bounds.sql(per_item);
        if self.codes.is_empty() {
            return bound;
        }
        let codes: Vec<String> = self.codes.iter().map(|c| format!("{code} LIKE '{}'", c.sql_like())).collect();
        format!("(({}) AND {bound})", codes.join(" OR "))
    }
}

impl fmt::Display for QuantityRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.codes.is_empty() {
            write!(f, "quantity per item {}", self.bounds)
        } else {
            let codes: Vec<String> = self.codes.iter().map(ToString::to_string).collect();
            write!(f, "{}: quantity per item {}", codes.join(", "), self.bounds)
        }
    }
}

/// A product rule as a definition file writes it.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawProductRule {
    #[serde(default)]
    vtm: Vec<String>,
    #[serde(default)]
    ingredient: Vec<String>,
    #[serde(default)]
    strength: Option<Bounds>,
    #[serde(default)]
    strength_unit: Option<String>,
    #[serde(default)]
    form_route: Vec<String>,
    #[serde(default)]
    name: Vec<String>,
    #[serde(default)]
    atc: Vec<String>,
    #[serde(default)]
    vmp: Vec<String>,
    #[serde(default)]
    ingredients: Option<Bounds>,
    #[serde(default)]
    brand: Option<bool>,
}

impl RawProductRule {
    /// Validates the rule; the error names the field within it.
    pub(crate) fn build(self) -> Result<ProductRule, (String, String)> {
        let patterns = |field: &str, v: Vec<String>| -> Result<Vec<TextPattern>, (String, String)> {
            v.iter().map(|s| TextPattern::parse(s).map_err(|m| (field.to_string(), m))).collect()
        };
        let strength = match (self.strength, self.strength_unit) {
            (Some(bounds), unit) => {
                bounds.check().map_err(|m| ("strength".to_string(), m))?;
                if let Some(u) = &unit
                    && mass_factor(u).is_none()
                {
                    return Err((
                        "strength_unit".into(),
                        format!("\"{u}\" is not a unit that converts: use mg, microgram, gram or nanogram"),
                    ));
                }
                Some(StrengthRule { bounds, unit })
            }
            (None, Some(_)) => return Err(("strength_unit".into(), "a unit needs `strength = { … }`".into())),
            (None, None) => None,
        };
        if let Some(b) = &self.ingredients {
            b.check().map_err(|m| ("ingredients".to_string(), m))?;
        }
        if let Some(v) = self.vmp.iter().find(|v| v.is_empty() || !v.bytes().all(|c| c.is_ascii_digit())) {
            return Err(("vmp".into(), format!("\"{v}\" is not a SNOMED id (digits only)")));
        }
        let rule = ProductRule {
            vtm: patterns("vtm", self.vtm)?,
            ingredient: patterns("ingredient", self.ingredient)?,
            strength,
            form_route: patterns("form_route", self.form_route)?,
            name: patterns("name", self.name)?,
            atc: patterns("atc", self.atc)?,
            vmp: self.vmp,
            ingredients: self.ingredients,
            brand: self.brand,
        };
        if rule == ProductRule::default() {
            return Err((String::new(), "an empty rule selects every product; give at least one condition".into()));
        }
        Ok(rule)
    }
}

/// A quantity rule as a definition file writes it.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawQuantityRule {
    #[serde(default)]
    codes: Vec<String>,
    #[serde(flatten)]
    bounds: Bounds,
}

impl RawQuantityRule {
    /// Validates the rule; the error names the field within it.
    pub(crate) fn build(self) -> Result<QuantityRule, (String, String)> {
        self.bounds.check().map_err(|m| (String::new(), m))?;
        let codes = self
            .codes
            .iter()
            .map(|c| CodePattern::parse(c).map_err(|m| ("codes".to_string(), m)))
            .collect::<Result<_, _>>()?;
        Ok(QuantityRule { codes, bounds: self.bounds })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn product(vtm: &str, form_route: &str, ingredients: &[(&str, f64, &str)]) -> Product {
        Product {
            id: "1".into(),
            vmp_id: "1".into(),
            is_brand: false,
            name: format!("{vtm} product"),
            vmp_name: format!("{vtm} product"),
            vtm: Some(vtm.into()),
            form_routes: vec![form_route.into()],
            ingredients: ingredients
                .iter()
                .map(|(n, s, u)| Ingredient { name: n.to_string(), strength: Some((*s, u.to_string())), per: None })
                .collect(),
            atc: None,
            ddd: None,
            min_pack: None,
        }
    }

    fn rule(toml_text: &str) -> Result<ProductRule, (String, String)> {
        toml::from_str::<RawProductRule>(toml_text).map_err(|e| (String::new(), e.to_string()))?.build()
    }

    #[test]
    fn strength_and_form_route_by_ingredient() {
        // OpenPrescribing's high-dose fluticasone propionate: ≥ 500 micrograms as a dry powder.
        let r = rule(
            "ingredient = [\"fluticasone propionate\"]\nform_route = [\"powderinhalation.inhalation\"]\nstrength = { at_least = 500 }",
        )
        .unwrap();
        let dpi = |mcg| {
            product("Fluticasone", "powderinhalation.inhalation", &[("Fluticasone propionate", mcg, "microgram")])
        };
        assert!(r.matches(&dpi(500.0)));
        assert!(!r.matches(&dpi(250.0)));
        let mdi = product(
            "Fluticasone",
            "pressurizedinhalation.inhalation",
            &[("Fluticasone propionate", 500.0, "microgram")],
        );
        assert!(!r.matches(&mdi));
        // A combination: the strength belongs to the named ingredient, not to any ingredient.
        let combo = product(
            "Fluticasone + salmeterol",
            "powderinhalation.inhalation",
            &[("Fluticasone propionate", 250.0, "microgram"), ("Salmeterol xinafoate", 500.0, "microgram")],
        );
        assert!(!r.matches(&combo));
        assert_eq!(
            r.to_string(),
            "ingredient fluticasone propionate, strength ≥ 500, form-route powderinhalation.inhalation"
        );
    }

    #[test]
    fn units_convert_and_per_amount_divides() {
        let r = rule("ingredient = [\"omeprazole\"]\nstrength = { above = 0.01 }\nstrength_unit = \"gram\"").unwrap();
        assert!(r.matches(&product("Omeprazole", "capsulegastro-resistant.oral", &[("Omeprazole", 20.0, "mg")])));
        assert!(!r.matches(&product("Omeprazole", "capsulegastro-resistant.oral", &[("Omeprazole", 10.0, "mg")])));
        // Morphine 10 mg / 5 ml is 2 mg per ml.
        let i = Ingredient {
            name: "Morphine sulfate".into(),
            strength: Some((10.0, "mg".into())),
            per: Some((5.0, "ml".into())),
        };
        assert_eq!(i.strength_in(Some("mg")), Some(2.0));
        assert_eq!(i.strength_in(Some("microgram")), Some(2000.0));
        let unitless = Ingredient { name: "x".into(), strength: Some((1.0, "unit".into())), per: None };
        assert_eq!(unitless.strength_in(Some("mg")), None);
        assert_eq!(unitless.strength_in(None), Some(1.0));
    }

    #[test]
    fn patterns_vtm_count_and_brand() {
        let r = rule("form_route = [\"%.oral\"]\ningredients = { at_most = 1 }\nbrand = false").unwrap();
        assert!(r.matches(&product("Colecalciferol", "capsule.oral", &[("Colecalciferol", 800.0, "unit")])));
        let combo = product(
            "Calcium + colecalciferol",
            "tabletchewable.oral",
            &[("Calcium", 1.5, "gram"), ("Colecalciferol", 400.0, "unit")],
        );
        assert!(!r.matches(&combo));
        let mut brand = product("Colecalciferol", "capsule.oral", &[("Colecalciferol", 800.0, "unit")]);
        brand.is_brand = true;
        assert!(!r.matches(&brand));
        assert!(!r.matches(&product("Colecalciferol", "solutioninjection.intramuscular", &[])));
        let vtm = rule("vtm = [\"%gamolenic%\", \"ubidecarenone\"]").unwrap();
        assert!(vtm.matches(&product("Ubidecarenone", "capsule.oral", &[])));
        assert!(vtm.matches(&product("Gamolenic acid", "capsule.oral", &[])));
        assert!(!vtm.matches(&product("Ubidecarenone and more", "capsule.oral", &[])));
    }

    #[test]
    fn rules_are_checked() {
        assert_eq!(rule("").unwrap_err().1, "an empty rule selects every product; give at least one condition");
        assert_eq!(rule("strength = {}").unwrap_err().0, "strength");
        assert_eq!(rule("strength = { above = 1 }\nstrength_unit = \"ml\"").unwrap_err().0, "strength_unit");
        assert_eq!(rule("strength_unit = \"mg\"").unwrap_err().0, "strength_unit");
        assert_eq!(rule("vmp = [\"3.6E+16\"]").unwrap_err().0, "vmp");
        assert_eq!(rule("form_route = [\" \"]").unwrap_err().0, "form_route");
        assert!(rule("colour = \"red\"").unwrap_err().1.contains("colour"));
    }

    #[test]
    fn quantity_rules() {
        let q: RawQuantityRule = toml::from_str("codes = [\"0501013B0%AB\"]\nabove = 15").unwrap();
        let q = q.build().unwrap();
        assert!(q.covers("0501013B0AAABAB") && !q.covers("0501013B0AAAAAA"));
        assert!(q.bounds.hold(16.0) && !q.bounds.hold(15.0));
        assert_eq!(q.to_string(), "0501013B0%AB: quantity per item > 15");
        let bad: RawQuantityRule = toml::from_str("codes = [\"0501\"]").unwrap();
        assert!(bad.build().is_err());
    }

    proptest! {
        #[test]
        fn bounds_agree_with_comparisons(v in -1e6f64..1e6, b in -1e6f64..1e6) {
            prop_assert_eq!(Bounds { above: Some(b), ..Default::default() }.hold(v), v > b);
            prop_assert_eq!(Bounds { at_most: Some(b), ..Default::default() }.hold(v), v <= b);
            let both = Bounds { at_least: Some(b), below: Some(b + 10.0), ..Default::default() };
            prop_assert_eq!(both.hold(v), v >= b && v < b + 10.0);
        }

        #[test]
        fn text_patterns_never_panic(p in "\\PC{1,12}", t in "\\PC{0,20}") {
            if let Ok(x) = TextPattern::parse(&p) {
                let _ = x.matches(&t);
            }
        }
    }
}
