//! Hand-rolled SVG charts (no dependency): line charts and grouped bars.

use std::fmt::Write as _;

/// A named series of (x, y) points.
#[derive(Debug, Clone)]
pub struct Series {
    /// The series name shown in the legend.
    pub name: String,
    /// The (x, y) points of the series, in x order.
    pub points: Vec<(f64, f64)>,
}

const COLORS: &[&str] = &["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd"];
const W: f64 = 720.0;
const H: f64 = 400.0;
const L: f64 = 80.0;
const R: f64 = 170.0;
const T: f64 = 40.0;
const B: f64 = 60.0;

fn nice_max(v: f64) -> f64 {
    if !(v.is_finite() && v > 0.0) {
        return 1.0;
    }
    let p = 10f64.powf(v.log10().floor());
    for m in [1.0, 2.0, 2.5, 5.0, 10.0] {
        if v <= m * p {
            return m * p;
        }
    }
    10.0 * p
}

fn fmt_num(v: f64) -> String {
    if v.abs() >= 1_000_000.0 {
        format!("{:.1}M", v / 1_000_000.0)
    } else if v.abs() >= 10_000.0 {
        format!("{:.0}k", v / 1000.0)
    } else if v.abs() >= 1000.0 {
        format!("{:.1}k", v / 1000.0)
    } else if v.abs() >= 10.0 || v == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

fn esc(t: &str) -> String {
    t.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

fn header(s: &mut String, title: &str, xlabel: &str, ylabel: &str) {
    let (title, xlabel, ylabel) = (esc(title), esc(xlabel), esc(ylabel));
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="{}" y="22" text-anchor="middle" font-size="15" font-weight="bold">{title}</text>
<text x="{}" y="{}" text-anchor="middle">{xlabel}</text>
<text x="18" y="{}" text-anchor="middle" transform="rotate(-90 18 {})">{ylabel}</text>
"#,
        (L + W - R) / 2.0,
        (L + W - R) / 2.0,
        H - 12.0,
        (T + H - B) / 2.0,
        (T + H - B) / 2.0
    );
}

fn y_axis(s: &mut String, ymax: f64) {
    let ph = H - T - B;
    for i in 0..=5 {
        let v = ymax * f64::from(i) / 5.0;
        let y = H - B - ph * f64::from(i) / 5.0;
        let _ = writeln!(
            s,
            r##"<line x1="{L}" x2="{}" y1="{y}" y2="{y}" stroke="#ddd"/><text x="{}" y="{}" text-anchor="end">{}</text>"##,
            W - R,
            L - 6.0,
            y + 4.0,
            fmt_num(v)
        );
    }
    let _ = writeln!(
        s,
        r#"<line x1="{L}" x2="{L}" y1="{T}" y2="{}" stroke="black"/><line x1="{L}" x2="{}" y1="{}" y2="{}" stroke="black"/>"#,
        H - B,
        W - R,
        H - B,
        H - B
    );
}

fn legend(s: &mut String, names: &[String]) {
    for (i, n) in names.iter().enumerate() {
        let y = T + 10.0 + 20.0 * i as f64;
        let c = COLORS[i % COLORS.len()];
        let _ = writeln!(
            s,
            r#"<rect x="{}" y="{}" width="14" height="10" fill="{c}"/><text x="{}" y="{}">{n}</text>"#,
            W - R + 14.0,
            y - 9.0,
            W - R + 34.0,
            y
        );
    }
}

/// A line chart; `x_labels` names the x positions (categorical, evenly spaced).
pub fn lines(title: &str, xlabel: &str, ylabel: &str, x_labels: &[String], series: &[Series]) -> String {
    let mut s = String::new();
    header(&mut s, title, xlabel, ylabel);
    let ymax = nice_max(series.iter().flat_map(|se| se.points.iter().map(|p| p.1)).filter(|v| v.is_finite()).fold(0.0, f64::max));
    y_axis(&mut s, ymax);
    let pw = W - L - R;
    let ph = H - T - B;
    let n = x_labels.len().max(2);
    let xpos = |i: f64| L + 20.0 + (pw - 40.0) * i / (n - 1) as f64;
    for (i, lab) in x_labels.iter().enumerate() {
        let _ = writeln!(s, r#"<text x="{}" y="{}" text-anchor="middle">{lab}</text>"#, xpos(i as f64), H - B + 18.0);
    }
    for (k, se) in series.iter().enumerate() {
        let c = COLORS[k % COLORS.len()];
        let pts: Vec<String> = se
            .points
            .iter()
            .filter(|p| p.1.is_finite())
            .map(|&(x, y)| format!("{:.1},{:.1}", xpos(x), H - B - ph * (y / ymax).min(1.0)))
            .collect();
        let _ = writeln!(s, r#"<polyline fill="none" stroke="{c}" stroke-width="2" points="{}"/>"#, pts.join(" "));
        for p in &pts {
            let mut it = p.split(',');
            let (x, y) = (it.next().unwrap_or("0"), it.next().unwrap_or("0"));
            let _ = writeln!(s, r#"<circle cx="{x}" cy="{y}" r="3" fill="{c}"/>"#);
        }
    }
    legend(&mut s, &series.iter().map(|se| se.name.clone()).collect::<Vec<_>>());
    s.push_str("</svg>\n");
    s
}

/// Grouped bars: one group per category, one bar per series (series[k].points[i].1 is the value for category i).
pub fn bars(title: &str, xlabel: &str, ylabel: &str, categories: &[String], series: &[Series]) -> String {
    let mut s = String::new();
    header(&mut s, title, xlabel, ylabel);
    let ymax = nice_max(series.iter().flat_map(|se| se.points.iter().map(|p| p.1)).filter(|v| v.is_finite()).fold(0.0, f64::max));
    y_axis(&mut s, ymax);
    let pw = W - L - R;
    let ph = H - T - B;
    let gw = pw / categories.len().max(1) as f64;
    let bw = (gw * 0.8) / series.len().max(1) as f64;
    for (i, cat) in categories.iter().enumerate() {
        let gx = L + gw * i as f64 + gw * 0.1;
        let _ = writeln!(s, r#"<text x="{}" y="{}" text-anchor="middle">{cat}</text>"#, gx + gw * 0.4, H - B + 18.0);
        for (k, se) in series.iter().enumerate() {
            let v = se.points.get(i).map(|p| p.1).unwrap_or(0.0);
            let v = if v.is_finite() { v } else { 0.0 };
            let h = ph * (v / ymax).min(1.0);
            let x = gx + bw * k as f64;
            let c = COLORS[k % COLORS.len()];
            let _ = writeln!(
                s,
                r#"<rect x="{x:.1}" y="{:.1}" width="{:.1}" height="{h:.1}" fill="{c}"/><text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="10">{}</text>"#,
                H - B - h,
                bw - 2.0,
                x + bw / 2.0 - 1.0,
                H - B - h - 4.0,
                fmt_num(v)
            );
        }
    }
    legend(&mut s, &series.iter().map(|se| se.name.clone()).collect::<Vec<_>>());
    s.push_str("</svg>\n");
    s
}
