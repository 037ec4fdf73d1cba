//! Charts drawn on the server as SVG: a decile fan with an organisation's line, a Making Data
//! Count SPC chart, and sparklines. Each chart is a self-contained `<svg role="img">` with a title
//! and a description for screen readers and `<title>` hover values on its points; the pages put a
//! data table beside it. The same functions can draw a printed report.

use ipmo_domain::YearMonth;
use ipmo_measures::analysis::Spc;
use ipmo_stats::spc::PointClass;
use std::collections::BTreeMap;
use std::fmt::Write as _;

const W: f64 = 640.0;
const H: f64 = 260.0;
const LEFT: f64 = 60.0;
const RIGHT: f64 = 30.0;
const TOP: f64 = 14.0;
const BOTTOM: f64 = 34.0;

/// NHS blue, for an organisation's own line.
const LINE: &str = "#005eb8";
/// Target lines (Making Data Count red).
const TARGET: &str = "#de1b1b";

/// Escapes text for SVG content and attributes.
pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// A short label for a number on an axis.
fn tick_label(v: f64) -> String {
    let a = v.abs();
    if a >= 1_000_000.0 {
        format!("{:.1}m", v / 1_000_000.0)
    } else if a >= 10_000.0 {
        format!("{:.0}k", v / 1000.0)
    } else if a >= 100.0 || v == v.trunc() {
        format!("{v:.0}")
    } else if a >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// A "nice" axis from lo to hi with about five ticks.
fn axis(mut lo: f64, mut hi: f64) -> (f64, f64, Vec<f64>) {
    if !lo.is_finite() || !hi.is_finite() {
        return (0.0, 1.0, vec![0.0, 1.0]);
    }
    if hi - lo < 1e-12 {
        let pad = if hi.abs() > 0.0 { hi.abs() * 0.1 } else { 1.0 };
        lo -= pad;
        hi += pad;
    }
    let raw = (hi - lo) / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0].iter().map(|m| m * mag).find(|s| *s >= raw).unwrap_or(10.0 * mag);
    let start = (lo / step).floor() * step;
    let end = (hi / step).ceil() * step;
    let ticks = (0..=((end - start) / step).round() as usize).map(|i| start + i as f64 * step).collect();
    (start, end, ticks)
}

/// A pixel coordinate written with one decimal. Formatting through integers rather than `{:.1}`
/// keeps a national funnel plot (thousands of points) cheap to render; the output is the same.
#[derive(Clone, Copy)]
struct Px(f64);

impl std::fmt::Display for Px {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let tenths = (self.0 * 10.0).round();
        if !tenths.is_finite() || tenths.abs() > 1e15 {
            return write!(f, "{:.1}", self.0);
        }
        // Digits written back to front into a small buffer, then handed over in one piece.
        let t = tenths as i64;
        let mut n = t.unsigned_abs();
        let mut buf = [0u8; 24];
        let mut at = buf.len();
        let mut push = |b: u8| {
            at -= 1;
            buf[at] = b;
        };
        push(b'0' + (n % 10) as u8);
        push(b'.');
        n /= 10;
        loop {
            push(b'0' + (n % 10) as u8);
            n /= 10;
            if n == 0 {
                break;
            }
        }
        if t < 0 {
            push(b'-');
        }
        f.write_str(std::str::from_utf8(&buf[at..]).unwrap_or("0.0"))
    }
}

/// The y pixel of value `v` on an axis from `lo` to `hi`.
fn scale_y(lo: f64, hi: f64, v: f64) -> f64 {
    TOP + (H - TOP - BOTTOM) * (1.0 - (v - lo) / (hi - lo))
}

/// A chart's opening tag with its accessible name and description.
fn open_svg(id: &str, title: &str, desc: &str) -> String {
    format!(
        r#"<svg class="chart" viewBox="0 0 {W} {H}" role="img" aria-labelledby="{id}-t {id}-d" xmlns="http://www.w3.org/2000/svg"><title id="{id}-t">{}</title><desc id="{id}-d">{}</desc>"#,
        esc(title),
        esc(desc)
    )
}

/// Horizontal gridlines with their value labels.
fn value_grid(s: &mut String, ticks: &[f64], lo: f64, hi: f64) {
    for t in ticks {
        let y = scale_y(lo, hi, *t);
        let _ = write!(
            s,
            r##"<line x1="{LEFT}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#d8dde0"/><text x="{}" y="{:.1}" text-anchor="end" class="tick">{}</text>"##,
            W - RIGHT,
            LEFT - 6.0,
            y + 4.0,
            tick_label(*t)
        );
    }
}

struct Frame {
    months: Vec<YearMonth>,
    lo: f64,
    hi: f64,
    ticks: Vec<f64>,
}

impl Frame {
    fn new(months: Vec<YearMonth>, values: impl Iterator<Item = f64>) -> Self {
        let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
        for v in values.filter(|v| v.is_finite()) {
            lo = lo.min(v);
            hi = hi.max(v);
        }
        if lo > 0.0 && lo < hi * 0.5 {
            lo = 0.0;
        }
        let (lo, hi, ticks) = axis(lo, hi);
        Self { months, lo, hi, ticks }
    }

    fn x(&self, m: YearMonth) -> f64 {
        let n = self.months.len().max(2) - 1;
        let i = self.months.iter().position(|x| *x == m).unwrap_or(0);
        LEFT + (W - LEFT - RIGHT) * i as f64 / n as f64
    }

    fn y(&self, v: f64) -> f64 {
        scale_y(self.lo, self.hi, v)
    }

    /// Opening tag, accessible name, gridlines and axes.
    fn open(&self, id: &str, title: &str, desc: &str) -> String {
        let mut s = open_svg(id, title, desc);
        value_grid(&mut s, &self.ticks, self.lo, self.hi);
        // Month labels: about six, always the first and last.
        let n = self.months.len();
        let every = n.div_ceil(6).max(1);
        for (i, m) in self.months.iter().enumerate() {
            if i % every == 0 || i + 1 == n {
                let _ = write!(
                    s,
                    r#"<text x="{:.1}" y="{}" text-anchor="middle" class="tick">{}</text>"#,
                    self.x(*m),
                    H - 12.0,
                    short_month(*m)
                );
            }
        }
        s
    }
}

/// "Jan 24".
pub fn short_month(m: YearMonth) -> String {
    const NAMES: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    format!("{} {:02}", NAMES[usize::from(m.month().clamp(1, 12) - 1)], m.year() % 100)
}

/// "January 2024".
pub fn long_month(m: YearMonth) -> String {
    const NAMES: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    format!("{} {}", NAMES[usize::from(m.month().clamp(1, 12) - 1)], m.year())
}

fn path(points: impl Iterator<Item = (f64, f64)>) -> String {
    let mut d = String::new();
    for (i, (x, y)) in points.enumerate() {
        let _ = write!(d, "{}{},{}", if i == 0 { "M" } else { "L" }, Px(x), Px(y));
    }
    d
}

/// National deciles of a level as shaded bands (10th–90th percentile), the median dashed, and
/// one organisation's line on top.
pub fn fan_chart(
    id: &str,
    title: &str,
    deciles: &BTreeMap<YearMonth, [f64; 9]>,
    line: &[(YearMonth, Option<f64>)],
    org_label: &str,
) -> String {
    let mut months: Vec<YearMonth> = deciles.keys().copied().chain(line.iter().map(|p| p.0)).collect();
    months.sort();
    months.dedup();
    let values = deciles.values().flat_map(|d| d.iter().copied()).chain(line.iter().filter_map(|p| p.1));
    let f = Frame::new(months, values);
    let desc = format!(
        "Line chart of {org_label} by month against the national 10th to 90th percentiles of its level, {} months.",
        f.months.len()
    );
    let mut s = f.open(id, title, &desc);
    let band = |s: &mut String, lo: usize, hi: usize, opacity: f64| {
        let pts: Vec<(YearMonth, [f64; 9])> =
            deciles.iter().map(|(m, d)| (*m, *d)).filter(|(_, d)| d[lo].is_finite() && d[hi].is_finite()).collect();
        if pts.len() < 2 {
            return;
        }
        let upper = pts.iter().map(|(m, d)| (f.x(*m), f.y(d[hi])));
        let lower = pts.iter().rev().map(|(m, d)| (f.x(*m), f.y(d[lo])));
        let mut d = path(upper.chain(lower));
        d.push('Z');
        let _ = write!(s, r##"<path d="{d}" fill="#005eb8" fill-opacity="{opacity}" stroke="none"/>"##);
    };
    for (lo, hi, o) in [(0, 8, 0.10), (1, 7, 0.10), (2, 6, 0.10), (3, 5, 0.10)] {
        band(&mut s, lo, hi, o);
    }
    let median: Vec<(f64, f64)> =
        deciles.iter().filter(|(_, d)| d[4].is_finite()).map(|(m, d)| (f.x(*m), f.y(d[4]))).collect();
    if median.len() >= 2 {
        let _ = write!(
            s,
            r##"<path d="{}" fill="none" stroke="#4c6272" stroke-width="1.5" stroke-dasharray="5 4"/>"##,
            path(median.into_iter())
        );
    }
    let own: Vec<(YearMonth, f64)> = line.iter().filter_map(|(m, v)| v.map(|v| (*m, v))).collect();
    if own.len() >= 2 {
        let _ = write!(
            s,
            r#"<path d="{}" fill="none" stroke="{LINE}" stroke-width="2.5"/>"#,
            path(own.iter().map(|(m, v)| (f.x(*m), f.y(*v))))
        );
    }
    for (m, v) in &own {
        let _ = write!(
            s,
            r#"<circle cx="{:.1}" cy="{:.1}" r="3.5" fill="{LINE}"><title>{}: {}</title></circle>"#,
            f.x(*m),
            f.y(*v),
            long_month(*m),
            crate::format::value(Some(*v))
        );
    }
    s.push_str("</svg>");
    s
}

fn class_colour(c: PointClass) -> &'static str {
    c.colour()
}

/// A Making Data Count XmR chart: centre line, process limits per segment, points coloured by
/// their class, and the target when there is one.
pub fn spc_chart(id: &str, title: &str, spc: &Spc, target: Option<f64>) -> String {
    let chart = &spc.chart;
    let values = chart
        .points
        .iter()
        .map(|p| p.value)
        .chain(chart.segments.iter().flat_map(|s| [s.upper, s.lower]))
        .chain(target);
    let f = Frame::new(spc.months.clone(), values);
    let desc = format!(
        "Statistical process control chart of {} monthly values with mean and process limits; special-cause points are coloured.",
        spc.months.len()
    );
    let mut s = f.open(id, title, &desc);
    for seg in &chart.segments {
        let (Some(a), Some(b)) = (spc.months.get(seg.start), spc.months.get(seg.end.saturating_sub(1))) else {
            continue;
        };
        let (x0, x1) = (f.x(*a), f.x(*b));
        for (v, dash, colour) in
            [(seg.mean, "", "#212b32"), (seg.upper, "6 4", "#768692"), (seg.lower, "6 4", "#768692")]
        {
            let y = f.y(v);
            let _ = write!(
                s,
                r#"<line x1="{x0:.1}" x2="{x1:.1}" y1="{y:.1}" y2="{y:.1}" stroke="{colour}" stroke-width="1.5" stroke-dasharray="{dash}"/>"#
            );
        }
    }
    if let Some(t) = target {
        let y = f.y(t);
        let _ = write!(
            s,
            r#"<line x1="{LEFT}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="{TARGET}" stroke-width="1.5"><title>Target {}</title></line>"#,
            W - RIGHT,
            crate::format::value(Some(t))
        );
    }
    let _ = write!(
        s,
        r##"<path d="{}" fill="none" stroke="#768692" stroke-width="1.5"/>"##,
        path(spc.months.iter().zip(&chart.points).map(|(m, p)| (f.x(*m), f.y(p.value))))
    );
    for (m, p) in spc.months.iter().zip(&chart.points) {
        let what = match p.class {
            PointClass::Common => "common cause",
            PointClass::Improvement => "special cause – improvement",
            PointClass::Concern => "special cause – concern",
            PointClass::Neutral => "special cause",
        };
        let _ = write!(
            s,
            r#"<circle cx="{:.1}" cy="{:.1}" r="4" fill="{}"><title>{}: {} ({what})</title></circle>"#,
            f.x(*m),
            f.y(p.value),
            class_colour(p.class),
            long_month(*m),
            crate::format::value(Some(p.value))
        );
    }
    s.push_str("</svg>");
    s
}

/// A small line of an organisation's values with the national median dashed behind it.
pub fn sparkline(label: &str, own: &[(YearMonth, f64)], median: &[(YearMonth, f64)]) -> String {
    const SW: f64 = 160.0;
    const SH: f64 = 40.0;
    let mut months: Vec<YearMonth> = own.iter().chain(median).map(|p| p.0).collect();
    months.sort();
    months.dedup();
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for (_, v) in own.iter().chain(median) {
        lo = lo.min(*v);
        hi = hi.max(*v);
    }
    if !(hi - lo).is_normal() {
        lo -= 1.0;
        hi += 1.0;
    }
    let n = months.len().max(2) - 1;
    let x = |m: &YearMonth| 2.0 + (SW - 4.0) * months.iter().position(|x| x == m).unwrap_or(0) as f64 / n as f64;
    let y = |v: f64| 3.0 + (SH - 6.0) * (1.0 - (v - lo) / (hi - lo));
    let mut s = format!(
        r#"<svg class="spark" viewBox="0 0 {SW} {SH}" role="img" aria-label="{}" xmlns="http://www.w3.org/2000/svg">"#,
        esc(label)
    );
    if median.len() >= 2 {
        let _ = write!(
            s,
            r##"<path d="{}" fill="none" stroke="#768692" stroke-width="1.2" stroke-dasharray="3 3"/>"##,
            path(median.iter().map(|(m, v)| (x(m), y(*v))))
        );
    }
    if own.len() >= 2 {
        let _ = write!(
            s,
            r#"<path d="{}" fill="none" stroke="{LINE}" stroke-width="2"/>"#,
            path(own.iter().map(|(m, v)| (x(m), y(*v))))
        );
    }
    s.push_str("</svg>");
    s
}

/// A Spiegelhalter funnel plot: each organisation's value against its denominator, with the
/// pooled value and the 95% and 99.8% limits drawn as curves. `name` labels a point's hover text.
pub fn funnel_chart(
    id: &str,
    title: &str,
    plot: &ipmo_measures::analysis::FunnelPlot<&str>,
    name: &dyn Fn(&str) -> String,
) -> String {
    use ipmo_stats::funnel::{FunnelBand, Z95, Z998};
    let f = &plot.funnel;
    let k = plot.multiplier;
    let max_d = f.points.iter().map(|p| p.denominator).fold(0.0, f64::max);
    let min_d = f.points.iter().map(|p| p.denominator).fold(f64::INFINITY, f64::min).max(max_d / 200.0);
    let steps: Vec<f64> =
        (0..=60).map(|i| min_d + (max_d - min_d) * f64::from(i) / 60.0).filter(|d| *d > 0.0).collect();
    let limits: Vec<(f64, [(f64, f64); 2])> =
        steps.iter().map(|d| (*d, [f.limits(*d, Z95), f.limits(*d, Z998)])).collect();
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in f.points.iter().map(|p| p.value).chain(limits.iter().flat_map(|(_, l)| [l[1].0, l[1].1])) {
        if v.is_finite() {
            lo = lo.min(v * k);
            hi = hi.max(v * k);
        }
    }
    let (lo, hi, ticks) = axis(lo, hi);
    let (dlo, dhi, dticks) = axis(0.0, max_d);
    let x = |d: f64| LEFT + (W - LEFT - RIGHT) * (d - dlo) / (dhi - dlo);
    let y = |v: f64| scale_y(lo, hi, v * k);
    let mut s = open_svg(
        id,
        title,
        &format!(
            "Funnel plot of {} organisations: value against denominator, with the pooled value and 95% and 99.8% control limits.",
            f.points.len()
        ),
    );
    value_grid(&mut s, &ticks, lo, hi);
    for t in &dticks {
        let _ = write!(
            s,
            r#"<text x="{:.1}" y="{}" text-anchor="middle" class="tick">{}</text>"#,
            x(*t),
            H - 12.0,
            tick_label(*t)
        );
    }
    for (band, dash) in [(0usize, "6 4"), (1, "")] {
        for side in 0..2 {
            let d = path(limits.iter().map(|(den, l)| (x(*den), y(if side == 0 { l[band].0 } else { l[band].1 }))));
            let _ = write!(
                s,
                r##"<path d="{d}" fill="none" stroke="#4c6272" stroke-width="1.2" stroke-dasharray="{dash}"/>"##
            );
        }
    }
    let _ = write!(
        s,
        r##"<line x1="{LEFT}" x2="{}" y1="{:.1}" y2="{:.1}" stroke="#212b32" stroke-width="1.5"/>"##,
        W - RIGHT,
        y(f.target),
        y(f.target)
    );
    let band_style = |b: FunnelBand| match b {
        FunnelBand::Within => ("#768692", "within the 95% limits"),
        FunnelBand::AboveWarning => ("#ed8b00", "above the 95% limit"),
        FunnelBand::AboveControl => ("#d5281b", "above the 99.8% limit"),
        FunnelBand::BelowWarning => ("#00a499", "below the 95% limit"),
        FunnelBand::BelowControl => ("#005eb8", "below the 99.8% limit"),
    };
    // Up to MANY points each get a circle with a hover title. Beyond that (a national practice
    // list), each band's points are drawn as one path of dots, and only points beyond the 99.8%
    // limits keep a circle and title: the page stays small and the outliers stay named.
    const MANY: usize = 400;
    let many = f.points.len() > MANY;
    if many {
        for band in [
            FunnelBand::Within,
            FunnelBand::AboveWarning,
            FunnelBand::BelowWarning,
            FunnelBand::AboveControl,
            FunnelBand::BelowControl,
        ] {
            let mut d = String::with_capacity(f.points.iter().filter(|p| p.band == band).count() * 16);
            for p in f.points.iter().filter(|p| p.band == band) {
                let _ = write!(d, "M{} {}h0", Px(x(p.denominator)), Px(y(p.value)));
            }
            if !d.is_empty() {
                let _ = write!(
                    s,
                    r#"<path d="{d}" stroke="{}" stroke-width="5" stroke-linecap="round" stroke-opacity="0.8" fill="none"/>"#,
                    band_style(band).0
                );
            }
        }
    }
    for (p, org) in f.points.iter().zip(&plot.orgs) {
        if many && !matches!(p.band, FunnelBand::AboveControl | FunnelBand::BelowControl) {
            continue;
        }
        let (colour, what) = band_style(p.band);
        let _ = write!(
            s,
            r#"<circle cx="{}" cy="{}" r="3.5" fill="{colour}" fill-opacity="0.85"><title>{}: {} ({what})</title></circle>"#,
            Px(x(p.denominator)),
            Px(y(p.value)),
            esc(&name(org)),
            crate::format::value(Some(p.value * k))
        );
    }
    s.push_str("</svg>");
    s
}

/// One line of a [`line_chart`].
pub struct Line<'a> {
    /// Legend and hover name.
    pub name: &'a str,
    /// Stroke colour.
    pub colour: &'a str,
    /// Dashed (a projection).
    pub dashed: bool,
    /// One value per label; None leaves a gap.
    pub values: Vec<Option<f64>>,
}

/// Lines over labelled periods (quarters, years) with hover values and a legend: the workforce
/// trends and projections.
pub fn line_chart(id: &str, title: &str, labels: &[String], lines: &[Line]) -> String {
    let all = lines.iter().flat_map(|l| l.values.iter().flatten().copied());
    let (lo, hi) = all.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(v), b.max(v)));
    let (lo, hi, ticks) = axis(lo.min(0.0), hi);
    let n = labels.len().max(2);
    let x = |i: usize| LEFT + (W - LEFT - RIGHT) * i as f64 / (n - 1) as f64;
    let names: Vec<&str> = lines.iter().map(|l| l.name).collect();
    let mut s = open_svg(id, title, &format!("Lines for {} over {} periods.", names.join(", "), labels.len()));
    value_grid(&mut s, &ticks, lo, hi);
    let every = labels.len().div_ceil(8).max(1);
    for (i, label) in labels.iter().enumerate().filter(|(i, _)| i % every == 0) {
        let _ = write!(
            s,
            r#"<text x="{}" y="{}" text-anchor="middle" class="tick">{}</text>"#,
            Px(x(i)),
            H - 12.0,
            esc(label)
        );
    }
    for (k, line) in lines.iter().enumerate() {
        let points: Vec<(usize, f64)> = line.values.iter().enumerate().filter_map(|(i, v)| v.map(|v| (i, v))).collect();
        let d = path(points.iter().map(|(i, v)| (x(*i), scale_y(lo, hi, *v))));
        let dash = if line.dashed { r#" stroke-dasharray="6 4""# } else { "" };
        let _ = write!(s, r#"<path d="{d}" fill="none" stroke="{}" stroke-width="2"{dash}/>"#, line.colour);
        for (i, v) in &points {
            let _ = write!(
                s,
                r#"<circle cx="{}" cy="{}" r="3" fill="{}"><title>{} {}: {}</title></circle>"#,
                Px(x(*i)),
                Px(scale_y(lo, hi, *v)),
                line.colour,
                esc(line.name),
                esc(&labels[*i]),
                crate::format::number(*v, 1)
            );
        }
        let _ = write!(
            s,
            r#"<text x="{}" y="{}" class="tick" fill="{}">{}{}</text>"#,
            LEFT + 8.0 + 150.0 * k as f64,
            TOP + 10.0,
            line.colour,
            if line.dashed { "- - " } else { "— " },
            esc(line.name)
        );
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pixel_coordinates_match_one_decimal_formatting() {
        for v in [0.0, 0.04, 0.05, 0.26, 1.0, 12.345, 599.95, -0.04, -3.25, -17.0, 1e20, f64::NAN] {
            let expected = format!("{v:.1}");
            let got = Px(v).to_string();
            // Halfway cases may round differently (binary vs. decimal); both are a tenth apart.
            let close = got
                .parse::<f64>()
                .ok()
                .zip(expected.parse::<f64>().ok())
                .is_some_and(|(a, b)| (a - b).abs() <= 0.1 + 1e-9);
            assert!(got == expected || close, "{v}: {got} vs {expected}");
        }
        assert_eq!(Px(12.34).to_string(), "12.3");
        assert_eq!(Px(-0.26).to_string(), "-0.3");
        assert_eq!(Px(599.96).to_string(), "600.0");
    }

    #[test]
    fn axes_are_round_and_cover_the_data() {
        let (lo, hi, ticks) = axis(0.13, 0.87);
        assert!(lo <= 0.13 && hi >= 0.87);
        assert!(ticks.len() >= 3 && ticks.len() <= 11, "{ticks:?}");
        let (lo, hi, _) = axis(5.0, 5.0);
        assert!(lo < 5.0 && hi > 5.0);
        assert_eq!(axis(f64::NAN, 1.0).0, 0.0);
    }

    #[test]
    fn fan_chart_escapes_and_labels() {
        let m: YearMonth = "2024-01".parse().unwrap();
        let mut d = BTreeMap::new();
        d.insert(m, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]);
        d.insert(m.next(), [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]);
        let svg = fan_chart("c", "A <b> & c", &d, &[(m, Some(4.5)), (m.next(), Some(5.5))], "Org");
        assert!(svg.contains("A &lt;b&gt; &amp; c"));
        assert!(svg.contains("<title>January 2024: 4.500</title>"));
        assert!(svg.ends_with("</svg>"));
        assert_eq!(short_month(m), "Jan 24");
    }
}
