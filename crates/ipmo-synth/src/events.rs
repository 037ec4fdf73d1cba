//! Two events the synthetic prescribing carries so that the demo's value programme has something
//! real to measure: the first ICB's practices switch esomeprazole to omeprazole capsules from
//! two-thirds of the way through the months, and a generic launch cuts rivaroxaban's price by
//! four-fifths nationally (prescribing and Drug Tariff alike) from halfway. Neither draws on the
//! random stream, so every other figure is what it would be without them.

use crate::SynthConfig;
use ipmo_domain::YearMonth;

/// Esomeprazole presentations and the omeprazole capsule of the same strength they move to.
const SWITCHED: [(&str, &str); 4] = [
    ("0103050E0AAAAAA", "0103050P0AAAAAA"),
    ("0103050E0AAAFAF", "0103050P0AAAAAA"),
    ("0103050E0AAABAB", "0103050P0AAAEAE"),
    ("0103050E0AAAGAG", "0103050P0AAAEAE"),
];
/// Share of esomeprazole rows moved each month of the switch, up to [`SWITCH_MAX`].
const SWITCH_STEP: f64 = 0.15;
/// Most of the esomeprazole rows moved.
const SWITCH_MAX: f64 = 0.6;
/// The chemical whose price falls.
const PRICE_DROP_CHEMICAL: &str = "0208020Y0";
/// What its price is multiplied by from the launch.
const PRICE_DROP_FACTOR: f64 = 0.2;

/// When the events happen, for the demo's schemes and horizon items.
#[derive(Clone, Debug, PartialEq)]
pub struct Events {
    /// BNF chemical switched from (esomeprazole).
    pub switch_from: &'static str,
    /// BNF chemical switched to (omeprazole).
    pub switch_to: &'static str,
    /// First month of the switch, in the first ICB only.
    pub switch_start: YearMonth,
    /// BNF chemical whose price falls (rivaroxaban).
    pub price_drop_chemical: &'static str,
    /// First month at the lower price.
    pub price_drop: YearMonth,
    /// The change in price, per cent.
    pub price_drop_pct: f64,
}

/// The events of a configuration.
pub fn events(config: &SynthConfig) -> Events {
    Events {
        switch_from: "0103050E0",
        switch_to: "0103050P0",
        switch_start: config.start.plus(switch_start(config.months)),
        price_drop_chemical: PRICE_DROP_CHEMICAL,
        price_drop: config.start.plus(price_drop_start(config.months)),
        price_drop_pct: (PRICE_DROP_FACTOR - 1.0) * 100.0,
    }
}

fn switch_start(months: u32) -> u32 {
    months * 2 / 3
}

fn price_drop_start(months: u32) -> u32 {
    months / 2
}

/// The presentation a row of `code` moves to in month `t` for a practice of the first ICB, when
/// its `draw` (uniform in 0..1, fixed per row) falls in the month's share.
pub(crate) fn switched(code: &str, t: u32, months: u32, draw: f64) -> Option<&'static str> {
    let start = switch_start(months);
    if t < start {
        return None;
    }
    let share = (SWITCH_STEP * f64::from(t - start + 1)).min(SWITCH_MAX);
    SWITCHED.iter().find(|(from, _)| *from == code).filter(|_| draw < share).map(|(_, to)| *to)
}

/// What a presentation's price is multiplied by in month `t` (months since the start).
pub(crate) fn price_factor(chemical_code: &str, t: i32, months: u32) -> f64 {
    if chemical_code == PRICE_DROP_CHEMICAL && t >= price_drop_start(months) as i32 { PRICE_DROP_FACTOR } else { 1.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_switch_ramps_up_and_the_price_falls_once() {
        assert_eq!(switched("0103050E0AAAAAA", 11, 18, 0.0), None, "before month 12");
        assert_eq!(switched("0103050E0AAAAAA", 12, 18, 0.14), Some("0103050P0AAAAAA"));
        assert_eq!(switched("0103050E0AAAAAA", 12, 18, 0.16), None, "15% in the first month");
        assert_eq!(switched("0103050E0AAAGAG", 17, 18, 0.59), Some("0103050P0AAAEAE"), "60% at most");
        assert_eq!(switched("0103050E0AAAGAG", 17, 18, 0.61), None);
        assert_eq!(switched("0103050P0AAAAAA", 17, 18, 0.0), None, "only esomeprazole moves");
        assert_eq!(price_factor("0208020Y0", 8, 18), 1.0);
        assert_eq!(price_factor("0208020Y0", 9, 18), 0.2);
        assert_eq!(price_factor("0208020Z0", 9, 18), 1.0);
    }
}
