//! Calendar months, the unit of every prescribing partition.

use chrono::{Datelike, NaiveDate};
use std::fmt;
use std::str::FromStr;

/// A calendar month. Prescribing data is published per month and every partition, list size and
/// measure value is keyed by one, so it is a type of its own rather than a date with a day.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct YearMonth {
    year: u16,
    month: u8,
}

/// Why a month could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MonthError {
    /// The text is not any of the month spellings NHS files use.
    #[error("\"{0}\" is not a month (expected YYYYMM, YYYY_MM or YYYY-MM)")]
    Unrecognised(String),
    /// The month number is not 1–12 or the year is implausible.
    #[error("\"{0}\" is not a valid month (month must be 01–12 and year 1990–2100)")]
    OutOfRange(String),
}

impl YearMonth {
    /// Builds a month, rejecting month numbers outside 1–12 and years outside 1990–2100 (no NHS
    /// prescribing data exists outside that range, so such a value is a typo).
    pub fn new(year: u16, month: u8) -> Option<Self> {
        ((1..=12).contains(&month) && (1990..=2100).contains(&year)).then_some(Self { year, month })
    }

    /// The year.
    pub fn year(self) -> u16 {
        self.year
    }

    /// The month number, 1–12.
    pub fn month(self) -> u8 {
        self.month
    }

    /// The first day of the month: the `month` column of every warehouse table holds this date.
    pub fn first_day(self) -> NaiveDate {
        NaiveDate::from_ymd_opt(i32::from(self.year), u32::from(self.month), 1)
            .expect("YearMonth invariants guarantee a valid date")
    }

    /// Days since 1970-01-01 of the first day, which is how Arrow stores a `DATE`.
    pub fn days_since_epoch(self) -> i32 {
        let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid date");
        (self.first_day() - epoch).num_days() as i32
    }

    /// The month containing a date.
    pub fn of_date(date: NaiveDate) -> Self {
        Self { year: date.year() as u16, month: date.month() as u8 }
    }

    /// The month after this one.
    pub fn next(self) -> Self {
        if self.month == 12 {
            Self { year: self.year + 1, month: 1 }
        } else {
            Self { year: self.year, month: self.month + 1 }
        }
    }

    /// The month `n` months after this one.
    pub fn plus(self, n: u32) -> Self {
        let idx = u32::from(self.year) * 12 + u32::from(self.month) - 1 + n;
        Self { year: (idx / 12) as u16, month: (idx % 12 + 1) as u8 }
    }

    /// The month `n` months before this one (saturating at year 0).
    pub fn minus(self, n: u32) -> Self {
        let idx = (u32::from(self.year) * 12 + u32::from(self.month) - 1).saturating_sub(n);
        Self { year: (idx / 12) as u16, month: (idx % 12 + 1) as u8 }
    }

    /// Months from `self` to `later` (negative when `later` is earlier).
    pub fn months_to(self, later: Self) -> i32 {
        let idx = |m: Self| i32::from(m.year) * 12 + i32::from(m.month);
        idx(later) - idx(self)
    }

    /// Compact form `YYYYMM`, as the EPD's `YEAR_MONTH` column writes it.
    pub fn compact(self) -> String {
        format!("{:04}{:02}", self.year, self.month)
    }

    /// Finds the month a file name claims to hold: a run of exactly six digits `YYYYMM`, or
    /// `YYYY_MM` / `YYYY-MM`. Longer digit runs (download timestamps such as `20171115`) are
    /// ignored, so `20171115_1510735567868_Detailed_Prescribing_Information.csv` claims nothing.
    pub fn from_file_name(name: &str) -> Option<Self> {
        let b = name.as_bytes();
        let mut i = 0;
        while i < b.len() {
            if !b[i].is_ascii_digit() {
                i += 1;
                continue;
            }
            let start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            let run = &name[start..i];
            if run.len() == 6 {
                if let Ok(m) = run.parse::<Self>() {
                    return Some(m);
                }
            } else if run.len() == 4 && i + 3 <= b.len() && matches!(b[i], b'_' | b'-') {
                let two = &b[i + 1..i + 3];
                let after_is_digit = b.get(i + 3).is_some_and(u8::is_ascii_digit);
                if two.iter().all(u8::is_ascii_digit)
                    && !after_is_digit
                    && let Ok(m) = name[start..i + 3].parse::<Self>()
                {
                    return Some(m);
                }
            }
        }
        None
    }
}

/// Months travel as `"YYYY-MM"` in JSON, the same text `Display` writes and `FromStr` reads.
impl serde::Serialize for YearMonth {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for YearMonth {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for YearMonth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

impl FromStr for YearMonth {
    type Err = MonthError;

    /// Accepts `YYYYMM`, `YYYY_MM`, `YYYY-MM`, `YYYY-MM-DD` and `YYYYMMDD` (day ignored), with
    /// surrounding spaces, because EPD, PDPI and OpenPrescribing files use all of these.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        let digits: String = t.chars().filter(|c| c.is_ascii_digit()).collect();
        let shape_ok = match t.len() {
            6 | 8 => digits.len() == t.len(),
            7 => digits.len() == 6 && matches!(t.as_bytes()[4], b'_' | b'-' | b'/'),
            10 => digits.len() == 8 && matches!(t.as_bytes()[4], b'-' | b'/') && t.as_bytes()[7] == t.as_bytes()[4],
            _ => false,
        };
        if !shape_ok {
            return Err(MonthError::Unrecognised(s.to_string()));
        }
        let year: u16 = digits[0..4].parse().map_err(|_| MonthError::Unrecognised(s.to_string()))?;
        let month: u8 = digits[4..6].parse().map_err(|_| MonthError::Unrecognised(s.to_string()))?;
        Self::new(year, month).ok_or_else(|| MonthError::OutOfRange(s.to_string()))
    }
}

/// Reads the extract dates NHS Digital and HSCIC files carry: `01SEP2017`, `01Oct2025`,
/// `01-Sep-20`, `01-Apr-17`, `01/04/11`, `2017-09-01` and `20170901`.
pub fn parse_extract_date(s: &str) -> Option<NaiveDate> {
    // chrono wants month names in title case; NHS files also write `01SEP2017`.
    let mut t = String::with_capacity(s.len());
    let mut prev_alpha = false;
    for c in s.trim().chars() {
        let alpha = c.is_ascii_alphabetic();
        t.push(if alpha && prev_alpha { c.to_ascii_lowercase() } else { c.to_ascii_uppercase() });
        prev_alpha = alpha;
    }
    for fmt in ["%d%b%Y", "%d-%b-%y", "%d-%b-%Y", "%d/%m/%y", "%d/%m/%Y", "%Y-%m-%d", "%Y%m%d"] {
        if let Ok(d) = NaiveDate::parse_from_str(&t, fmt)
            && (1990..=2100).contains(&d.year())
        {
            return Some(d);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_spelling() {
        for s in ["201709", "2017_09", "2017-09", "2017-09-01", "20170901", " 201709 "] {
            assert_eq!(s.parse::<YearMonth>().unwrap().to_string(), "2017-09", "{s}");
        }
        assert!("201713".parse::<YearMonth>().is_err());
        assert!("2017".parse::<YearMonth>().is_err());
        assert!("abcdef".parse::<YearMonth>().is_err());
    }

    #[test]
    fn file_names() {
        assert_eq!(YearMonth::from_file_name("epd_201709.csv").unwrap().to_string(), "2017-09");
        assert_eq!(YearMonth::from_file_name("dpi_201709_Detailed.csv").unwrap().to_string(), "2017-09");
        assert_eq!(YearMonth::from_file_name("T201304PDPI+BNFT.CSV").unwrap().to_string(), "2013-04");
        assert_eq!(YearMonth::from_file_name("list_2016_07.csv").unwrap().to_string(), "2016-07");
        assert_eq!(YearMonth::from_file_name("20171115_1510735567868_Detailed_Prescribing_Information.csv"), None);
        assert_eq!(YearMonth::from_file_name("epd.csv"), None);
    }

    #[test]
    fn extract_dates() {
        let d = |s| parse_extract_date(s).map(|d| d.to_string());
        assert_eq!(d("01SEP2017").as_deref(), Some("2017-09-01"));
        assert_eq!(d("01Oct2025").as_deref(), Some("2025-10-01"));
        assert_eq!(d("01Jan2022").as_deref(), Some("2022-01-01"));
        assert_eq!(d("01-Sep-20").as_deref(), Some("2020-09-01"));
        assert_eq!(d("01-Apr-17").as_deref(), Some("2017-04-01"));
        assert_eq!(d("01/04/11").as_deref(), Some("2011-04-01"));
        assert_eq!(d("rubbish"), None);
    }

    #[test]
    fn arithmetic() {
        let m: YearMonth = "2024-12".parse().unwrap();
        assert_eq!(m.next().to_string(), "2025-01");
        assert_eq!(m.plus(13).to_string(), "2026-01");
        assert_eq!(m.minus(12).to_string(), "2023-12");
        assert_eq!(m.plus(13).minus(13), m);
        assert_eq!(m.months_to(m.plus(13)), 13);
        assert_eq!(m.plus(13).months_to(m), -13);
        assert_eq!("1970-01".parse::<YearMonth>().unwrap_err(), MonthError::OutOfRange("1970-01".into()));
        assert_eq!("2000-01".parse::<YearMonth>().unwrap().days_since_epoch(), 10957);
    }
}
