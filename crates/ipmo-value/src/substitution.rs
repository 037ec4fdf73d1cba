//! Substitution sets: groups of presentations (BNF codes) that are generically equivalent, so a
//! practice paying more per unit than its peers for one of them could be paying the lowest price
//! of the set. Built from dm+d as OpenPrescribing has done since its 2025 rewrite: pairs from four
//! rules, merged into classes wherever pairs overlap.
//!
//! 1. A generic VMP with another generic VMP whose signature is the same: the same ingredients
//!    (the basis-of-strength substance where dm+d gives one) at the same strength per the same
//!    amount, the same route and prescribing status, and preservative-free, modified-release,
//!    unit-dose (outside the oral route), inhaler-device (inhalation) and formulation-family
//!    (cutaneous) refinements, so that a 10 mg/5 ml injection is not offered for 2 mg/1 ml, a
//!    pressurised inhaler for a dry-powder one, or shower gel for skin gel.
//! 2. A brand (AMP) with its generic (VMP) when their BNF codes differ.
//! 3. Two brands of the same generic.
//! 4. Blood-glucose test strips, all in one set with a synthetic generic code.
//!
//! Only products that are available and suitable for prescribing in primary care take part, and
//! every product left out is reported with the reason.

use std::collections::{BTreeMap, BTreeSet};

/// The synthetic generic code that joins every blood-glucose test strip into one set.
pub const STRIPS_GENERIC: &str = "0601060D0AAAAA0";
/// Its name.
pub const STRIPS_NAME: &str = "Blood glucose biosensor testing strips";

/// One active ingredient of a generic product, as the signature reads it.
#[derive(Clone, Debug, PartialEq)]
pub struct Strength {
    /// The basis-of-strength substance when dm+d gives one, else the ingredient.
    pub substance: String,
    /// Strength numerator and its unit; None when dm+d gives none (the product is then left out).
    pub numerator: Option<(f64, String)>,
    /// Strength denominator and its unit, when the strength is per an amount.
    pub denominator: Option<(f64, String)>,
}

/// A generic product (dm+d VMP) with what its signature needs.
#[derive(Clone, Debug, PartialEq)]
pub struct Generic {
    /// SNOMED id.
    pub id: String,
    /// Its BNF code ("" when it has none).
    pub bnf_code: String,
    /// dm+d name.
    pub name: String,
    /// Not flagged as non-available.
    pub available: bool,
    /// Prescribing status 1: valid as a prescribable product in primary care.
    pub prescribable: bool,
    /// Flagged preservative-free, or so named.
    pub preservative_free: bool,
    /// Route (`oral`, `inhalation`, `cutaneous`, `intravenous`, …).
    pub route: String,
    /// Ontology form-route (`tablet.oral`, `pressurizedinhalation.inhalation`, `gel.cutaneous`).
    pub form_route: String,
    /// Unit dose form size and unit (`5`, `ml`), when dm+d gives one.
    pub unit_dose: Option<(f64, String)>,
    /// Active ingredients.
    pub ingredients: Vec<Strength>,
}

/// A branded product (dm+d AMP).
#[derive(Clone, Debug, PartialEq)]
pub struct Brand {
    /// SNOMED id.
    pub id: String,
    /// Its generic's SNOMED id.
    pub generic_id: String,
    /// Its BNF code ("" when it has none).
    pub bnf_code: String,
    /// dm+d name.
    pub name: String,
    /// Available (no restriction on its availability).
    pub available: bool,
}

/// A set of presentations a prescriber could swap for one another.
#[derive(Clone, Debug, PartialEq)]
pub struct SubstitutionSet {
    /// The set's id: its lexically smallest generic (`AA`) code, else its smallest code.
    pub id: String,
    /// The name of the product behind the id.
    pub name: String,
    /// Every BNF code in the set, sorted.
    pub codes: Vec<String>,
    /// The forms in the set when there is more than one ("Capsule / Tablet"), else None.
    pub formulation_swap: Option<String>,
    /// The generic signatures that joined members by rule 1 (empty when only brands joined them).
    pub signatures: Vec<String>,
}

/// A product that takes no part, and why.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct LeftOut {
    /// SNOMED id.
    pub id: String,
    /// BNF code ("" when none).
    pub bnf_code: String,
    /// Why, in words.
    pub reason: &'static str,
}

/// The sets built from one dm+d release, with the products left out.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Sets {
    /// The sets, by id.
    pub sets: Vec<SubstitutionSet>,
    /// Products that take no part, and why.
    pub left_out: Vec<LeftOut>,
}

/// Whether a BNF code is a generic one (characters 10–11 are `AA`).
pub fn is_generic_code(code: &str) -> bool {
    code.get(9..11) == Some("AA")
}

/// Whether a code is a blood-glucose test strip (`0601060D0…A0`).
fn is_strip(code: &str) -> bool {
    code.len() == 15 && code.starts_with("0601060D0") && code.ends_with("A0")
}

/// Why a generic cannot take part by rule 1, if it cannot.
fn generic_unfit(g: &Generic) -> Option<&'static str> {
    if g.bnf_code.is_empty() {
        Some("no BNF code")
    } else if !is_generic_code(&g.bnf_code) {
        Some("its BNF code is not a generic (AA) code")
    } else if !g.available {
        Some("not available")
    } else if !g.prescribable {
        Some("not suitable for prescribing in primary care")
    } else if g.ingredients.is_empty() || g.ingredients.iter().any(|i| i.numerator.is_none()) {
        Some("an ingredient has no strength")
    } else {
        None
    }
}

fn amount(a: &Option<(f64, String)>) -> String {
    a.as_ref().map_or(String::new(), |(v, u)| format!("{v} {}", u.to_lowercase()))
}

/// The form part of a form-route (`tablet.oral` → `tablet`).
fn form_of(form_route: &str) -> &str {
    form_route.split('.').next().unwrap_or(form_route)
}

/// The rule-1 signature of a generic: equal signatures mean the products can be swapped.
pub fn signature(g: &Generic) -> String {
    let mut parts: Vec<String> = g
        .ingredients
        .iter()
        .map(|i| format!("{}:{}/{}", i.substance.to_lowercase(), amount(&i.numerator), amount(&i.denominator)))
        .collect();
    parts.sort();
    let route = g.route.to_lowercase();
    let form_route = g.form_route.to_lowercase();
    let mut sig = format!("{} | route {route} | prescribable", parts.join(" + "));
    if g.preservative_free || g.name.to_lowercase().contains("preservative free") {
        sig.push_str(" | pf");
    }
    if form_route.contains("modified") {
        sig.push_str(" | MR");
    }
    if route != "oral" {
        sig.push_str(&format!(" | unit dose {}", amount(&g.unit_dose)));
    }
    if route == "inhalation" {
        sig.push_str(&format!(" | device {}", form_of(&form_route)));
    }
    if route == "cutaneous" {
        sig.push_str(&format!(" | formulation {}", form_of(&form_route)));
    }
    sig
}

/// Union-find over codes.
struct Classes {
    parent: BTreeMap<String, String>,
}

impl Classes {
    fn root(&mut self, code: &str) -> String {
        let mut c = code.to_string();
        loop {
            let p = self.parent.entry(c.clone()).or_insert_with(|| c.clone()).clone();
            if p == c {
                return c;
            }
            c = p;
        }
    }

    fn join(&mut self, a: &str, b: &str) {
        let (ra, rb) = (self.root(a), self.root(b));
        if ra != rb {
            let (keep, child) = if ra < rb { (ra, rb) } else { (rb, ra) };
            self.parent.insert(child, keep);
        }
    }
}

/// Builds the substitution sets of one dm+d release. `prescribed` limits the sets to codes that
/// appear in prescribing (a set keeps only its prescribed codes, and is dropped when fewer than
/// one remains); `None` keeps every code.
pub fn build(generics: &[Generic], brands: &[Brand], prescribed: Option<&BTreeSet<String>>) -> Sets {
    let mut classes = Classes { parent: BTreeMap::new() };
    let mut left_out = Vec::new();
    let mut names: BTreeMap<String, String> = BTreeMap::new();
    let mut forms: BTreeMap<String, String> = BTreeMap::new();
    let mut signature_of: BTreeMap<String, String> = BTreeMap::new();
    // Rule 1: generics by signature.
    let mut by_signature: BTreeMap<String, Vec<&Generic>> = BTreeMap::new();
    for g in generics {
        match generic_unfit(g) {
            Some(reason) => left_out.push(LeftOut { id: g.id.clone(), bnf_code: g.bnf_code.clone(), reason }),
            None => by_signature.entry(signature(g)).or_default().push(g),
        }
    }
    for (sig, list) in &by_signature {
        for g in list {
            names.entry(g.bnf_code.clone()).or_insert_with(|| g.name.clone());
            forms.entry(g.bnf_code.clone()).or_insert_with(|| form_of(&g.form_route).to_string());
            classes.root(&g.bnf_code);
            if list.len() > 1 {
                signature_of.insert(g.bnf_code.clone(), sig.clone());
            }
        }
        for pair in list.windows(2) {
            if pair[0].bnf_code != pair[1].bnf_code {
                classes.join(&pair[0].bnf_code, &pair[1].bnf_code);
            }
        }
    }
    // Rules 2 and 3: a brand with its generic, and so with its sibling brands; rule 4: strips.
    let generic_by_id: BTreeMap<&str, &Generic> = generics.iter().map(|g| (g.id.as_str(), g)).collect();
    for b in brands {
        let fits_generic = generic_by_id.get(b.generic_id.as_str()).filter(|g| g.available && g.prescribable);
        let reason = if b.bnf_code.is_empty() {
            Some("no BNF code")
        } else if !b.available {
            Some("not available")
        } else if is_strip(&b.bnf_code) {
            None
        } else if fits_generic.is_none() {
            Some("its generic is not available or not suitable for prescribing in primary care")
        } else if fits_generic.is_some_and(|g| g.bnf_code == b.bnf_code || g.bnf_code.is_empty()) {
            Some("it shares its generic's BNF code")
        } else {
            None
        };
        if let Some(reason) = reason {
            left_out.push(LeftOut { id: b.id.clone(), bnf_code: b.bnf_code.clone(), reason });
            continue;
        }
        names.entry(b.bnf_code.clone()).or_insert_with(|| b.name.clone());
        if is_strip(&b.bnf_code) {
            names.entry(STRIPS_GENERIC.to_string()).or_insert_with(|| STRIPS_NAME.to_string());
            classes.join(&b.bnf_code, STRIPS_GENERIC);
            continue;
        }
        let Some(g) = fits_generic else { continue };
        names.entry(g.bnf_code.clone()).or_insert_with(|| g.name.clone());
        forms.entry(g.bnf_code.clone()).or_insert_with(|| form_of(&g.form_route).to_string());
        forms.entry(b.bnf_code.clone()).or_insert_with(|| form_of(&g.form_route).to_string());
        classes.join(&b.bnf_code, &g.bnf_code);
    }
    // Classes, limited to prescribed codes.
    let codes: Vec<String> = classes.parent.keys().cloned().collect();
    let mut members: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for c in codes {
        if prescribed.is_none_or(|p| p.contains(&c)) {
            let r = classes.root(&c);
            members.entry(r).or_default().push(c);
        }
    }
    // The strips keep the synthetic generic's id and name when it is not prescribed itself, so
    // the set is not named after whichever brand sorts first.
    let strips_root = classes.parent.contains_key(STRIPS_GENERIC).then(|| classes.root(STRIPS_GENERIC));
    let mut sets = Vec::new();
    for (root, mut list) in members {
        list.sort();
        // A set is a choice between presentations; a lone code has none unless rule 1 found it
        // alone (a single generic whose practices' prices still vary, kept as OpenPrescribing does).
        let id = if strips_root.as_ref() == Some(&root) {
            STRIPS_GENERIC.to_string()
        } else {
            list.iter().find(|c| is_generic_code(c)).unwrap_or(&list[0]).clone()
        };
        let distinct_forms: BTreeSet<String> =
            list.iter().filter_map(|c| forms.get(c)).filter(|f| !f.is_empty()).map(|f| capitalised(f)).collect();
        let signatures: BTreeSet<String> = list.iter().filter_map(|c| signature_of.get(c).cloned()).collect();
        sets.push(SubstitutionSet {
            name: names.get(&id).cloned().unwrap_or_default(),
            formulation_swap: (distinct_forms.len() > 1)
                .then(|| distinct_forms.into_iter().collect::<Vec<_>>().join(" / ")),
            signatures: signatures.into_iter().collect(),
            codes: list,
            id,
        });
    }
    sets.sort_by(|a, b| a.id.cmp(&b.id));
    left_out.sort();
    Sets { sets, left_out }
}

/// A dm+d form (the part of a form-route before the dot) as a reader says it: dm+d runs a
/// qualifier into its base form (`tabletgastro-resistant`, `capsulemodified-release`), which
/// reads as "Gastro-resistant tablet".
fn capitalised(form: &str) -> String {
    const BASES: [&str; 8] = ["tablet", "capsule", "granules", "powder", "solution", "suspension", "cream", "gel"];
    let (qualifier, base) = BASES
        .iter()
        .find_map(|b| form.strip_prefix(b).filter(|rest| !rest.is_empty()).map(|rest| (rest, *b)))
        .map_or((form, ""), |(rest, b)| (rest, b));
    let words = if base.is_empty() { qualifier.to_string() } else { format!("{qualifier} {base}") };
    let mut c = words.chars();
    c.next().map(|f| f.to_uppercase().collect::<String>() + c.as_str()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generic(id: &str, code: &str, form_route: &str, mg: f64) -> Generic {
        Generic {
            id: id.into(),
            bnf_code: code.into(),
            name: format!("Drug {mg}mg {}", form_of(form_route)),
            available: true,
            prescribable: true,
            preservative_free: false,
            route: form_route.split('.').nth(1).unwrap_or("oral").into(),
            form_route: form_route.into(),
            unit_dose: None,
            ingredients: vec![Strength {
                substance: "Drug".into(),
                numerator: Some((mg, "mg".into())),
                denominator: None,
            }],
        }
    }

    fn brand(id: &str, generic_id: &str, code: &str) -> Brand {
        Brand {
            id: id.into(),
            generic_id: generic_id.into(),
            bnf_code: code.into(),
            name: format!("Brand {id}"),
            available: true,
        }
    }

    #[test]
    fn tablets_and_capsules_of_one_strength_are_one_set_with_their_swap_named() {
        let g = [
            generic("1", "0212000B0AAABAB", "tablet.oral", 10.0),
            generic("2", "0212000B0AAAEAE", "capsule.oral", 10.0),
            generic("3", "0212000B0AAACAC", "tablet.oral", 20.0),
        ];
        let s = build(&g, &[], None);
        assert_eq!(s.sets.len(), 2, "{:#?}", s.sets);
        let ten = &s.sets[0];
        assert_eq!(ten.id, "0212000B0AAABAB");
        assert_eq!(ten.codes, ["0212000B0AAABAB", "0212000B0AAAEAE"]);
        assert_eq!(ten.formulation_swap.as_deref(), Some("Capsule / Tablet"));
        assert_eq!(ten.signatures.len(), 1);
        let twenty = &s.sets[1];
        assert_eq!(twenty.codes, ["0212000B0AAACAC"], "a lone generic is its own set");
        assert_eq!(twenty.formulation_swap, None);
    }

    #[test]
    fn refinements_keep_apart_what_cannot_be_swapped() {
        let mut pmdi = generic("1", "0302000C0AAAAAA", "pressurizedinhalation.inhalation", 0.1);
        let mut dpi = generic("2", "0302000C0AABBBB", "powderinhalation.inhalation", 0.1);
        pmdi.unit_dose = Some((1.0, "dose".into()));
        dpi.unit_dose = Some((1.0, "dose".into()));
        let mr = generic("3", "0407010H0AAACAC", "modifiedreleasetablet.oral", 10.0);
        let plain = generic("4", "0407010H0AAADAD", "tablet.oral", 10.0);
        let mut inj10 = generic("5", "0407020A0AAAAAA", "solutioninjection.intravenous", 10.0);
        let mut inj2 = generic("6", "0407020A0AAABAB", "solutioninjection.intravenous", 10.0);
        inj10.unit_dose = Some((5.0, "ml".into()));
        inj2.unit_dose = Some((1.0, "ml".into()));
        let s = build(&[pmdi, dpi, mr, plain, inj10, inj2], &[], None);
        assert!(s.sets.iter().all(|set| set.codes.len() == 1), "{:#?}", s.sets);
        assert_eq!(s.sets.len(), 6);
    }

    #[test]
    fn brands_join_their_generic_and_each_other_and_unfit_products_are_reported() {
        let mut gone = generic("9", "0212000C0AAAAAA", "tablet.oral", 5.0);
        gone.available = false;
        let g = [generic("1", "0212000B0AAABAB", "tablet.oral", 10.0), gone];
        let b = [
            brand("11", "1", "0212000B0BBAAAB"),
            brand("12", "1", "0212000B0BCAAAB"),
            brand("13", "1", "0212000B0AAABAB"),
            Brand { available: false, ..brand("14", "1", "0212000B0BDAAAB") },
            brand("19", "9", "0212000C0BBAAAA"),
        ];
        let s = build(&g, &b, None);
        assert_eq!(s.sets.len(), 1, "{:#?}", s.sets);
        assert_eq!(s.sets[0].codes, ["0212000B0AAABAB", "0212000B0BBAAAB", "0212000B0BCAAAB"]);
        assert_eq!(s.sets[0].id, "0212000B0AAABAB", "the generic code names the set");
        let reasons: Vec<(&str, &str)> = s.left_out.iter().map(|l| (l.id.as_str(), l.reason)).collect();
        assert_eq!(
            reasons,
            [
                ("13", "it shares its generic's BNF code"),
                ("14", "not available"),
                ("19", "its generic is not available or not suitable for prescribing in primary care"),
                ("9", "not available"),
            ]
        );
    }

    #[test]
    fn every_test_strip_is_in_one_set_under_the_synthetic_generic() {
        let b = [
            brand("1", "x", "0601060D0BBAAA0"),
            brand("2", "y", "0601060D0BCAAA0"),
            brand("3", "z", "0601060D0BDAAA0"),
        ];
        let s = build(&[], &b, None);
        assert_eq!(s.sets.len(), 1);
        assert_eq!(s.sets[0].id, STRIPS_GENERIC);
        assert_eq!(s.sets[0].name, STRIPS_NAME);
        assert_eq!(s.sets[0].codes.len(), 4);
        // Limited to what is prescribed, the set keeps its id and name.
        let prescribed: BTreeSet<String> = ["0601060D0BCAAA0", "0601060D0BDAAA0"].map(String::from).into();
        let s = build(&[], &b, Some(&prescribed));
        assert_eq!((s.sets[0].id.as_str(), s.sets[0].name.as_str()), (STRIPS_GENERIC, STRIPS_NAME));
        assert_eq!(s.sets[0].codes.len(), 2);
    }

    #[test]
    fn forms_read_as_words() {
        assert_eq!(capitalised("tablet"), "Tablet");
        assert_eq!(capitalised("tabletgastro-resistant"), "Gastro-resistant tablet");
        assert_eq!(capitalised("capsulemodified-release"), "Modified-release capsule");
        assert_eq!(capitalised("oralsolution"), "Oralsolution", "no known base: left as dm+d has it");
    }

    #[test]
    fn sets_keep_only_prescribed_codes() {
        let g = [
            generic("1", "0212000B0AAABAB", "tablet.oral", 10.0),
            generic("2", "0212000B0AAAEAE", "capsule.oral", 10.0),
        ];
        let prescribed: BTreeSet<String> = ["0212000B0AAAEAE".to_string()].into();
        let s = build(&g, &[], Some(&prescribed));
        assert_eq!(s.sets.len(), 1);
        assert_eq!(s.sets[0].codes, ["0212000B0AAAEAE"]);
        assert_eq!(s.sets[0].formulation_swap, None);
    }
}
