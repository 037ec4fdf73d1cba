//! ODS organisation codes and BNF codes.

use std::fmt;

/// Why a code was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodeError {
    /// Not an ODS code.
    #[error("\"{0}\" is not an ODS code (expected 3 to 9 letters and digits)")]
    Ods(String),
    /// Not a BNF code.
    #[error(
        "\"{0}\" is not a BNF code (expected 15 characters, or 11 for appliances in chapters 20-23, or a 2-15 character prefix)"
    )]
    Bnf(String),
}

/// An NHS Organisation Data Service code: the only key IPMO joins organisations on, because names
/// are truncated and relabelled between releases while codes are not.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OdsCode(String);

impl OdsCode {
    /// Validates and upper-cases a code (`a81001` and ` A81001 ` are both `A81001`).
    pub fn parse(s: &str) -> Result<Self, CodeError> {
        let t = s.trim();
        if (3..=9).contains(&t.len()) && t.bytes().all(|c| c.is_ascii_alphanumeric()) {
            Ok(Self(t.to_ascii_uppercase()))
        } else {
            Err(CodeError::Ods(s.to_string()))
        }
    }

    /// The code as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for OdsCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Practice codes ending `998` are NHSBSA's pseudo-practices for prescriptions it could not
/// attribute; they are kept (their money is real) but measures must leave them out.
pub fn is_unidentified_practice(code: &str) -> bool {
    code.ends_with("998") || code == "-"
}

/// A BNF code: a full presentation (15 characters; 11 for appliances in chapters 20–23) or a
/// prefix of one (chapter `05`, section `0501`, chemical `0501013B0`, …).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BnfCode(String);

impl BnfCode {
    /// Validates a presentation code as found in prescribing data.
    pub fn parse_presentation(s: &str) -> Result<Self, CodeError> {
        let t = s.trim();
        let alnum = t.bytes().all(|c| c.is_ascii_alphanumeric());
        let chapter_digits = t.len() >= 2 && t.as_bytes()[..2].iter().all(u8::is_ascii_digit);
        let ok = alnum && chapter_digits && (t.len() == 15 || (t.len() == 11 && Self::is_appliance_chapter(&t[..2])));
        if ok { Ok(Self(t.to_ascii_uppercase())) } else { Err(CodeError::Bnf(s.to_string())) }
    }

    /// Validates any level of the hierarchy (2 to 15 characters).
    pub fn parse_prefix(s: &str) -> Result<Self, CodeError> {
        let t = s.trim();
        let ok = (2..=15).contains(&t.len())
            && t.bytes().all(|c| c.is_ascii_alphanumeric())
            && t.as_bytes()[..2].iter().all(u8::is_ascii_digit);
        if ok { Ok(Self(t.to_ascii_uppercase())) } else { Err(CodeError::Bnf(s.to_string())) }
    }

    fn is_appliance_chapter(chapter: &str) -> bool {
        matches!(chapter, "20" | "21" | "22" | "23")
    }

    /// The code as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The two-digit BNF chapter.
    pub fn chapter(&self) -> &str {
        &self.0[..2]
    }
}

impl fmt::Display for BnfCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ods() {
        assert_eq!(OdsCode::parse(" l84073 ").unwrap().as_str(), "L84073");
        assert!(OdsCode::parse("A3A8R").is_ok());
        assert!(OdsCode::parse("QE1").is_ok());
        assert!(OdsCode::parse("L8-073").is_err());
        assert!(OdsCode::parse("").is_err());
        assert!(is_unidentified_practice("Q58998"));
        assert!(!is_unidentified_practice("L84073"));
    }

    #[test]
    fn bnf() {
        assert!(BnfCode::parse_presentation("0105010B0BIAAAS").is_ok());
        assert!(BnfCode::parse_presentation("21480000061").is_ok());
        assert!(BnfCode::parse_presentation("01050100061").is_err());
        assert!(BnfCode::parse_presentation("0105010B0BIAAA").is_err());
        assert!(BnfCode::parse_presentation("0105010B0BIAA-S").is_err());
        assert_eq!(BnfCode::parse_prefix("0501").unwrap().chapter(), "05");
        assert!(BnfCode::parse_prefix("5").is_err());
    }
}
