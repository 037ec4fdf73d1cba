//! BNF code patterns as measure definitions write them.
//!
//! A pattern is a code or prefix (`0501`, `0501013K0`), optionally with `%` standing for any run
//! of characters (`1001030U0%AC`: methotrexate, any product, strength code `AC`) and `_` for any
//! one character, the way OpenPrescribing's definitions and SQL `LIKE` spell them. A pattern
//! without a wildcard matches every code that starts with it; a pattern with one matches the
//! whole code, as SQL `LIKE` does (end it with `%` to match a prefix).

use std::fmt;

/// One code pattern.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CodePattern {
    text: String,
}

impl CodePattern {
    /// Parses a pattern: 2–15 characters of digits, capital letters, `%` and `_`, starting with a
    /// two-digit BNF chapter. Returns what is wrong otherwise.
    pub fn parse(s: &str) -> Result<Self, String> {
        let t = s.trim().to_ascii_uppercase();
        if t.len() < 2 || t.len() > 15 {
            return Err(format!("\"{s}\" is not a BNF code or prefix (2 to 15 characters)"));
        }
        if !t.as_bytes()[..2].iter().all(u8::is_ascii_digit) {
            return Err(format!("\"{s}\" does not start with a two-digit BNF chapter"));
        }
        if let Some(c) = t.chars().find(|c| !(c.is_ascii_alphanumeric() || *c == '%' || *c == '_')) {
            return Err(format!("\"{s}\" contains '{c}'; codes use digits and letters, with % and _ as wildcards"));
        }
        Ok(Self { text: t })
    }

    /// The pattern as written (upper case).
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether a presentation code matches.
    pub fn matches(&self, code: &str) -> bool {
        if !self.text.contains(['%', '_']) {
            return code.starts_with(&self.text);
        }
        like(self.text.as_bytes(), code.as_bytes())
    }

    /// The same pattern as a SQL `LIKE` operand, so a user can reproduce the selection.
    pub fn sql_like(&self) -> String {
        if self.text.contains(['%', '_']) { self.text.clone() } else { format!("{}%", self.text) }
    }
}

impl fmt::Display for CodePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// SQL `LIKE`: the pattern must match the whole text (`%` any run, `_` one byte). Greedy with
/// one backtrack point, so it takes time proportional to pattern × text at worst, however many
/// `%` a pattern holds.
pub(crate) fn like(p: &[u8], s: &[u8]) -> bool {
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        match p.get(pi) {
            Some(b'%') => {
                star = Some((pi, si));
                pi += 1;
            }
            Some(&c) if c == b'_' || c == s[si] => {
                pi += 1;
                si += 1;
            }
            _ => match star {
                Some((sp, ss)) => {
                    pi = sp + 1;
                    si = ss + 1;
                    star = Some((sp, ss + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == b'%')
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn prefixes_and_wildcards() {
        let p = CodePattern::parse("0501").unwrap();
        assert!(p.matches("0501013K0AAAAAA") && !p.matches("0502010A0AAAAAA"));
        let m = CodePattern::parse("1001030u0%ac").unwrap();
        assert_eq!(m.as_str(), "1001030U0%AC");
        assert!(m.matches("1001030U0AAACAC")); // generic 10 mg
        assert!(m.matches("1001030U0BCAAAC")); // a brand, strength AC
        assert!(!m.matches("1001030U0AAABAB")); // 2.5 mg
        assert!(CodePattern::parse("0301011R0__AIAP").unwrap().matches("0301011R0BEAIAP"));
        assert!(!CodePattern::parse("0301011R0__AI").unwrap().matches("0301011R0BEAIAP"));
        assert!(CodePattern::parse("01_______AA%").unwrap().matches("0103050P0AAAAAA"));
        assert!(!CodePattern::parse("01_______AA%").unwrap().matches("0103050P0BBAAAA"));
        // Anchored at the end: rosuvastatin 10 mg (strength AA) but not 5 mg (AD).
        let rosu = CodePattern::parse("0212000AA%AA").unwrap();
        assert!(rosu.matches("0212000AAAAAAAA") && !rosu.matches("0212000AAAAADAD"));
        assert_eq!(m.sql_like(), "1001030U0%AC");
        assert_eq!(p.sql_like(), "0501%");
        assert!(CodePattern::parse("5").is_err());
        assert!(CodePattern::parse("AB01").is_err());
        assert!(CodePattern::parse("0501-1").is_err());
    }

    proptest! {
        #[test]
        fn a_code_matches_all_its_prefixes(code in "[0-9]{2}[0-9A-Z]{13}", cut in 3usize..15) {
            let p = CodePattern::parse(&code[..cut]).unwrap();
            prop_assert!(p.matches(&code));
            let wild = format!("{}%{}", &code[..2], &code[cut..]);
            prop_assert!(CodePattern::parse(&wild).unwrap().matches(&code));
        }

        #[test]
        fn like_agrees_with_a_plain_recursive_reading(p in "[ab%_]{0,8}", s in "[ab]{0,10}") {
            fn slow(p: &[u8], s: &[u8]) -> bool {
                match p.split_first() {
                    None => s.is_empty(),
                    Some((b'%', rest)) => (0..=s.len()).any(|i| slow(rest, &s[i..])),
                    Some((b'_', rest)) => !s.is_empty() && slow(rest, &s[1..]),
                    Some((c, rest)) => s.first() == Some(c) && slow(rest, &s[1..]),
                }
            }
            prop_assert_eq!(like(p.as_bytes(), s.as_bytes()), slow(p.as_bytes(), s.as_bytes()));
        }

        #[test]
        fn parse_never_panics(s in "\\PC{0,20}") {
            let _ = CodePattern::parse(&s);
        }
    }
}
