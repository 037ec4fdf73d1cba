//! One reading of an analysis request, for the analyse page and `/api/v1/analyse` alike: BNF
//! code prefixes or drug names for the numerator (`num`, less `exclude`) and the denominator
//! (`den`, or list size), what is summed (`value`), the level and the months. Each part a user
//! typed is kept with the BNF entries it stood for, so the page can say what it understood.

use crate::WebError;
use crate::params::{Params, index_error, parse_level, parse_value};
use ipmo_index::{Analysis, CodeSet, Denominator};
use ipmo_release::Release;

/// Most drug names one field of an analysis may hold.
const MAX_NAMES: usize = 20;

/// What one comma-separated part of a code field meant.
pub(crate) struct Term {
    /// As typed.
    pub typed: String,
    /// The BNF entries it stands for (code, name).
    pub entries: Vec<(String, String)>,
}

/// Reads a field of BNF code prefixes and drug names: a part that starts with two digits is a
/// code, anything else a name looked up in the BNF. Returns the codes, comma-separated, and what
/// each part meant.
fn terms(r: &Release, field: &str, parameter: &str) -> Result<(String, Vec<Term>), WebError> {
    let is_code = |part: &str| part.len() >= 2 && part.as_bytes()[..2].iter().all(u8::is_ascii_digit);
    let parts: Vec<&str> = field.split(',').map(str::trim).filter(|p| !p.is_empty()).collect();
    // Each name is a search of every BNF name, done on the request's own thread: bounded.
    if parts.iter().filter(|p| !is_code(p)).count() > MAX_NAMES {
        return Err(WebError::BadParameter(
            parameter.into(),
            format!("at most {MAX_NAMES} drug names; give BNF codes for more"),
        ));
    }
    let mut codes = Vec::new();
    let mut out = Vec::new();
    for part in parts {
        let is_code = is_code(part);
        let entries: Vec<(String, String)> = if is_code {
            let code = part.to_ascii_uppercase();
            let name = r.bnf_name(&code).unwrap_or("(not in the BNF names loaded)").to_string();
            vec![(code, name)]
        } else {
            r.bnf_for_name(part)
                .map_err(|m| WebError::BadParameter(parameter.into(), m))?
                .into_iter()
                .map(|(c, n)| (c.to_string(), n.to_string()))
                .collect()
        };
        codes.extend(entries.iter().map(|e| e.0.clone()));
        out.push(Term { typed: part.to_string(), entries });
    }
    Ok((codes.join(","), out))
}

/// An analysis as asked for: None when no numerator was given (the page then shows its form
/// alone), and what each typed part meant, by side.
pub(crate) struct AnalyseRequest {
    /// The analysis to run.
    pub analysis: Option<Analysis>,
    /// ("Numerator" | "Left out" | "Denominator", the parts typed for it).
    pub meaning: Vec<(&'static str, Vec<Term>)>,
}

impl AnalyseRequest {
    /// Reads `num`, `exclude`, `den`, `value`, `level`, `from` and `to`; each wrong one is a 400
    /// that names it. The organisation (`org`) is left to the caller.
    pub(crate) fn read(r: &Release, p: &Params) -> Result<Self, WebError> {
        let (from, to) = (p.month("from")?, p.month("to")?);
        let level = parse_level(p.get("level").unwrap_or("icb"))?;
        let mut meaning = Vec::new();
        let Some(num) = p.get("num") else { return Ok(Self { analysis: None, meaning }) };
        let (num_codes, num_terms) = terms(r, num, "num")?;
        let (exclude_codes, exclude_terms) = terms(r, p.get("exclude").unwrap_or(""), "exclude")?;
        meaning.push(("Numerator", num_terms));
        if !exclude_terms.is_empty() {
            meaning.push(("Left out", exclude_terms));
        }
        let numerator = CodeSet::parse(&num_codes, &exclude_codes, "num").map_err(index_error("num"))?;
        let denominator = match p.get("den").unwrap_or("list-size") {
            "list-size" | "list_size" => Denominator::ListSize,
            text => {
                let (den_codes, den_terms) = terms(r, text, "den")?;
                meaning.push(("Denominator", den_terms));
                Denominator::Codes(CodeSet::parse(&den_codes, "", "den").map_err(index_error("den"))?)
            }
        };
        let value = parse_value(p.get("value").unwrap_or("items"))?;
        Ok(Self { analysis: Some(Analysis { numerator, denominator, value, level, org: None, from, to }), meaning })
    }
}
