//! Organograms laid out automatically as SVG: each node's children sit in a row beneath it and a
//! parent is centred over its children, so any tree the records describe draws without overlaps.
//! Extra lines (accountability that differs from line management) are drawn dashed. The same
//! tree is also given as a nested list for screen readers and for copying.

use crate::charts::esc;
use maud::{Markup, html};
use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;

/// One box of an organogram.
pub(super) struct Node {
    /// Record id.
    pub id: i64,
    /// The node above it, if it is in the chart.
    pub parent: Option<i64>,
    /// First line.
    pub title: String,
    /// Second line (role or type).
    pub subtitle: String,
    /// Where the box links to.
    pub href: String,
}

const BOX_W: f64 = 200.0;
const GAP_X: f64 = 20.0;
const GAP_Y: f64 = 48.0;
/// Characters of a box's first line (bold, 13 px) and second (11 px) that fit across a box.
const TITLE_CHARS: usize = 24;
const SUB_CHARS: usize = 31;
/// Lines a box's title or subtitle may take before the rest is cut (with …; the list beside the
/// chart always has the whole text).
const MAX_LINES: usize = 4;

/// Splits `text` into lines of at most `width` characters at spaces (a longer word is cut).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines: Vec<String> =
        crate::charts::wrap_words(text, width).into_iter().map(|l| l.chars().take(width).collect()).collect();
    if lines.len() > MAX_LINES {
        lines.truncate(MAX_LINES);
        if let Some(l) = lines.last_mut() {
            let keep: String = l.chars().take(width.saturating_sub(1)).collect();
            *l = format!("{keep}…");
        }
    }
    lines
}

struct Layout<'a> {
    nodes: BTreeMap<i64, &'a Node>,
    children: BTreeMap<i64, Vec<i64>>,
    x: BTreeMap<i64, f64>,
    depth: BTreeMap<i64, usize>,
    next_leaf: f64,
    /// Nodes more than [`MAX_DEPTH`] levels down: not drawn.
    too_deep: Vec<i64>,
}

/// A node being laid out: its unplaced children and the x of its first and last placed child.
struct Frame {
    id: i64,
    depth: usize,
    kids: Vec<i64>,
    next: usize,
    span: Option<(f64, f64)>,
}

impl Layout<'_> {
    /// Places the tree under `root` (children in a row, each parent centred over its first and
    /// last child) with an explicit stack, since the depth of a chain of records is the user's to
    /// choose. `seen` guards against cycles; nodes past [`MAX_DEPTH`] go to `too_deep`.
    fn place(&mut self, root: i64, seen: &mut HashSet<i64>) {
        let mut stack = vec![self.enter(root, 0, seen)];
        while let Some(top) = stack.last_mut() {
            if let Some(&kid) = top.kids.get(top.next) {
                top.next += 1;
                let depth = top.depth + 1;
                if seen.contains(&kid) {
                    continue;
                }
                if depth > MAX_DEPTH {
                    set_aside(&self.children, kid, seen, &mut self.too_deep);
                } else {
                    let frame = self.enter(kid, depth, seen);
                    stack.push(frame);
                }
                continue;
            }
            let Some(done) = stack.pop() else { break };
            let x = match done.span {
                Some((first, last)) => (first + last) / 2.0,
                None => {
                    let x = self.next_leaf;
                    self.next_leaf += BOX_W + GAP_X;
                    x
                }
            };
            self.x.insert(done.id, x);
            if let Some(parent) = stack.last_mut() {
                parent.span = Some((parent.span.map_or(x, |(first, _)| first), x));
            }
        }
    }

    fn enter(&mut self, id: i64, depth: usize, seen: &mut HashSet<i64>) -> Frame {
        seen.insert(id);
        self.depth.insert(id, depth);
        Frame { id, depth, kids: self.children.get(&id).cloned().unwrap_or_default(), next: 0, span: None }
    }
}

/// Each node's children among `nodes` (a parent outside the chart, or a node naming itself, makes
/// no edge), in the nodes' order.
fn children_of(nodes: &[Node]) -> BTreeMap<i64, Vec<i64>> {
    let ids: HashSet<i64> = nodes.iter().map(|n| n.id).collect();
    let mut children: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    for n in nodes {
        if let Some(p) = n.parent.filter(|p| ids.contains(p) && *p != n.id) {
            children.entry(p).or_default().push(n.id);
        }
    }
    children
}

/// Appends `id` and every node under it not yet `seen` to `out`, marking them seen: the part of a
/// tree past [`MAX_DEPTH`], set aside without recursion.
fn set_aside(children: &BTreeMap<i64, Vec<i64>>, id: i64, seen: &mut HashSet<i64>, out: &mut Vec<i64>) {
    let mut todo = vec![id];
    while let Some(n) = todo.pop() {
        if seen.insert(n) {
            out.push(n);
            todo.extend(children.get(&n).into_iter().flatten().copied());
        }
    }
}

/// The roots of the forest: nodes whose parent is absent from the chart (or who sit in a cycle).
fn roots(nodes: &[Node]) -> Vec<i64> {
    let ids: HashSet<i64> = nodes.iter().map(|n| n.id).collect();
    nodes.iter().filter(|n| n.parent.is_none_or(|p| !ids.contains(&p) || p == n.id)).map(|n| n.id).collect()
}

/// Levels drawn: as deep as the store lets a chain be saved. Older records may hold deeper
/// chains; nodes below this are left out of the chart (the page says how many) and listed flat.
pub(super) const MAX_DEPTH: usize = ipmo_governance::kinds::MAX_HIERARCHY_DEPTH;

/// An organogram drawn.
pub(super) struct Drawn {
    /// The SVG.
    pub svg: String,
    /// Its width in pixels (the page says when it is wider than the column and scrolls).
    pub width: f64,
    /// How many nodes sit more than [`MAX_DEPTH`] levels down and were not drawn.
    pub too_deep: usize,
}

/// The organogram as SVG, with `dashed` extra lines from one node to another.
pub(super) fn svg(id: &str, title: &str, nodes: &[Node], dashed: &[(i64, i64)]) -> Drawn {
    let mut l = Layout {
        nodes: nodes.iter().map(|n| (n.id, n)).collect(),
        children: children_of(nodes),
        x: BTreeMap::new(),
        depth: BTreeMap::new(),
        next_leaf: BOX_W / 2.0 + GAP_X,
        too_deep: Vec::new(),
    };
    let mut seen = HashSet::new();
    for r in roots(nodes) {
        l.place(r, &mut seen);
    }
    // Nodes only reachable through a cycle get a row of their own at the top.
    for n in nodes {
        if !seen.contains(&n.id) {
            l.place(n.id, &mut seen);
        }
    }
    // Only what was placed is drawn.
    let hidden: HashSet<i64> = l.too_deep.iter().copied().collect();
    let nodes: Vec<&Node> = nodes.iter().filter(|n| !hidden.contains(&n.id)).collect();
    l.nodes.retain(|id, _| !hidden.contains(id));
    let texts: BTreeMap<i64, (Vec<String>, Vec<String>)> =
        nodes.iter().map(|n| (n.id, (wrap(&n.title, TITLE_CHARS), wrap(&n.subtitle, SUB_CHARS)))).collect();
    // Every box is as tall as the tallest needs, so rows stay level.
    let box_h = texts.values().map(|(t, u)| 14.0 + 16.0 * t.len() as f64 + 14.0 * u.len() as f64).fold(56.0, f64::max);
    let width = l.next_leaf.max(BOX_W + 2.0 * GAP_X);
    let depth = l.depth.values().copied().max().unwrap_or(0);
    let height = (depth as f64 + 1.0) * (box_h + GAP_Y) + GAP_Y / 2.0;
    let pos = |id: i64| {
        (
            l.x.get(&id).copied().unwrap_or(0.0),
            GAP_Y / 2.0 + l.depth.get(&id).copied().unwrap_or(0) as f64 * (box_h + GAP_Y),
        )
    };
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg class="organogram" width="{width:.0}" viewBox="0 0 {width:.0} {height:.0}" role="group" aria-labelledby="{id}-t" xmlns="http://www.w3.org/2000/svg"><title id="{id}-t">{}</title>"#,
        esc(title)
    );
    for n in &nodes {
        if let Some(p) = n.parent.filter(|p| l.nodes.contains_key(p) && *p != n.id) {
            let ((px, py), (cx, cy)) = (pos(p), pos(n.id));
            let mid = py + box_h + GAP_Y / 2.0;
            let _ = write!(
                s,
                r##"<path d="M{px:.1} {:.1}V{mid:.1}H{cx:.1}V{cy:.1}" fill="none" stroke="#4c6272" stroke-width="1.5"/>"##,
                py + box_h
            );
        }
    }
    for (from, to) in dashed {
        if l.nodes.contains_key(from) && l.nodes.contains_key(to) {
            let ((fx, fy), (tx, ty)) = (pos(*from), pos(*to));
            // Leave from the side facing the other box: up to a box above, down to one below,
            // and over the top between two boxes of one row.
            let d = if ty < fy {
                format!(
                    "M{fx:.1} {fy:.1}C{fx:.1} {:.1} {tx:.1} {:.1} {tx:.1} {:.1}",
                    fy - GAP_Y,
                    ty + box_h + GAP_Y,
                    ty + box_h
                )
            } else if ty > fy {
                format!(
                    "M{fx:.1} {:.1}C{fx:.1} {:.1} {tx:.1} {:.1} {tx:.1} {ty:.1}",
                    fy + box_h,
                    fy + box_h + GAP_Y,
                    ty - GAP_Y
                )
            } else {
                format!(
                    "M{fx:.1} {fy:.1}C{fx:.1} {:.1} {tx:.1} {:.1} {tx:.1} {ty:.1}",
                    fy - GAP_Y * 0.6,
                    ty - GAP_Y * 0.6
                )
            };
            let _ = write!(
                s,
                r##"<path d="{d}" fill="none" stroke="#d5281b" stroke-width="1.5" stroke-dasharray="6 4"><title>accountable to</title></path>"##
            );
        }
    }
    for n in &nodes {
        let (x, y) = pos(n.id);
        let (title, sub) = &texts[&n.id];
        let _ = write!(
            s,
            r##"<a href="{}"><rect x="{:.1}" y="{y:.1}" width="{BOX_W}" height="{box_h:.1}" rx="4" fill="#fff" stroke="#005eb8" stroke-width="2"/>"##,
            esc(&n.href),
            x - BOX_W / 2.0,
        );
        for (i, line) in title.iter().enumerate() {
            let _ = write!(
                s,
                r#"<text x="{x:.1}" y="{:.1}" text-anchor="middle" class="org-title">{}</text>"#,
                y + 20.0 + 16.0 * i as f64,
                esc(line)
            );
        }
        for (i, line) in sub.iter().enumerate() {
            let _ = write!(
                s,
                r#"<text x="{x:.1}" y="{:.1}" text-anchor="middle" class="org-sub">{}</text>"#,
                y + 20.0 + 16.0 * title.len() as f64 + 2.0 + 14.0 * i as f64,
                esc(line)
            );
        }
        let _ = write!(s, "<title>{}: {}</title></a>", esc(&n.title), esc(&n.subtitle));
    }
    s.push_str("</svg>");
    Drawn { svg: s, width, too_deep: hidden.len() }
}

/// The same tree as nested lists, nested at most [`MAX_DEPTH`] deep (deeper nodes follow in a
/// flat list), built with an explicit stack like the chart.
pub(super) fn list(nodes: &[Node]) -> Markup {
    let by_id: BTreeMap<i64, &Node> = nodes.iter().map(|n| (n.id, n)).collect();
    let children = children_of(nodes);
    let item = |n: &Node| html! { a href=(n.href) { (n.title) } " — " (n.subtitle) }.into_string();
    let mut out = String::from(r#"<ul class="tree">"#);
    let mut seen = HashSet::new();
    let mut too_deep = Vec::new();
    let starts = roots(nodes).into_iter().chain(nodes.iter().map(|n| n.id));
    for start in starts {
        if !seen.insert(start) {
            continue;
        }
        out.push_str("<li>");
        out.push_str(&item(by_id[&start]));
        // (node, index of its next child, whether its <ul> is open)
        let mut stack: Vec<(i64, usize, bool)> = vec![(start, 0, false)];
        loop {
            let levels = stack.len();
            let Some((id, next, open)) = stack.last_mut() else { break };
            let kid = children.get(id).and_then(|k| k.get(*next)).copied();
            *next += 1;
            match kid {
                Some(k) if seen.contains(&k) => {}
                Some(k) if levels > MAX_DEPTH => set_aside(&children, k, &mut seen, &mut too_deep),
                Some(k) => {
                    if !*open {
                        out.push_str("<ul>");
                        *open = true;
                    }
                    seen.insert(k);
                    out.push_str("<li>");
                    out.push_str(&item(by_id[&k]));
                    stack.push((k, 0, false));
                }
                None => {
                    if *open {
                        out.push_str("</ul>");
                    }
                    out.push_str("</li>");
                    stack.pop();
                }
            }
        }
    }
    out.push_str("</ul>");
    if !too_deep.is_empty() {
        let deeper = html! {
            p { (too_deep.len()) " more sit more than " (MAX_DEPTH) " levels down:" }
            ul { @for id in &too_deep { li { (maud::PreEscaped(item(by_id[id]))) } } }
        };
        out.push_str(&deeper.into_string());
    }
    maud::PreEscaped(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: i64, parent: Option<i64>) -> Node {
        Node { id, parent, title: format!("N{id} <b>"), subtitle: "role".into(), href: format!("/gov/person/{id}") }
    }

    #[test]
    fn parents_sit_over_their_children_and_boxes_never_overlap() {
        let nodes = vec![
            node(1, None),
            node(2, Some(1)),
            node(3, Some(1)),
            node(4, Some(2)),
            node(5, Some(2)),
            node(6, Some(3)),
        ];
        let svg = svg("o", "T", &nodes, &[(6, 2)]).svg;
        let rects: Vec<(f64, f64)> = svg
            .match_indices("<rect x=\"")
            .map(|(i, _)| {
                let rest = &svg[i + 9..];
                let x: f64 = rest[..rest.find('"').unwrap()].parse().unwrap();
                let yat = rest.find("y=\"").unwrap() + 3;
                let y: f64 = rest[yat..yat + rest[yat..].find('"').unwrap()].parse().unwrap();
                (x, y)
            })
            .collect();
        assert_eq!(rects.len(), 6);
        for (i, a) in rects.iter().enumerate() {
            for b in &rects[i + 1..] {
                assert!(a.1 != b.1 || (a.0 - b.0).abs() >= BOX_W, "{a:?} overlaps {b:?}");
            }
        }
        // Node 1 is centred over 2 and 3; 2 over 4 and 5.
        let centre = |k: usize| rects[k].0 + BOX_W / 2.0;
        assert!((centre(0) - (centre(1) + centre(2)) / 2.0).abs() < 1e-9);
        assert!((centre(1) - (centre(3) + centre(4)) / 2.0).abs() < 1e-9);
        assert!(svg.contains("stroke-dasharray=\"6 4\""), "the accountability line");
        assert!(svg.contains("N1 &lt;b&gt;") && !svg.contains("<b>"), "escaped");
    }

    #[test]
    fn cycles_and_missing_parents_still_draw_every_node_once() {
        let nodes = vec![node(1, Some(2)), node(2, Some(1)), node(3, Some(99)), node(4, Some(4))];
        let svg = svg("o", "T", &nodes, &[]).svg;
        assert_eq!(svg.matches("<rect").count(), 4);
        let list = list(&nodes).into_string();
        assert_eq!(list.matches("<li>").count(), 4);
    }

    #[test]
    fn a_chain_far_deeper_than_a_stack_draws_its_top_and_counts_the_rest() {
        // 100,000 levels: recursion overflowed a worker's stack at about 6,000.
        let n = 100_000;
        let nodes: Vec<Node> = (1..=n).map(|i| node(i, (i > 1).then(|| i - 1))).collect();
        let drawn = std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(move || {
                let d = svg("o", "T", &nodes, &[]);
                (d.svg.matches("<rect").count(), d.too_deep, list(&nodes).into_string())
            })
            .unwrap()
            .join()
            .unwrap();
        assert_eq!((drawn.0, drawn.1), (MAX_DEPTH + 1, n as usize - MAX_DEPTH - 1));
        assert_eq!(drawn.2.matches("<ul>").count(), MAX_DEPTH + 1, "nested to the limit, then one flat list");
        assert_eq!(drawn.2.matches("<li>").count(), n as usize);
        assert!(
            drawn.2.contains(&format!("{} more sit more than {MAX_DEPTH} levels down", n as usize - MAX_DEPTH - 1))
        );
    }
}
