//! `ipmo value …`: the medicines value programme. So far `value sets`: the substitution sets
//! built from the loaded dm+d release (`ipmo_value::substitution`), limited to the presentations
//! seen in prescribing unless `--all`, and with `--left-out` the products that take no part and
//! why.

use crate::output::{Cell, Format, Output};
use anyhow::{Result, bail};
use clap::Subcommand;
use ipmo_value::substitution;
use ipmo_warehouse::Warehouse;
use std::collections::BTreeSet;

/// `ipmo value` subcommands.
#[derive(Subcommand)]
pub(crate) enum ValueCommand {
    /// Sets of generically equivalent presentations (OpenPrescribing's 2025 rules), built from the
    /// loaded dm+d release and the BNF ↔ SNOMED mapping.
    Sets {
        /// Keep every code dm+d maps, not only those seen in prescribing.
        #[arg(long)]
        all: bool,
        /// List the products that take no part, and why, instead of the sets.
        #[arg(long)]
        left_out: bool,
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
}

/// Runs `ipmo value …`.
pub(crate) fn run(wh: &Warehouse, cmd: ValueCommand) -> Result<()> {
    match cmd {
        ValueCommand::Sets { all, left_out, format } => {
            let (generics, brands) = wh.substitution_inputs()?;
            if generics.is_empty() && brands.is_empty() {
                bail!(
                    "no dm+d release is loaded: load one with `ipmo ingest dmd DIR`, and NHSBSA's BNF SNOMED mapping with `ipmo ingest bnf-snomed FILE`"
                );
            }
            let prescribed: Option<BTreeSet<String>> = if all {
                None
            } else {
                let current = wh.bnf_current_codes()?;
                Some(wh.presentation_names()?.into_keys().map(|c| current.get(&c).cloned().unwrap_or(c)).collect())
            };
            let sets = substitution::build(&generics, &brands, prescribed.as_ref());
            let table = if left_out {
                let mut t = Output::new(&["id", "bnf_code", "reason"]);
                for l in &sets.left_out {
                    t.rows.push(vec![Cell::text(&l.id), Cell::text(&l.bnf_code), Cell::text(l.reason)]);
                }
                t
            } else {
                let mut t = Output::new(&["set", "name", "codes", "formulation_swap"]);
                for s in &sets.sets {
                    t.rows.push(vec![
                        Cell::text(&s.id),
                        Cell::text(&s.name),
                        Cell::text(s.codes.join(" ")),
                        Cell::text(s.formulation_swap.as_deref().unwrap_or("")),
                    ]);
                }
                t
            };
            table.write(format, &mut std::io::stdout().lock())?;
            Ok(())
        }
    }
}
