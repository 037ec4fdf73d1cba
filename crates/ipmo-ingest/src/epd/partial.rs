//! One worker's share of a prescribing file.
//!
//! Each worker parses whole blocks into its own accumulator, numbering codes as it meets them, so
//! workers share nothing while they parse. Rows of one cell usually follow each other in the EPD
//! (the quantity-per-item split), so a row is added to the previous cell when the keys match and
//! pushed otherwise; [`super::PrescribingData`] sorts and merges what the workers hold once the
//! file is read. Line numbers are counted from the start of each block and moved to the file's
//! numbering when the blocks are put back in order.

use super::records::{Record, Records};
use super::{
    CodeIndex, Columns, EpdLayout, FIELD_BITS, FIELD_MAX, NO_SNOMED, Overflow, QuantityKey, SplitRow, Totals, pack,
};
use crate::{Rejected, RowError};
use ipmo_domain::{BnfCode, OdsCode, YearMonth, parse_decimal, parse_fixed_point, parse_whole_number};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};

/// What every worker reads the file with.
pub(super) struct Context<'a> {
    /// File name for messages.
    pub(super) file: &'a str,
    /// Header cells as written, naming columns in messages.
    pub(super) raw_headers: &'a [String],
    /// Where the columns are.
    pub(super) columns: &'a Columns,
    /// Field delimiter.
    pub(super) delimiter: u8,
    /// The month of a file with no month column.
    pub(super) fixed_month: Option<YearMonth>,
    /// The month every row must have (from `--month` or the file name).
    pub(super) expected_month: Option<YearMonth>,
    /// `--max-errors`.
    pub(super) max_errors: u64,
    /// Bad rows seen by all workers, so reading can stop once the load has failed.
    pub(super) errors_seen: &'a AtomicU64,
    /// Rows read by all workers, for progress.
    pub(super) rows_seen: &'a AtomicU64,
}

impl Context<'_> {
    /// True once more rows have been rejected than `--max-errors` allows: the load has failed.
    pub(super) fn failed(&self) -> bool {
        self.errors_seen.load(Ordering::Relaxed) > self.max_errors
    }

    fn error(&self, rec: &Record<'_>, i: usize, message: impl Into<String>) -> RowError {
        crate::error::row_error(self.file, rec.line, self.raw_headers, i, rec.field(i), message.into())
    }
}

/// The counts of one block, and its bad rows with lines counted from the block's start.
#[derive(Default)]
pub(super) struct BlockOutcome {
    /// The block's place in the file.
    pub(super) index: usize,
    /// Line ends in the block.
    pub(super) lines: u64,
    /// Rows that were not blank.
    pub(super) rows_read: u64,
    /// Rows accepted.
    pub(super) rows_kept: u64,
    /// Rows accepted with a negative value.
    pub(super) negative_rows: u64,
    /// Months of the rows accepted.
    pub(super) months: BTreeSet<YearMonth>,
    /// Bad rows, at most one more than `--max-errors` allows.
    pub(super) rejected: Vec<Rejected>,
}

/// A worker's accumulator: its own code numbering, cells and split rows.
#[derive(Default)]
pub(super) struct Partial {
    pub(super) months: Vec<YearMonth>,
    pub(super) practices: CodeIndex,
    pub(super) practice_flagged: Vec<bool>,
    pub(super) bnf_codes: CodeIndex,
    /// Each code's name and where it was first met (block, line), so the merged name is the
    /// file's first.
    pub(super) bnf_names: Vec<(String, (usize, u64))>,
    pub(super) snomed_codes: CodeIndex,
    /// Cells keyed by the worker's numbering, added up where rows followed each other.
    pub(super) cells: Vec<(u64, Totals)>,
    pub(super) split: Vec<SplitRow>,
    pub(super) blocks: Vec<BlockOutcome>,
    /// The previous row's month, practice and presentation, by their packed spelling: rows of
    /// one practice come together, and so do the quantity splits of one presentation.
    last_month: Option<(u128, YearMonth, u64)>,
    last_practice: Option<(u128, u32)>,
    last_bnf: Option<(u128, u32)>,
    /// The dm+d product last met with each presentation: nearly always the only one.
    snomed_by_bnf: Vec<Option<(u128, u32)>>,
}

/// One row read: its cell, values and place in the quantity-per-item split.
struct Parsed {
    key: u64,
    totals: Totals,
    month: YearMonth,
    split_key: Option<QuantityKey>,
}

impl Partial {
    /// Parses every record of one block.
    pub(super) fn read_block(&mut self, index: usize, bytes: &[u8], ctx: &Context<'_>) {
        let c = ctx.columns;
        let mut records = Records::new(bytes, ctx.delimiter);
        let mut out = BlockOutcome { index, ..BlockOutcome::default() };
        while let Some(rec) = records.next_record() {
            if rec.bytes(c.practice).is_empty() && rec.is_blank() {
                continue;
            }
            out.rows_read += 1;
            let parsed = self.parse_row(&rec, ctx, index);
            match parsed.and_then(|p| self.add(p, &rec, ctx)) {
                Ok((month, negative)) => {
                    out.months.insert(month);
                    out.rows_kept += 1;
                    out.negative_rows += u64::from(negative);
                }
                Err(error) => {
                    ctx.errors_seen.fetch_add(1, Ordering::Relaxed);
                    if out.rejected.len() as u64 <= ctx.max_errors {
                        out.rejected.push(Rejected { error, fields: rec.fields() });
                    }
                }
            }
        }
        out.lines = records.lines();
        ctx.rows_seen.fetch_add(out.rows_read, Ordering::Relaxed);
        self.blocks.push(out);
    }

    /// Adds a parsed row to its cell (the previous one when the keys match) and the split.
    /// Returns its month and whether it holds a negative value.
    fn add(&mut self, p: Parsed, rec: &Record<'_>, ctx: &Context<'_>) -> Result<(YearMonth, bool), RowError> {
        match self.cells.last_mut() {
            Some((key, cell)) if *key == p.key => {
                if let Err(overflow) = cell.add(&p.totals) {
                    return Err(self.overflow_error(overflow, &p, rec, ctx));
                }
            }
            _ => self.cells.push((p.key, p.totals)),
        }
        if let Some(key) = p.split_key {
            match self.split.last_mut() {
                Some(last) if last.key == key && last.items.checked_add(p.totals.items).is_some() => {
                    last.items += p.totals.items;
                }
                _ => self.split.push(SplitRow { key, items: p.totals.items }),
            }
        }
        Ok((p.month, p.totals.has_negative()))
    }

    fn overflow_error(&self, overflow: Overflow, p: &Parsed, rec: &Record<'_>, ctx: &Context<'_>) -> RowError {
        let c = ctx.columns;
        let (practice, bnf) = super::split(p.key);
        let (column, value) = match overflow {
            Overflow::Items => (c.items, p.totals.items.to_string()),
            Overflow::Nic => (c.nic, rec.field(c.nic).to_string()),
            Overflow::ActualCost => (c.cost, rec.field(c.cost).to_string()),
            Overflow::Quantity => (c.quantity, rec.field(c.quantity).to_string()),
            Overflow::AdqUsage => (c.adq.unwrap_or(c.quantity), p.totals.adq_usage.to_string()),
        };
        ctx.error(
            rec,
            column,
            format!(
                "\"{value}\" makes the total for practice {} and presentation {} in {} too large to hold; check the value (no real month comes near this)",
                self.practices[practice], self.bnf_codes[bnf], p.month
            ),
        )
    }

    fn month_index(&mut self, m: YearMonth) -> Option<u64> {
        super::month_number(&mut self.months, m)
    }

    fn parse_row(&mut self, rec: &Record<'_>, ctx: &Context<'_>, block: usize) -> Result<Parsed, RowError> {
        let c = ctx.columns;
        let (month, month_idx) = match (ctx.fixed_month, c.month) {
            (Some(m), _) => (
                m,
                self.month_index(m).ok_or_else(|| ctx.error(rec, c.practice, "more than 255 months in one load"))?,
            ),
            (None, None) => return Err(ctx.error(rec, c.practice, "no month for this row; pass --month YYYY-MM")),
            (None, Some(i)) => {
                let raw = pack(rec.bytes(i));
                match self.last_month {
                    Some((b, m, idx)) if Some(b) == raw => (m, idx),
                    _ => {
                        let text = rec.field(i);
                        let m: YearMonth = text.parse().map_err(|e| ctx.error(rec, i, format!("{e}")))?;
                        if let Some(exp) = ctx.expected_month
                            && m != exp
                        {
                            return Err(ctx.error(
                                rec,
                                i,
                                format!("\"{text}\" does not match the month in the file name or --month ({exp})"),
                            ));
                        }
                        let idx =
                            self.month_index(m).ok_or_else(|| ctx.error(rec, i, "more than 255 months in one load"))?;
                        self.last_month = raw.map(|b| (b, m, idx));
                        (m, idx)
                    }
                }
            }
        };
        let praw = rec.bytes(c.practice);
        let practice = match self.last_practice {
            Some((b, idx)) if Some(b) == pack(praw) => idx,
            _ => {
                // Numbered by the bytes as written; `l84073` and `L84073` are one practice.
                let canonical = || {
                    let text = rec.field(c.practice);
                    if text == "-" {
                        Ok("-".to_string())
                    } else {
                        OdsCode::parse(text)
                            .map(|code| code.to_string())
                            .map_err(|e| ctx.error(rec, c.practice, e.to_string()))
                    }
                };
                let full = || ctx.error(rec, c.practice, "too many distinct practices in one load");
                let (idx, new) = self.practices.number(praw, FIELD_MAX, canonical, full)?;
                if new {
                    self.practice_flagged.push(false);
                }
                self.last_practice = pack(praw).map(|b| (b, idx));
                idx
            }
        };
        let braw = rec.bytes(c.bnf);
        let bnf = match self.last_bnf {
            Some((b, idx)) if Some(b) == pack(braw) => idx,
            _ => {
                let canonical = || {
                    BnfCode::parse_presentation(rec.field(c.bnf))
                        .map(|code| code.to_string())
                        .map_err(|e| ctx.error(rec, c.bnf, e.to_string()))
                };
                let full = || ctx.error(rec, c.bnf, "too many distinct BNF codes in one load");
                let (idx, new) = self.bnf_codes.number(braw, FIELD_MAX, canonical, full)?;
                if new {
                    let name = c.bnf_name.map(|i| rec.text(i)).unwrap_or_default();
                    self.bnf_names.push((name, (block, rec.line)));
                }
                self.last_bnf = pack(braw).map(|b| (b, idx));
                idx
            }
        };
        let items = fixed(rec.bytes(c.items), 0)
            .map_or_else(|| parse_whole_number(rec.field(c.items)), Ok)
            .map_err(|e| ctx.error(rec, c.items, e.to_string()))?;
        let money = |i: usize, scale: u32| {
            fixed(rec.bytes(i), scale)
                .map_or_else(|| parse_fixed_point(rec.field(i), scale), Ok)
                .map_err(|e| ctx.error(rec, i, e.to_string()))
        };
        let (nic_pence, actual_cost_e5) = (money(c.nic, 2)?, money(c.cost, 5)?);
        let decimal = |i: usize| {
            short_decimal(rec.bytes(i))
                .map_or_else(|| parse_decimal(rec.field(i)), Ok)
                .map_err(|e| ctx.error(rec, i, e.to_string()))
        };
        let q = decimal(c.quantity)?;
        let quantity = if c.layout == EpdLayout::Dpi { q * items as f64 } else { q };
        let adq_usage = match c.adq {
            Some(i) if !rec.bytes(i).is_empty() => decimal(i)?,
            _ => 0.0,
        };
        if let Some(i) = c.unidentified
            && flags_unidentified(rec.bytes(i))
        {
            self.practice_flagged[practice as usize] = true;
        }
        let key = (month_idx << (2 * FIELD_BITS)) | (u64::from(practice) << FIELD_BITS) | u64::from(bnf);
        let split_key = match c.per_item {
            Some(i) => {
                let per_item = if i == c.quantity { q } else { decimal(i)? };
                let snomed = match c.snomed {
                    Some(s) if !rec.bytes(s).is_empty() => {
                        let packed = pack(rec.bytes(s));
                        match self.snomed_by_bnf.get(bnf as usize).copied().flatten() {
                            Some((seen, id)) if Some(seen) == packed => id,
                            _ => {
                                let id = self.snomed_index(rec, s, ctx)?;
                                if self.snomed_by_bnf.len() <= bnf as usize {
                                    self.snomed_by_bnf.resize(bnf as usize + 1, None);
                                }
                                self.snomed_by_bnf[bnf as usize] = packed.map(|p| (p, id));
                                id
                            }
                        }
                    }
                    _ => NO_SNOMED,
                };
                // `+ 0.0` folds -0 into 0 so that both spellings are one quantity.
                Some((key, snomed, (per_item + 0.0).to_bits()))
            }
            None => None,
        };
        Ok(Parsed { key, totals: Totals { items, quantity, nic_pence, actual_cost_e5, adq_usage }, month, split_key })
    }

    /// The number of the row's `SNOMED_CODE`, checked to be a SNOMED CT id (6 to 18 digits) once
    /// per distinct spelling.
    fn snomed_index(&mut self, rec: &Record<'_>, column: usize, ctx: &Context<'_>) -> Result<u32, RowError> {
        let raw = rec.bytes(column);
        let canonical = || {
            if !(6..=18).contains(&raw.len()) || !raw.iter().all(u8::is_ascii_digit) {
                return Err(ctx.error(
                    rec,
                    column,
                    format!(
                        "\"{}\" is not a SNOMED CT id (6 to 18 digits); was the file opened and saved in a spreadsheet?",
                        rec.field(column)
                    ),
                ));
            }
            Ok(rec.field(column).to_string())
        };
        let full = || ctx.error(rec, column, "too many distinct SNOMED codes in one load");
        Ok(self.snomed_codes.number(raw, NO_SNOMED as usize, canonical, full)?.0)
    }
}

/// A plain decimal (`-`, digits, at most one `.`) of at most `max_digits` digits: its sign, its
/// digits as one whole number, and how many of them follow the point; `None` for anything else.
fn plain_decimal(raw: &[u8], max_digits: usize) -> Option<(bool, u64, usize)> {
    let (negative, body) = match raw.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, raw),
    };
    let (int, frac) = match body.iter().position(|&b| b == b'.') {
        Some(dot) => (&body[..dot], &body[dot + 1..]),
        None => (body, &[][..]),
    };
    if (int.is_empty() && frac.is_empty()) || int.len() + frac.len() > max_digits {
        return None;
    }
    let mut digits: u64 = 0;
    for &d in int.iter().chain(frac) {
        if !d.is_ascii_digit() {
            return None;
        }
        digits = digits * 10 + u64::from(d - b'0');
    }
    Some((negative, digits, frac.len()))
}

/// A plain decimal as a count of `10^-scale` units, when it is short enough that no check can
/// fail; anything else is left to [`parse_fixed_point`], which gives the same value or the
/// error. Most of a national month's eighty million numbers take this path.
fn fixed(raw: &[u8], scale: u32) -> Option<i64> {
    let (negative, digits, places) = plain_decimal(raw, 18 - scale as usize)?;
    if places > scale as usize {
        return None;
    }
    let value = digits as i64 * 10i64.pow(scale - places as u32);
    Some(if negative { -value } else { value })
}

/// A plain decimal of at most 15 digits as the nearest f64: the digits as a whole number are
/// exact, as is the power of ten, and one division rounds correctly, so the value equals what
/// [`parse_decimal`] gives; anything else is left to it.
fn short_decimal(raw: &[u8]) -> Option<f64> {
    const POWERS: [f64; 16] = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15];
    let (negative, digits, places) = plain_decimal(raw, 15)?;
    let value = digits as f64 / POWERS[places];
    Some(if negative { -value } else { value })
}

/// Whether an `UNIDENTIFIED` value says yes.
fn flags_unidentified(raw: &[u8]) -> bool {
    const YES: [&[u8]; 5] = [b"Y", b"YES", b"TRUE", b"1", b"T"];
    YES.iter().any(|y| raw.eq_ignore_ascii_case(y))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The short paths give exactly what the general parsers give, or leave the value to them.
        #[test]
        fn short_number_paths_agree_with_the_general_parsers(text in "-?[0-9]{0,12}(\\.[0-9]{0,8})?|[-+ .0-9eE]{0,20}", scale in 0u32..6) {
            if let Some(v) = fixed(text.as_bytes(), scale) {
                prop_assert_eq!(Ok(v), parse_fixed_point(&text, scale));
            }
            if let Some(v) = short_decimal(text.as_bytes()) {
                let general = parse_decimal(&text);
                prop_assert!(general.is_ok(), "{text}");
                prop_assert_eq!(v.to_bits(), general.unwrap_or_default().to_bits(), "{}", text);
            }
        }
    }

    #[test]
    fn short_paths_cover_the_epds_numbers() {
        assert_eq!(fixed(b"5.89", 2), Some(589));
        assert_eq!(fixed(b"5.46810", 5), Some(546_810));
        assert_eq!(fixed(b"-1.5", 2), Some(-150));
        assert_eq!(fixed(b"7.680", 2), None, "extra zeros go the general way");
        assert_eq!(short_decimal(b"733.0"), Some(733.0));
        assert_eq!(short_decimal(b"0.1"), Some(0.1));
        assert_eq!(short_decimal(b"14.000"), Some(14.0));
        assert_eq!(short_decimal(b"1e5"), None);
    }
}
