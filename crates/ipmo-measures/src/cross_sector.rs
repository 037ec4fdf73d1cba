//! Cross-sector measures: the same ratio computed for hospitals (SCMD) and primary care (the
//! EPD) in units that mean the same in both, so an ICB can see its whole system.
//!
//! Hospital data is per dm+d VMP, not per BNF code, so these measures select VMPs by their WHO
//! ATC code, form and strength (from dm+d and its supplement) rather than by BNF code patterns;
//! both sectors are read through the warehouse's `medicine_use` view, where each line carries
//! its VMP's ATC code, form-route, strength and DDDs. Each side of a measure is a SQL condition
//! on that view's columns, printed by `ipmo measures cross-sector --sql`, so any figure can be
//! recomputed with `ipmo sql`.

/// What a measure sums over the lines it selects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Amount {
    /// WHO defined daily doses: the unit that compares a drug's use across strengths, forms and
    /// sectors.
    Ddds,
    /// The VMP's own units (tablets): for a measure within one form, where a DDD would hide
    /// the strength the measure is about.
    Units,
}

impl Amount {
    /// The `medicine_use` column summed.
    pub fn column(self) -> &'static str {
        match self {
            Amount::Ddds => "ddds",
            Amount::Units => "quantity",
        }
    }

    /// What the sums are counted in, for headings.
    pub fn label(self) -> &'static str {
        match self {
            Amount::Ddds => "DDDs",
            Amount::Units => "tablets",
        }
    }
}

/// One cross-sector measure: a share of the denominator's lines that the numerator selects.
#[derive(Clone, Copy, Debug)]
pub struct CrossSectorMeasure {
    /// Stable id, prefixed `xs_` so it never collides with a library measure's.
    pub id: &'static str,
    /// Short name.
    pub name: &'static str,
    /// What the numerator and denominator count, in words.
    pub description: &'static str,
    /// Why a system looks at it.
    pub why: &'static str,
    /// What is summed.
    pub amount: Amount,
    /// Lines counted in the denominator (a condition on `medicine_use`'s columns).
    pub denominator: &'static str,
    /// Of those, the lines counted in the numerator.
    pub numerator: &'static str,
    /// Whether a lower share is the better one (for colours and wording only).
    pub lower_is_better: bool,
}

impl CrossSectorMeasure {
    /// The query that computes the measure for every organisation of both sectors and month,
    /// over the `medicine_use` view: the SQL `ipmo measures cross-sector --sql` prints.
    pub fn sql(&self) -> String {
        let amount = self.amount.column();
        format!(
            "SELECT sector, month, org_code, \
             SUM(CASE WHEN {num} THEN {amount} ELSE 0 END) AS numerator, SUM({amount}) AS denominator, \
             SUM(CASE WHEN {amount} IS NULL THEN 1 ELSE 0 END) AS lines_not_converted \
             FROM medicine_use WHERE {den} GROUP BY sector, month, org_code",
            num = self.numerator,
            den = self.denominator,
        )
    }
}

/// Oral anticoagulants, for the DOAC measure: vitamin K antagonists, the factor Xa inhibitors
/// and dabigatran, by mouth.
const ORAL_ANTICOAGULANTS: &str =
    "(atc LIKE 'B01AA%' OR atc LIKE 'B01AF%' OR atc = 'B01AE07') AND form_route LIKE '%.oral'";

/// The cross-sector measures, in the order pages list them.
pub const CROSS_SECTOR_MEASURES: [CrossSectorMeasure; 4] = [
    CrossSectorMeasure {
        id: "xs_broad_spectrum",
        name: "Broad-spectrum antibacterials",
        description: "Co-amoxiclav, cephalosporins and quinolones (ATC J01CR02, J01D, J01MA) as a share of all \
                      systemic antibacterials (J01), in DDDs",
        why: "Broad-spectrum antibacterials drive resistance and C. difficile infection; stewardship in \
              hospitals and in general practice pulls the same way, so the system's share is the one to watch.",
        amount: Amount::Ddds,
        denominator: "atc LIKE 'J01%'",
        numerator: "(atc = 'J01CR02' OR atc LIKE 'J01D%' OR atc LIKE 'J01MA%')",
        lower_is_better: true,
    },
    CrossSectorMeasure {
        id: "xs_methotrexate_10mg",
        name: "Methotrexate 10 mg tablets",
        description: "Methotrexate 10 mg tablets as a share of all oral methotrexate tablets (ATC L04AX03, \
                      L01BA01), in tablets",
        why: "Mixing 2.5 mg and 10 mg tablets has caused fatal overdoses; the national patient safety alert asks \
              for the 2.5 mg strength only, in hospital discharges as in primary care.",
        amount: Amount::Units,
        denominator: "atc IN ('L04AX03', 'L01BA01') AND form_route LIKE 'tablet%'",
        numerator: "strength_mg = 10",
        lower_is_better: true,
    },
    CrossSectorMeasure {
        id: "xs_doac",
        name: "DOACs among oral anticoagulants",
        description: "Direct oral anticoagulants (apixaban, edoxaban, rivaroxaban: ATC B01AF; dabigatran: B01AE07) \
                      as a share of oral anticoagulants with warfarin and the other vitamin K antagonists (B01AA), \
                      in DDDs",
        why: "NICE recommends a DOAC first for atrial fibrillation; a patient started on one in hospital should \
              find primary care continuing it, so the two sectors' shares belong side by side.",
        amount: Amount::Ddds,
        denominator: ORAL_ANTICOAGULANTS,
        numerator: "(atc LIKE 'B01AF%' OR atc = 'B01AE07')",
        lower_is_better: false,
    },
    CrossSectorMeasure {
        id: "xs_ppi_higher_cost",
        name: "Higher-cost proton pump inhibitors",
        description: "Esomeprazole, pantoprazole and rabeprazole (ATC A02BC05, A02BC02, A02BC04) as a share of all \
                      proton pump inhibitors (A02BC), in DDDs",
        why: "Omeprazole and lansoprazole work as well for most patients and cost less; a higher-cost PPI started \
              on a ward tends to be continued by the practice.",
        amount: Amount::Ddds,
        denominator: "atc LIKE 'A02BC%'",
        numerator: "atc IN ('A02BC05', 'A02BC02', 'A02BC04')",
        lower_is_better: true,
    },
];

/// The measure with this id.
pub fn cross_sector_measure(id: &str) -> Option<&'static CrossSectorMeasure> {
    CROSS_SECTOR_MEASURES.iter().find(|m| m.id == id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_prefixed() {
        let mut ids: Vec<&str> = CROSS_SECTOR_MEASURES.iter().map(|m| m.id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), CROSS_SECTOR_MEASURES.len());
        assert!(ids.iter().all(|id| id.starts_with("xs_")));
        assert_eq!(cross_sector_measure("xs_doac").map(|m| m.amount), Some(Amount::Ddds));
        assert!(cross_sector_measure("doac").is_none());
    }

    #[test]
    fn the_query_sums_the_chosen_amount_under_both_conditions() {
        let m = cross_sector_measure("xs_methotrexate_10mg").expect("defined");
        let sql = m.sql();
        assert!(sql.contains("CASE WHEN strength_mg = 10 THEN quantity ELSE 0 END"), "{sql}");
        assert!(sql.contains("WHERE atc IN ('L04AX03', 'L01BA01') AND form_route LIKE 'tablet%'"), "{sql}");
        assert!(sql.ends_with("GROUP BY sector, month, org_code"));
    }
}
