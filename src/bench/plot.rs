//! A hand-written SVG: the latency distributions (CDFs, from each order's scheduled start) and the
//! offered, completed and searchable orders per second over the whole run, one mark per phase.

use std::fmt::Write;

const COLORS: [&str; 6] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
];

/// `cdfs`: (label, latencies in ms); `series`: (label, points (seconds, value)); `marks`: where each
/// phase starts (seconds) and its label.
pub fn svg(
    title: &str,
    cdfs: &[(&str, Vec<f64>)],
    series: &[(&str, Vec<(f64, f64)>)],
    marks: &[(f64, String)],
) -> String {
    let (w, h) = (960.0, 760.0);
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{}" y="22" text-anchor="middle" font-size="15">{}</text>"#,
        w / 2.0,
        escape(title)
    );

    // Panel 1: latency CDFs, x in ms (linear up to the largest p99), y = fraction.
    let x_max = cdfs
        .iter()
        .filter_map(|(_, v)| p99(v))
        .fold(1.0_f64, f64::max)
        * 1.1;
    let panel = Panel {
        x0: 70.0,
        y0: 50.0,
        w: 680.0,
        h: 290.0,
        x_max,
        y_max: 1.0,
    };
    panel.axes(&mut s, "latency (ms)", "fraction of orders");
    for (i, (label, values)) in cdfs.iter().enumerate() {
        let mut sorted = values.clone();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len().max(1) as f64;
        let points: Vec<(f64, f64)> = sorted
            .iter()
            .enumerate()
            .map(|(k, v)| (v.min(x_max), (k + 1) as f64 / n))
            .collect();
        panel.polyline(&mut s, &points, COLORS[i % COLORS.len()]);
        legend(
            &mut s,
            770.0,
            70.0 + 18.0 * i as f64,
            COLORS[i % COLORS.len()],
            label,
        );
    }

    // Panel 2: throughput over time.
    let x_max = series
        .iter()
        .flat_map(|(_, p)| p.iter().map(|(x, _)| *x))
        .fold(1.0_f64, f64::max);
    let y_max = series
        .iter()
        .flat_map(|(_, p)| p.iter().map(|(_, y)| *y))
        .fold(1.0_f64, f64::max)
        * 1.15;
    let panel = Panel {
        x0: 70.0,
        y0: 420.0,
        w: 680.0,
        h: 290.0,
        x_max,
        y_max,
    };
    panel.axes(
        &mut s,
        "seconds since the fixed-rate run's first scheduled start",
        "orders per second",
    );
    for (t, label) in marks {
        let (x, _) = panel.at(*t, 0.0);
        let _ = writeln!(
            s,
            r##"<line x1="{x:.1}" y1="{}" x2="{x:.1}" y2="{}" stroke="#999" stroke-dasharray="4 3"/><text x="{:.1}" y="{}" font-size="10">{}</text>"##,
            panel.y0,
            panel.y0 + panel.h,
            x + 3.0,
            panel.y0 + 12.0,
            escape(label)
        );
    }
    for (i, (label, points)) in series.iter().enumerate() {
        panel.polyline(&mut s, points, COLORS[i % COLORS.len()]);
        legend(
            &mut s,
            770.0,
            440.0 + 18.0 * i as f64,
            COLORS[i % COLORS.len()],
            label,
        );
    }
    s.push_str("</svg>\n");
    s
}

fn p99(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    Some(sorted[((sorted.len() as f64 * 0.99).ceil() as usize).clamp(1, sorted.len()) - 1])
}

struct Panel {
    x0: f64,
    y0: f64,
    w: f64,
    h: f64,
    x_max: f64,
    y_max: f64,
}

impl Panel {
    fn at(&self, x: f64, y: f64) -> (f64, f64) {
        (
            self.x0 + self.w * (x / self.x_max).clamp(0.0, 1.0),
            self.y0 + self.h - self.h * (y / self.y_max).clamp(0.0, 1.0),
        )
    }

    fn axes(&self, s: &mut String, x_label: &str, y_label: &str) {
        let (x0, y0, w, h) = (self.x0, self.y0, self.w, self.h);
        let _ = writeln!(
            s,
            r##"<rect x="{x0}" y="{y0}" width="{w}" height="{h}" fill="none" stroke="#444"/>"##
        );
        for i in 0..=5 {
            let f = i as f64 / 5.0;
            let x = x0 + w * f;
            let y = y0 + h - h * f;
            let _ = writeln!(
                s,
                r##"<line x1="{x}" y1="{y0}" x2="{x}" y2="{}" stroke="#ddd"/><text x="{x}" y="{}" text-anchor="middle">{}</text>"##,
                y0 + h,
                y0 + h + 16.0,
                tick(self.x_max * f)
            );
            let _ = writeln!(
                s,
                r##"<line x1="{x0}" y1="{y}" x2="{}" y2="{y}" stroke="#ddd"/><text x="{}" y="{}" text-anchor="end">{}</text>"##,
                x0 + w,
                x0 - 6.0,
                y + 4.0,
                tick(self.y_max * f)
            );
        }
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}" text-anchor="middle">{}</text>"#,
            x0 + w / 2.0,
            y0 + h + 34.0,
            escape(x_label)
        );
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}" text-anchor="middle" transform="rotate(-90 {} {})">{}</text>"#,
            x0 - 48.0,
            y0 + h / 2.0,
            x0 - 48.0,
            y0 + h / 2.0,
            escape(y_label)
        );
    }

    fn polyline(&self, s: &mut String, points: &[(f64, f64)], color: &str) {
        let coords: Vec<String> = points
            .iter()
            .map(|(x, y)| {
                let (px, py) = self.at(*x, *y);
                format!("{px:.1},{py:.1}")
            })
            .collect();
        let _ = writeln!(
            s,
            r#"<polyline fill="none" stroke="{color}" stroke-width="2" points="{}"/>"#,
            coords.join(" ")
        );
    }
}

fn legend(s: &mut String, x: f64, y: f64, color: &str, label: &str) {
    let _ = writeln!(
        s,
        r#"<line x1="{x}" y1="{y}" x2="{}" y2="{y}" stroke="{color}" stroke-width="3"/><text x="{}" y="{}">{}</text>"#,
        x + 20.0,
        x + 26.0,
        y + 4.0,
        escape(label)
    );
}

fn tick(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
