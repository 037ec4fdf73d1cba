//! Charts drawn on the server as SVG: a decile fan with an organisation's line, a Making Data
//! Count SPC chart, a funnel plot, lines over periods, sparklines and small multiples. Each chart
//! is a self-contained `<svg>` with a title and a description for screen readers and `<title>`
//! hover values on its points; the pages put a data table beside it. The same functions can draw
//! a printed report.
//!
//! Two rules keep them honest and legible:
//! - **Axes** step by 1, 2, 2.5 or 5 × 10ⁿ and print each label with exactly the decimals the
//!   step needs, so every label is the exact value of its gridline and no two are alike.
//! - **Text stays at least 12 px.** A chart scales with its column, so on a phone the stylesheet
//!   enlarges the text (in viewBox units, up to [`MOBILE_FONT`]); margins and line breaks are
//!   worked out for that largest size, so labels never overflow or collide.

use ipmo_domain::YearMonth;
use ipmo_measures::analysis::Spc;
use ipmo_stats::Direction;
use ipmo_stats::spc::PointClass;
use std::collections::BTreeMap;
use std::fmt::Write as _;

pub(crate) use ipmo_domain::display::long_month;

const W: f64 = 640.0;
/// Room right of the plot for half of a centred x label at the largest text size.
const RIGHT: f64 = 50.0;
/// Largest text size the stylesheet uses (viewBox units, on the narrowest screens).
pub(crate) const MOBILE_FONT: f64 = 27.0;
/// Width of a character at [`MOBILE_FONT`] (Arial digits and lower case are about 0.56 em).
const CHAR_W: f64 = MOBILE_FONT * 0.58;
/// Height of a line of text at [`MOBILE_FONT`].
const LINE_H: f64 = MOBILE_FONT * 1.15;
/// Height of the plotting area.
const PLOT_H: f64 = 190.0;
/// Characters an axis title may take on one line before it wraps.
const TITLE_CHARS: usize = 34;

/// NHS blue, for an organisation's own line.
const LINE: &str = "#005eb8";
/// Target lines (Making Data Count red).
const TARGET: &str = "#de1b1b";
/// Making Data Count concern (orange) and improvement (blue; NHS blue for contrast on white).
const CONCERN: &str = "#e46c0a";
const IMPROVEMENT: &str = "#005eb8";
/// Common cause, and points outside the limits of a measure that makes no judgement.
const GREY: &str = "#768692";
const DARK_GREY: &str = "#4c6272";

/// Escapes text for SVG content and attributes.
pub(crate) fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// A numeric axis: its range, the gridline values and their labels.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Axis {
    /// Lowest value shown.
    pub lo: f64,
    /// Highest value shown.
    pub hi: f64,
    /// Gridline values, ascending.
    pub ticks: Vec<f64>,
    /// One label per tick, exact at the precision printed.
    pub labels: Vec<String>,
}

/// A "nice" axis covering `lo`–`hi` with about five steps of 1, 2, 2.5 or 5 × 10ⁿ.
pub(crate) fn axis(lo: f64, hi: f64) -> Axis {
    let (mut lo, mut hi) = if lo.is_finite() && hi.is_finite() { (lo.min(hi), lo.max(hi)) } else { (0.0, 1.0) };
    if hi - lo < 1e-12 * hi.abs().max(1.0) {
        let pad = if hi.abs() > 0.0 { hi.abs() * 0.1 } else { 1.0 };
        lo -= pad;
        hi += pad;
    }
    let raw = (hi - lo) / 5.0;
    let exp = raw.log10().floor() as i32;
    // The step is mantissa × 10^e with a whole mantissa (2.5 is 25 × 10^(exp−1)).
    let (mantissa, e) = [(1i64, exp), (2, exp), (25, exp - 1), (5, exp), (1, exp + 1)]
        .into_iter()
        .find(|(m, e)| *m as f64 * 10f64.powi(*e) >= raw * (1.0 - 1e-9))
        .unwrap_or((1, exp + 1));
    let step = mantissa as f64 * 10f64.powi(e);
    // Whole steps below and above, a value within rounding of a gridline counting as on it.
    let snap = |q: f64, f: fn(f64) -> f64| if (q - q.round()).abs() < 1e-9 { q.round() } else { f(q) };
    let first = snap(lo / step, f64::floor) as i64;
    let last = snap(hi / step, f64::ceil) as i64;
    let big = (first.abs().max(last.abs()) as f64) * step;
    // Thousands or millions as "k" and "m" when the values are large and the step allows it.
    let (unit_exp, suffix) = if big >= 1e8 && e >= 6 {
        (6, "m")
    } else if big >= 1e5 && e >= 3 {
        (3, "k")
    } else {
        (0, "")
    };
    let ticks: Vec<f64> = (first..=last).map(|i| i as f64 * step).collect();
    let labels = (first..=last)
        .map(|i| if i == 0 { "0".to_string() } else { label(i * mantissa, e - unit_exp) + suffix })
        .collect();
    Axis { lo: first as f64 * step, hi: last as f64 * step, ticks, labels }
}

/// `n × 10^e` written exactly, with `max(0, −e)` decimals and thousands separators.
fn label(n: i64, e: i32) -> String {
    if e >= 0 {
        return ipmo_domain::display::number((n as f64) * 10f64.powi(e), 0);
    }
    let places = (-e) as usize;
    let digits = format!("{:0>width$}", n.unsigned_abs(), width = places + 1);
    let (int, frac) = digits.split_at(digits.len() - places);
    let int = ipmo_domain::display::number(int.parse::<f64>().unwrap_or(0.0), 0);
    let sign = if n < 0 { "−" } else { "" };
    format!("{sign}{int}.{frac}")
}

/// Splits an axis title into lines of at most [`TITLE_CHARS`] characters, at spaces.
fn wrap(text: &str) -> Vec<String> {
    wrap_words(text, TITLE_CHARS)
}

/// Splits `text` at spaces into lines of at most `width` characters (a word longer than that
/// keeps a line of its own): SVG text does not wrap, so charts and organograms break it here.
pub(crate) fn wrap_words(text: &str, width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for word in text.split_whitespace() {
        match lines.last_mut() {
            Some(l) if l.chars().count() + 1 + word.chars().count() <= width => {
                l.push(' ');
                l.push_str(word);
            }
            _ => lines.push(word.to_string()),
        }
    }
    lines
}

/// A pixel coordinate written with one decimal. Formatting through integers rather than `{:.1}`
/// keeps a national funnel plot (thousands of points) cheap to render.
#[derive(Clone, Copy)]
struct Px(f64);

impl std::fmt::Display for Px {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut buf = [0u8; PX_DIGITS];
        match px_digits(self.0, &mut buf) {
            Some(at) => f.write_str(std::str::from_utf8(&buf[at..]).unwrap_or("0.0")),
            None => write!(f, "{:.1}", self.0),
        }
    }
}

/// Room for any coordinate [`px_digits`] writes: sign, fifteen digits, point and tenth.
const PX_DIGITS: usize = 24;

/// Writes `v` rounded to tenths (half away from zero) into the end of `buf`, back to front,
/// and returns where it starts; None when `v` is not finite or too large for this route. The
/// rounding adds a half and truncates rather than calling `f64::round`, which is a library call
/// on the baseline x86-64 target.
fn px_digits(v: f64, buf: &mut [u8; PX_DIGITS]) -> Option<usize> {
    let scaled = v * 10.0;
    if !scaled.is_finite() || scaled.abs() > 1e15 {
        return None;
    }
    let t = (scaled + 0.5f64.copysign(scaled)) as i64;
    let mut n = t.unsigned_abs();
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
    Some(at)
}

/// Appends `v` as [`Px`] writes it to a byte buffer: the dots of a national funnel plot are
/// thousands of coordinates, each cheaper copied as bytes than passed through `fmt`.
fn push_px(out: &mut Vec<u8>, v: f64) {
    let mut buf = [0u8; PX_DIGITS];
    match px_digits(v, &mut buf) {
        Some(at) => out.extend_from_slice(&buf[at..]),
        None => out.extend_from_slice(format!("{:.1}", v).as_bytes()),
    }
}

/// The frame every full-size chart shares: margins fitted to its labels and titles, the value
/// axis with gridlines, and the axis titles.
struct Frame {
    y: Axis,
    left: f64,
    top: f64,
    height: f64,
    y_title: Vec<String>,
    x_title: Vec<String>,
}

impl Frame {
    fn new(y: Axis, y_title: &str, x_title: &str) -> Self {
        let y_title = wrap(y_title);
        let x_title = wrap(x_title);
        let widest = y.labels.iter().map(|l| l.chars().count()).max().unwrap_or(1) as f64;
        let left = (12.0 + CHAR_W * widest).max(44.0);
        let top = 14.0 + LINE_H * (y_title.len() as f64 + 0.5);
        let bottom = 10.0 + LINE_H * (1 + x_title.len()) as f64;
        Self { left, top, height: top + PLOT_H + bottom, y, y_title, x_title }
    }

    fn right(&self) -> f64 {
        W - RIGHT
    }

    fn y(&self, v: f64) -> f64 {
        self.top + PLOT_H * (1.0 - (v - self.y.lo) / (self.y.hi - self.y.lo))
    }

    /// The bottom of the plotting area.
    fn base(&self) -> f64 {
        self.top + PLOT_H
    }

    /// The opening tag with accessible name and description, gridlines, y labels and titles.
    fn open(&self, id: &str, role: &str, title: &str, desc: &str) -> String {
        let mut s = format!(
            r#"<svg class="chart" viewBox="0 0 {W} {}" role="{role}" aria-labelledby="{id}-t {id}-d" xmlns="http://www.w3.org/2000/svg"><title id="{id}-t">{}</title><desc id="{id}-d">{}</desc>"#,
            Px(self.height),
            esc(title),
            esc(desc)
        );
        for (t, l) in self.y.ticks.iter().zip(&self.y.labels) {
            let y = self.y(*t);
            let _ = write!(
                s,
                r##"<line x1="{}" x2="{}" y1="{}" y2="{}" stroke="#d8dde0"/><text x="{}" y="{}" text-anchor="end" class="tick">{}</text>"##,
                Px(self.left),
                Px(self.right()),
                Px(y),
                Px(y),
                Px(self.left - 6.0),
                Px(y + 5.0),
                esc(l)
            );
        }
        for (i, line) in self.y_title.iter().enumerate() {
            let _ = write!(
                s,
                r#"<text x="4" y="{}" class="axis-title">{}</text>"#,
                Px(8.0 + LINE_H * (i as f64 + 0.75)),
                esc(line)
            );
        }
        for (i, line) in self.x_title.iter().enumerate() {
            let _ = write!(
                s,
                r#"<text x="{}" y="{}" text-anchor="middle" class="axis-title">{}</text>"#,
                Px((self.left + self.right()) / 2.0),
                Px(self.base() + LINE_H * (i as f64 + 1.9)),
                esc(line)
            );
        }
        s
    }

    /// Labels under the plotting area at `xs`, at most `fit` of them (always the first and last).
    fn x_labels(&self, s: &mut String, xs: &[(f64, String)]) {
        let widest = xs.iter().map(|(_, l)| l.chars().count()).max().unwrap_or(1) as f64;
        let fit = (((self.right() - self.left) / (CHAR_W * widest + 16.0)).floor() as usize).max(2);
        let every = xs.len().div_ceil(fit).max(1);
        // Counted from the end, so the latest period is always labelled.
        for (i, (x, l)) in xs.iter().enumerate() {
            if (xs.len() - 1 - i).is_multiple_of(every) {
                let _ = write!(
                    s,
                    r#"<text x="{}" y="{}" text-anchor="middle" class="tick">{}</text>"#,
                    Px(*x),
                    Px(self.base() + LINE_H * 0.95),
                    esc(l)
                );
            }
        }
    }
}

/// The range of some values, widened to zero when asked (or when zero is near).
fn range(values: impl Iterator<Item = f64>, from_zero: bool) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values.filter(|v| v.is_finite()) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    if lo > 0.0 && (from_zero || lo < hi * 0.5) {
        lo = 0.0;
    }
    (lo, hi)
}

/// Months along the x axis.
struct Months(Vec<YearMonth>);

impl Months {
    fn x(&self, f: &Frame, m: YearMonth) -> f64 {
        let n = self.0.len().max(2) - 1;
        let i = self.0.binary_search(&m).unwrap_or(0);
        f.left + (f.right() - f.left) * i as f64 / n as f64
    }

    fn labels(&self, f: &Frame, s: &mut String) {
        let xs: Vec<(f64, String)> = self.0.iter().map(|m| (self.x(f, *m), short_month(*m))).collect();
        f.x_labels(s, &xs);
    }
}

/// "Jan 24".
pub(crate) fn short_month(m: YearMonth) -> String {
    const NAMES: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    format!("{} {:02}", NAMES[usize::from(m.month().clamp(1, 12) - 1)], m.year() % 100)
}

fn path(points: impl Iterator<Item = (f64, f64)>) -> String {
    let mut d = Vec::with_capacity(points.size_hint().0 * 12);
    for (i, (x, y)) in points.enumerate() {
        d.push(if i == 0 { b'M' } else { b'L' });
        push_px(&mut d, x);
        d.push(b',');
        push_px(&mut d, y);
    }
    String::from_utf8(d).unwrap_or_default()
}

fn target_line(s: &mut String, f: &Frame, target: Option<f64>) {
    if let Some(t) = target.filter(|t| *t >= f.y.lo && *t <= f.y.hi) {
        let y = f.y(t);
        let _ = write!(
            s,
            r#"<line x1="{}" x2="{}" y1="{}" y2="{}" stroke="{TARGET}" stroke-width="2"><title>Target {}</title></line>"#,
            Px(f.left),
            Px(f.right()),
            Px(y),
            Px(y),
            crate::format::value(Some(t))
        );
    }
}

/// What a decile fan shows.
pub(crate) struct Fan<'a> {
    /// Element id prefix.
    pub id: &'a str,
    /// Accessible name.
    pub title: &'a str,
    /// Deciles (p10 … p90) of the level by month.
    pub deciles: &'a BTreeMap<YearMonth, [f64; 9]>,
    /// One organisation's values.
    pub line: &'a [(YearMonth, Option<f64>)],
    /// Who the line is.
    pub line_label: &'a str,
    /// The measure's unit, for the y-axis title.
    pub unit: &'a str,
    /// The measure's target, drawn in red.
    pub target: Option<f64>,
    /// Other organisations' lines.
    pub others: &'a [OtherLine<'a>],
}

/// Another organisation's line on a [`Fan`] (a highlighted organisation of an analysis).
pub(crate) struct OtherLine<'a> {
    /// Hover name.
    pub name: String,
    /// Its values by month.
    pub values: Vec<(YearMonth, Option<f64>)>,
    /// Stroke colour.
    pub colour: &'a str,
}

/// National deciles of a level as shaded bands (10th–90th percentile), the median dashed, one
/// organisation's line on top, the target in red; the y axis starts at zero.
pub(crate) fn fan_chart(fan: &Fan<'_>) -> String {
    let mut months: Vec<YearMonth> = fan.deciles.keys().copied().chain(fan.line.iter().map(|p| p.0)).collect();
    months.sort();
    months.dedup();
    let months = Months(months);
    let values = fan
        .deciles
        .values()
        .flat_map(|d| d.iter().copied())
        .chain(fan.line.iter().filter_map(|p| p.1))
        .chain(fan.others.iter().flat_map(|o| o.values.iter().filter_map(|p| p.1)));
    let (lo, hi) = range(values.chain(fan.target), true);
    let f = Frame::new(axis(lo, hi), fan.unit, "");
    let desc = format!(
        "Line chart of {} by month against the national 10th to 90th percentiles of its level, {} months, in {}.",
        fan.line_label,
        months.0.len(),
        fan.unit
    );
    let mut s = f.open(fan.id, "img", fan.title, &desc);
    months.labels(&f, &mut s);
    let band = |s: &mut String, lo: usize, hi: usize| {
        let pts: Vec<(YearMonth, [f64; 9])> =
            fan.deciles.iter().map(|(m, d)| (*m, *d)).filter(|(_, d)| d[lo].is_finite() && d[hi].is_finite()).collect();
        if pts.len() < 2 {
            return;
        }
        let upper = pts.iter().map(|(m, d)| (months.x(&f, *m), f.y(d[hi])));
        let lower = pts.iter().rev().map(|(m, d)| (months.x(&f, *m), f.y(d[lo])));
        let mut d = path(upper.chain(lower));
        d.push('Z');
        let _ = write!(s, r##"<path d="{d}" fill="#005eb8" fill-opacity="0.1" stroke="none"/>"##);
    };
    for (lo, hi) in [(0, 8), (1, 7), (2, 6), (3, 5)] {
        band(&mut s, lo, hi);
    }
    let median: Vec<(f64, f64)> =
        fan.deciles.iter().filter(|(_, d)| d[4].is_finite()).map(|(m, d)| (months.x(&f, *m), f.y(d[4]))).collect();
    if median.len() >= 2 {
        let _ = write!(
            s,
            r##"<path d="{}" fill="none" stroke="#4c6272" stroke-width="1.5" stroke-dasharray="5 4"/>"##,
            path(median.into_iter())
        );
    }
    target_line(&mut s, &f, fan.target);
    for OtherLine { name, values: series, colour } in fan.others {
        let pts: Vec<(YearMonth, f64)> = series.iter().filter_map(|(m, v)| v.map(|v| (*m, v))).collect();
        let _ = write!(
            s,
            r#"<path d="{}" fill="none" stroke="{colour}" stroke-width="2.5"><title>{}</title></path>"#,
            path(pts.iter().map(|(m, v)| (months.x(&f, *m), f.y(*v)))),
            esc(name)
        );
    }
    let own: Vec<(YearMonth, f64)> = fan.line.iter().filter_map(|(m, v)| v.map(|v| (*m, v))).collect();
    if own.len() >= 2 {
        let _ = write!(
            s,
            r#"<path d="{}" fill="none" stroke="{LINE}" stroke-width="2.5"/>"#,
            path(own.iter().map(|(m, v)| (months.x(&f, *m), f.y(*v))))
        );
    }
    for (m, v) in &own {
        let _ = write!(
            s,
            r#"<circle cx="{}" cy="{}" r="3.5" fill="{LINE}"><title>{}: {}</title></circle>"#,
            Px(months.x(&f, *m)),
            Px(f.y(*v)),
            long_month(*m),
            crate::format::value(Some(*v))
        );
    }
    s.push_str("</svg>");
    s
}

/// A Making Data Count XmR chart: centre line, process limits per segment (shown within
/// `bounds`, the values the measure can take), points coloured by their class, and the target.
pub(crate) fn spc_chart(
    id: &str,
    title: &str,
    spc: &Spc,
    target: Option<f64>,
    unit: &str,
    bounds: (f64, f64),
) -> String {
    let chart = &spc.chart;
    let clamp = |v: f64| v.clamp(bounds.0, bounds.1);
    let values = chart
        .points
        .iter()
        .map(|p| p.value)
        .chain(chart.segments.iter().flat_map(|s| [clamp(s.upper), clamp(s.lower)]))
        .chain(target);
    let (lo, hi) = range(values, false);
    let f = Frame::new(axis(lo, hi), unit, "");
    let months = Months(spc.months.clone());
    let desc = format!(
        "Statistical process control chart of {} monthly values in {unit}, with mean and process limits; special-cause points are coloured.",
        spc.months.len()
    );
    let mut s = f.open(id, "img", title, &desc);
    months.labels(&f, &mut s);
    for seg in &chart.segments {
        let (Some(a), Some(b)) = (spc.months.get(seg.start), spc.months.get(seg.end.saturating_sub(1))) else {
            continue;
        };
        let (x0, x1) = (months.x(&f, *a), months.x(&f, *b));
        for (v, dash, colour) in
            [(seg.mean, "", "#212b32"), (clamp(seg.upper), "6 4", GREY), (clamp(seg.lower), "6 4", GREY)]
        {
            let y = f.y(v);
            let _ = write!(
                s,
                r#"<line x1="{}" x2="{}" y1="{}" y2="{}" stroke="{colour}" stroke-width="1.5" stroke-dasharray="{dash}"/>"#,
                Px(x0),
                Px(x1),
                Px(y),
                Px(y)
            );
        }
    }
    target_line(&mut s, &f, target);
    let _ = write!(
        s,
        r#"<path d="{}" fill="none" stroke="{GREY}" stroke-width="1.5"/>"#,
        path(spc.months.iter().zip(&chart.points).map(|(m, p)| (months.x(&f, *m), f.y(p.value))))
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
            r#"<circle cx="{}" cy="{}" r="4" fill="{}"><title>{}: {} ({what})</title></circle>"#,
            Px(months.x(&f, *m)),
            Px(f.y(p.value)),
            p.class.colour(),
            long_month(*m),
            crate::format::value(Some(p.value))
        );
    }
    s.push_str("</svg>");
    s
}

/// A small line of an organisation's values with the national median dashed behind it.
pub(crate) fn sparkline(label: &str, own: &[(YearMonth, f64)], median: &[(YearMonth, f64)]) -> String {
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
    let x = |m: &YearMonth| 2.0 + (SW - 4.0) * months.binary_search(m).unwrap_or(0) as f64 / n as f64;
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

/// One organisation's small chart among many (OpenPrescribing's small multiples): its line over
/// the national 10th–90th percentile band and median, on a scale shared by every chart of the
/// set (`scale`), so that the charts can be compared at a glance. No text inside: the page puts
/// the name and value above it.
pub(crate) fn small_multiple(
    label: &str,
    own: &[(YearMonth, f64)],
    deciles: &BTreeMap<YearMonth, [f64; 9]>,
    scale: (f64, f64),
) -> String {
    const SW: f64 = 220.0;
    const SH: f64 = 90.0;
    let months: Vec<YearMonth> = deciles.keys().copied().collect();
    let n = months.len().max(2) - 1;
    let (lo, hi) = if scale.1 > scale.0 { scale } else { (scale.0 - 1.0, scale.0 + 1.0) };
    let x = |m: &YearMonth| 3.0 + (SW - 6.0) * months.binary_search(m).unwrap_or(0) as f64 / n as f64;
    let y = |v: f64| 4.0 + (SH - 8.0) * (1.0 - (v.clamp(lo, hi) - lo) / (hi - lo));
    let mut s = format!(
        r##"<svg class="multiple" viewBox="0 0 {SW} {SH}" role="img" aria-label="{}" xmlns="http://www.w3.org/2000/svg"><rect x="0" y="0" width="{SW}" height="{SH}" fill="#fff"/>"##,
        esc(label)
    );
    let band: Vec<(YearMonth, [f64; 9])> =
        deciles.iter().map(|(m, d)| (*m, *d)).filter(|(_, d)| d[0].is_finite() && d[8].is_finite()).collect();
    if band.len() >= 2 {
        let mut d =
            path(band.iter().map(|(m, d)| (x(m), y(d[8]))).chain(band.iter().rev().map(|(m, d)| (x(m), y(d[0])))));
        d.push('Z');
        let _ = write!(s, r##"<path d="{d}" fill="#005eb8" fill-opacity="0.12" stroke="none"/>"##);
        let _ = write!(
            s,
            r##"<path d="{}" fill="none" stroke="#4c6272" stroke-width="1.2" stroke-dasharray="4 3"/>"##,
            path(band.iter().filter(|(_, d)| d[4].is_finite()).map(|(m, d)| (x(m), y(d[4]))))
        );
    }
    if own.len() >= 2 {
        let _ = write!(
            s,
            r#"<path d="{}" fill="none" stroke="{LINE}" stroke-width="2.2"/>"#,
            path(own.iter().map(|(m, v)| (x(m), y(*v))))
        );
    }
    s.push_str("</svg>");
    s
}

/// How a funnel plot's points are coloured and what its axes are called.
pub(crate) struct FunnelStyle<'a> {
    /// The measure's direction: beyond a limit on the worse side is concern (orange), on the
    /// better side improvement (blue); with no judgement, grey.
    pub direction: Direction,
    /// What the denominator counts (x-axis title).
    pub x_title: &'a str,
    /// The unit of the values (y-axis title).
    pub y_title: &'a str,
    /// A point's organisation name.
    pub name: &'a dyn Fn(&str) -> String,
    /// Where a point links to.
    pub href: &'a dyn Fn(&str) -> String,
}

/// The colour and words for a point outside the limits on the `high` side.
fn funnel_judgement(high: bool, direction: Direction) -> (&'static str, &'static str) {
    match ipmo_measures::analysis::tone_of(high, direction) {
        ipmo_measures::analysis::Tone::Neutral => (DARK_GREY, "no judgement"),
        ipmo_measures::analysis::Tone::Bad => (CONCERN, "concern"),
        ipmo_measures::analysis::Tone::Good => (IMPROVEMENT, "improvement"),
    }
}

/// A Spiegelhalter funnel plot: each organisation's value against its denominator, with the
/// pooled value and the 95% and 99.8% limits drawn as curves. Points beyond a limit are coloured
/// by the measure's direction (Making Data Count: orange concern, blue improvement, grey where
/// the measure makes no judgement); beyond 95% a ring, beyond 99.8% a filled dot. Points are links
/// to the organisation's page, reachable by keyboard; on a plot of more than 400 points (`MANY`) only
/// those beyond the 99.8% limits are (the others are listed in the ranked table below).
pub(crate) fn funnel_chart(
    id: &str,
    title: &str,
    plot: &ipmo_measures::analysis::FunnelPlot<&str>,
    style: &FunnelStyle<'_>,
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
    let values = f.points.iter().map(|p| p.value * k).chain(limits.iter().flat_map(|(_, l)| [l[1].0 * k, l[1].1 * k]));
    let (lo, hi) = range(values, false);
    let frame = Frame::new(axis(lo, hi), style.y_title, &format!("Denominator: {}", style.x_title));
    let x_axis = axis(0.0, max_d);
    let x = |d: f64| frame.left + (frame.right() - frame.left) * (d - x_axis.lo) / (x_axis.hi - x_axis.lo);
    let y = |v: f64| frame.y(v * k);
    let mut s = frame.open(
        id,
        "group",
        title,
        &format!(
            "Funnel plot of {} organisations: value against denominator, with the pooled value and 95% and 99.8% control limits. Points beyond the limits are links.",
            f.points.len()
        ),
    );
    let xs: Vec<(f64, String)> = x_axis.ticks.iter().zip(&x_axis.labels).map(|(t, l)| (x(*t), l.clone())).collect();
    frame.x_labels(&mut s, &xs);
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
        r##"<line x1="{}" x2="{}" y1="{}" y2="{}" stroke="#212b32" stroke-width="1.5"/>"##,
        Px(frame.left),
        Px(frame.right()),
        Px(y(f.target)),
        Px(y(f.target))
    );
    // (colour, filled, words) of a band.
    let look = |b: FunnelBand| -> (&'static str, bool, String) {
        match b {
            FunnelBand::Within => (GREY, true, "within the 95% limits".into()),
            FunnelBand::AboveWarning | FunnelBand::AboveControl => {
                let (c, w) = funnel_judgement(true, style.direction);
                let limit = if b == FunnelBand::AboveControl { "99.8%" } else { "95%" };
                (c, b == FunnelBand::AboveControl, format!("above the {limit} limit: {w}"))
            }
            FunnelBand::BelowWarning | FunnelBand::BelowControl => {
                let (c, w) = funnel_judgement(false, style.direction);
                let limit = if b == FunnelBand::BelowControl { "99.8%" } else { "95%" };
                (c, b == FunnelBand::BelowControl, format!("below the {limit} limit: {w}"))
            }
        }
    };
    const MANY: usize = 400;
    let many = f.points.len() > MANY;
    let bands = [
        FunnelBand::Within,
        FunnelBand::AboveWarning,
        FunnelBand::BelowWarning,
        FunnelBand::AboveControl,
        FunnelBand::BelowControl,
    ];
    let slot = |b: FunnelBand| bands.iter().position(|x| *x == b).unwrap_or(0);
    let beyond = |b: FunnelBand| matches!(b, FunnelBand::AboveControl | FunnelBand::BelowControl);
    // Each band's points, in the plot's order, gathered in one pass.
    let mut in_band: [Vec<usize>; 5] = Default::default();
    for (i, p) in f.points.iter().enumerate() {
        in_band[slot(p.band)].push(i);
    }
    if many {
        // Each band's points as one path of dots; only the points beyond 99.8% are drawn (and
        // linked) one by one below, so a national practice plot stays small.
        for (band, members) in bands.iter().zip(&in_band).filter(|(b, _)| !beyond(**b)) {
            if members.is_empty() {
                continue;
            }
            let (colour, filled, _) = look(*band);
            let mut dots = Vec::with_capacity(members.len() * 16);
            for &i in members {
                let p = &f.points[i];
                dots.push(b'M');
                push_px(&mut dots, x(p.denominator));
                dots.push(b' ');
                push_px(&mut dots, y(p.value));
                dots.extend_from_slice(b"h0");
            }
            let d = String::from_utf8(dots).unwrap_or_default();
            let width = if filled { 6 } else { 7 };
            let _ = write!(
                s,
                r#"<path d="{d}" stroke="{colour}" stroke-width="{width}" stroke-linecap="round" stroke-opacity="0.8" fill="none"/>"#
            );
            if !filled {
                let _ =
                    write!(s, r##"<path d="{d}" stroke="#fff" stroke-width="3" stroke-linecap="round" fill="none"/>"##);
            }
        }
    }
    for (band, members) in bands.iter().zip(&in_band) {
        if many && !beyond(*band) {
            continue;
        }
        let (colour, filled, what) = look(*band);
        let (fill, stroke) = if filled { (colour, colour) } else { ("#fff", colour) };
        for &i in members {
            let (Some(p), Some(org)) = (f.points.get(i), plot.orgs.get(i)) else { continue };
            let name = esc(&(style.name)(org));
            let v = crate::format::value(Some(p.value * k));
            let _ = write!(
                s,
                // The link's first child, <title>, is both its accessible name and its tooltip.
                r#"<a href="{}"><title>{name}: {v} ({what})</title><circle cx="{}" cy="{}" r="4.5" fill="{fill}" stroke="{stroke}" stroke-width="2"/></a>"#,
                esc(&(style.href)(org)),
                Px(x(p.denominator)),
                Px(y(p.value)),
            );
        }
    }
    s.push_str("</svg>");
    s
}

/// The legend of a funnel plot for a measure with `direction`, as HTML.
pub(crate) fn funnel_legend(direction: Direction) -> String {
    let dot = |fill: &str, stroke: &str| {
        format!(
            r#"<svg class="key" viewBox="0 0 16 16" aria-hidden="true" focusable="false"><circle cx="8" cy="8" r="5" fill="{fill}" stroke="{stroke}" stroke-width="2"/></svg>"#
        )
    };
    let line = |dash: &str| {
        format!(
            r##"<svg class="key" viewBox="0 0 24 16" aria-hidden="true" focusable="false"><line x1="0" x2="24" y1="8" y2="8" stroke="#4c6272" stroke-width="2" stroke-dasharray="{dash}"/></svg>"##
        )
    };
    let mut items = vec![(dot(GREY, GREY), "Within the 95% limits: no different from the pooled value".to_string())];
    match direction {
        Direction::Neither => {
            items.push((
                dot("#fff", DARK_GREY),
                "Beyond the 95% limit (no judgement: this measure is neither better high nor low)".into(),
            ));
            items.push((dot(DARK_GREY, DARK_GREY), "Beyond the 99.8% limit (no judgement)".into()));
        }
        _ => {
            let worse = if direction == Direction::LowerIsBetter { "above" } else { "below" };
            let better = if direction == Direction::LowerIsBetter { "below" } else { "above" };
            items.push((dot("#fff", CONCERN), format!("Concern: {worse} the 95% limit")));
            items.push((dot(CONCERN, CONCERN), format!("Concern: {worse} the 99.8% limit")));
            items.push((dot("#fff", IMPROVEMENT), format!("Improvement: {better} the 95% limit")));
            items.push((dot(IMPROVEMENT, IMPROVEMENT), format!("Improvement: {better} the 99.8% limit")));
        }
    }
    items.push((line("6 4"), "95% limits".into()));
    items.push((line(""), "99.8% limits".into()));
    let mut s = String::from(r#"<ul class="legend">"#);
    for (key, text) in items {
        let _ = write!(s, "<li>{key} {}</li>", esc(&text));
    }
    s.push_str("</ul>");
    s
}

/// Values of many organisations as dots on one vertical scale, with a target line: the price
/// per unit each practice paid for a set. Dots are spread across the width by a hash of their
/// label, so the same organisation sits in the same place on every request; the `highlight`ed
/// one is drawn larger, in orange, last.
pub(crate) fn strip_chart(
    id: &str,
    title: &str,
    points: &[(String, f64)],
    target: Option<f64>,
    highlight: Option<&str>,
    unit: &str,
) -> String {
    let values = points.iter().map(|(_, v)| *v).chain(target);
    let (lo, hi) = range(values, true);
    let f = Frame::new(axis(lo, hi), unit, "");
    let mut s = f.open(
        id,
        "img",
        title,
        &format!(
            "{} dots, one per organisation, at the value it had{}.",
            points.len(),
            target.map_or(String::new(), |t| format!("; a red line marks the target, {}", crate::format::number(t, 3)))
        ),
    );
    let spread = |label: &str| {
        // FNV-1a: stable across runs and platforms.
        let h = label.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
        0.04 + 0.92 * ((h >> 11) as f64 / (1u64 << 53) as f64)
    };
    let is_own = |label: &str| highlight == Some(label);
    let ordered = points.iter().filter(|(l, _)| !is_own(l)).chain(points.iter().filter(|(l, _)| is_own(l)));
    for (label, v) in ordered {
        let x = f.left + (f.right() - f.left) * spread(label);
        let (r, colour, opacity) = if is_own(label) { (6, CONCERN, 1.0) } else { (4, IMPROVEMENT, 0.55) };
        let _ = write!(
            s,
            r#"<circle cx="{}" cy="{}" r="{r}" fill="{colour}" fill-opacity="{opacity}"><title>{}: {}</title></circle>"#,
            Px(x),
            Px(f.y(*v)),
            esc(label),
            crate::format::number(*v, 3)
        );
    }
    if let Some(t) = target {
        let _ = write!(
            s,
            r#"<line x1="{}" x2="{}" y1="{}" y2="{}" stroke="{TARGET}" stroke-width="2"/>"#,
            Px(f.left),
            Px(f.right()),
            Px(f.y(t)),
            Px(f.y(t))
        );
    }
    s.push_str("</svg>");
    s
}

/// One line of a [`line_chart`].
pub(crate) struct Line<'a> {
    /// Legend and hover name.
    pub name: &'a str,
    /// Stroke colour.
    pub colour: &'a str,
    /// Dashed (a projection).
    pub dashed: bool,
    /// One value per label; None leaves a gap.
    pub values: Vec<Option<f64>>,
}

/// Lines over labelled periods (quarters, years) with hover values: the workforce trends and
/// projections. The legend is [`line_legend`], beside the chart rather than over its lines.
pub(crate) fn line_chart(id: &str, title: &str, labels: &[String], lines: &[Line], unit: &str) -> String {
    let all = lines.iter().flat_map(|l| l.values.iter().flatten().copied());
    let (lo, hi) = range(all, true);
    let f = Frame::new(axis(lo, hi), unit, "");
    let n = labels.len().max(2);
    let x = |i: usize| f.left + (f.right() - f.left) * i as f64 / (n - 1) as f64;
    let names: Vec<&str> = lines.iter().map(|l| l.name).collect();
    let mut s =
        f.open(id, "img", title, &format!("Lines for {} over {} periods, in {unit}.", names.join(", "), labels.len()));
    let xs: Vec<(f64, String)> = labels.iter().enumerate().map(|(i, l)| (x(i), l.clone())).collect();
    f.x_labels(&mut s, &xs);
    for line in lines {
        let points: Vec<(usize, f64)> = line.values.iter().enumerate().filter_map(|(i, v)| v.map(|v| (i, v))).collect();
        let d = path(points.iter().map(|(i, v)| (x(*i), f.y(*v))));
        let dash = if line.dashed { r#" stroke-dasharray="6 4""# } else { "" };
        let _ = write!(s, r#"<path d="{d}" fill="none" stroke="{}" stroke-width="2"{dash}/>"#, line.colour);
        for (i, v) in &points {
            let _ = write!(
                s,
                r#"<circle cx="{}" cy="{}" r="3" fill="{}"><title>{} {}: {}</title></circle>"#,
                Px(x(*i)),
                Px(f.y(*v)),
                line.colour,
                esc(line.name),
                esc(&labels[*i]),
                crate::format::number(*v, 1)
            );
        }
    }
    s.push_str("</svg>");
    s
}

/// The lines of cumulative planned (grey, dashed) and realised (blue) savings, from
/// running totals (`ipmo_programme::ledger::running_totals`).
pub(crate) fn cumulative_lines(sums: &[(f64, f64)]) -> [Line<'static>; 2] {
    [
        Line {
            name: "Planned, cumulative",
            colour: "#768692",
            dashed: true,
            values: sums.iter().map(|x| Some(x.0)).collect(),
        },
        Line {
            name: "Realised, cumulative",
            colour: "#005eb8",
            dashed: false,
            values: sums.iter().map(|x| Some(x.1)).collect(),
        },
    ]
}

/// The legend of a [`line_chart`], as HTML.
pub(crate) fn line_legend(lines: &[Line]) -> String {
    let mut s = String::from(r#"<ul class="legend">"#);
    for l in lines {
        let dash = if l.dashed { "6 4" } else { "" };
        let _ = write!(
            s,
            r#"<li><svg class="key" viewBox="0 0 24 16" aria-hidden="true" focusable="false"><line x1="0" x2="24" y1="8" y2="8" stroke="{}" stroke-width="3" stroke-dasharray="{dash}"/></svg> {}</li>"#,
            l.colour,
            esc(l.name)
        );
    }
    s.push_str("</ul>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

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
    }

    #[test]
    fn axes_the_review_found_wrong_are_exact_now() {
        // The generic prescribing SPC axis read "85, 85.0, 84.9, 84.8, 84.8".
        let a = axis(84.78, 85.02);
        assert_eq!(a.labels, ["84.75", "84.80", "84.85", "84.90", "84.95", "85.00", "85.05"]);
        // Broad-spectrum: gridlines at 9.75, 10.25 and 10.75 were labelled 9.8, 10.2 and 10.8.
        let a = axis(9.6, 10.9);
        assert_eq!(a.labels, ["9.5", "10.0", "10.5", "11.0"]);
        assert_eq!(axis(9.7, 10.8).labels, ["9.50", "9.75", "10.00", "10.25", "10.50", "10.75", "11.00"]);
        assert_eq!(axis(0.0, 1_250_000.0).labels, ["0", "250k", "500k", "750k", "1,000k", "1,250k"]);
        assert_eq!(axis(0.0, 12_345.0).labels, ["0", "2,500", "5,000", "7,500", "10,000", "12,500"]);
        assert_eq!(axis(-3.0, 4.0).labels, ["−4", "−2", "0", "2", "4"]);
        let flat = axis(5.0, 5.0);
        assert!(flat.lo < 5.0 && flat.hi > 5.0);
        assert_eq!(axis(f64::NAN, 1.0).lo, 0.0);
    }

    /// A label back to a number of hundred-thousandths, exactly (no floating point).
    fn exact(label: &str) -> i128 {
        let (body, scale) = match label.strip_suffix('k') {
            Some(b) => (b, 1_000i128),
            None => match label.strip_suffix('m') {
                Some(b) => (b, 1_000_000),
                None => (label, 1),
            },
        };
        let body = body.replace(',', "").replace('−', "-");
        let negative = body.starts_with('-');
        let body = body.trim_start_matches('-');
        let (int, frac) = body.split_once('.').unwrap_or((body, ""));
        assert!(frac.len() <= 12, "{label}");
        let frac_scaled: i128 = format!("{frac:0<12}").parse().unwrap();
        let n = (int.parse::<i128>().unwrap() * 1_000_000_000_000 + frac_scaled) * scale;
        if negative { -n } else { n }
    }

    proptest! {
        /// The byte route the funnel's dots and every path take writes what `Px` writes, and
        /// that is `{:.1}` but for the last digit of a halfway case.
        #[test]
        fn pixel_bytes_are_the_pixel_text(v in prop_oneof![-1e4f64..1e4, (-20_000i32..20_000).prop_map(|t| f64::from(t) / 20.0)]) {
            let mut bytes = Vec::new();
            push_px(&mut bytes, v);
            let text = Px(v).to_string();
            prop_assert_eq!(String::from_utf8(bytes).unwrap(), text.clone());
            let close = (text.parse::<f64>().unwrap() - format!("{v:.1}").parse::<f64>().unwrap()).abs() <= 0.1 + 1e-9;
            prop_assert!(text == format!("{v:.1}") || close, "{} vs {:.1}", text, v);
        }
    }

    proptest! {
        /// Over random ranges: labels are all different, evenly spaced exactly as printed, each
        /// the value of its gridline, and the axis covers the data with a handful of steps.
        #[test]
        fn tick_labels_are_exact_and_even(centre in -1e7f64..1e7, exp in -4i32..7, spread in 0.01f64..50.0) {
            let width = spread * 10f64.powi(exp);
            let (lo, hi) = (centre - width / 2.0, centre + width / 2.0);
            let a = axis(lo, hi);
            prop_assert!(a.lo <= lo + 1e-9 * lo.abs().max(1.0) && a.hi >= hi - 1e-9 * hi.abs().max(1.0));
            prop_assert!(a.ticks.len() >= 2 && a.ticks.len() <= 8, "{:?}", a.labels);
            let values: Vec<i128> = a.labels.iter().map(|l| exact(l)).collect();
            let steps: std::collections::BTreeSet<i128> = values.windows(2).map(|w| w[1] - w[0]).collect();
            prop_assert_eq!(steps.len(), 1, "{:?}", a.labels);
            prop_assert!(*steps.iter().next().unwrap() > 0);
            for (t, v) in a.ticks.iter().zip(&values) {
                let printed = *v as f64 / 1e12;
                prop_assert!((printed - t).abs() <= 1e-9 * t.abs().max(1e-6), "{} vs {}", printed, t);
            }
        }
    }

    #[test]
    fn fan_chart_escapes_labels_and_starts_at_zero() {
        let m: YearMonth = "2024-01".parse().unwrap();
        let mut d = BTreeMap::new();
        d.insert(m, [11.0, 12.0, 13.0, 14.0, 15.0, 16.0, 17.0, 18.0, 19.0]);
        d.insert(m.next(), [11.0, 12.0, 13.0, 14.0, 15.0, 16.0, 17.0, 18.0, 19.0]);
        let line = [(m, Some(14.5)), (m.next(), Some(15.5))];
        let svg = fan_chart(&Fan {
            id: "c",
            title: "A <b> & c",
            deciles: &d,
            line: &line,
            line_label: "Org",
            unit: "items per 1,000 patients",
            target: Some(10.0),
            others: &[],
        });
        assert!(svg.contains("A &lt;b&gt; &amp; c"));
        assert!(svg.contains("<title>January 2024: 14.5</title>"));
        assert!(svg.contains(r#"class="tick">0</text>"#), "the axis starts at zero");
        assert!(svg.contains(">items per 1,000 patients</text>"), "the unit titles the y axis");
        assert!(svg.contains("<title>Target 10.0</title>"));
        assert!(svg.ends_with("</svg>"));
        assert_eq!(short_month(m), "Jan 24");
        assert_eq!(
            wrap("mg oral morphine equivalent per 1,000 patients"),
            ["mg oral morphine equivalent per", "1,000 patients"]
        );
    }

    fn plot(values: &[(f64, f64)]) -> ipmo_measures::analysis::FunnelPlot<&'static str> {
        const CODES: [&str; 6] = ["A", "B", "C", "D", "E", "F"];
        let funnel = ipmo_stats::funnel::funnel(values, ipmo_stats::funnel::FunnelModel::Binomial, false).unwrap();
        ipmo_measures::analysis::FunnelPlot { multiplier: 100.0, orgs: CODES[..values.len()].to_vec(), funnel }
    }

    fn style(direction: Direction) -> String {
        // A is far above the pooled value, F far below; the others sit on it.
        let p =
            plot(&[(400.0, 1000.0), (100.0, 1000.0), (100.0, 1000.0), (100.0, 1000.0), (100.0, 1000.0), (5.0, 1000.0)]);
        let name = |c: &str| format!("Org {c}");
        let href = |c: &str| format!("/measure/m/org/{c}");
        funnel_chart("f", "T", &p, &FunnelStyle { direction, x_title: "items", y_title: "%", name: &name, href: &href })
    }

    #[test]
    fn funnel_colours_follow_the_measure_direction() {
        let high_point = |svg: &str| {
            let at = svg.find("<title>Org A:").unwrap();
            svg[at..(at + 300).min(svg.len())].to_string()
        };
        let low_point = |svg: &str| {
            let at = svg.find("<title>Org F:").unwrap();
            svg[at..(at + 300).min(svg.len())].to_string()
        };
        // Lower is better (antibacterials): high is concern (orange), low improvement (blue).
        let lower = style(Direction::LowerIsBetter);
        assert!(
            high_point(&lower).contains(CONCERN) && high_point(&lower).contains("concern"),
            "{}",
            high_point(&lower)
        );
        assert!(low_point(&lower).contains(IMPROVEMENT) && low_point(&lower).contains("improvement"));
        // Higher is better (generic prescribing, statins): the same positions swap colours.
        let higher = style(Direction::HigherIsBetter);
        assert!(high_point(&higher).contains(IMPROVEMENT) && high_point(&higher).contains("improvement"));
        assert!(low_point(&higher).contains(CONCERN) && low_point(&higher).contains("concern"));
        // No judgement: grey, neither concern nor improvement.
        let neither = style(Direction::Neither);
        for p in [high_point(&neither), low_point(&neither)] {
            assert!(
                p.contains(DARK_GREY) && p.contains("no judgement") && !p.contains(CONCERN) && !p.contains(IMPROVEMENT),
                "{p}"
            );
        }
        // Points are links, with axis titles.
        assert!(lower.contains(r#"<a href="/measure/m/org/A""#));
        assert!(lower.contains(">Denominator: items</text>"));
        assert!(funnel_legend(Direction::HigherIsBetter).contains("Concern: below the 99.8% limit"));
        assert!(funnel_legend(Direction::Neither).contains("no judgement"));
    }
}
