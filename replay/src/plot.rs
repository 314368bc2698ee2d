//! `--plot FILE.svg`: two panels drawn by hand (no plotting dependency): a histogram of the
//! profile's lead times before the first `SepsisLabel`, and the alert burden (alerts per
//! patient-day) of every rule, overlaid with its false alerts (per patient-day of the stays
//! never labelled septic).

use std::fmt::Write as _;

use crate::Report;

const W: f64 = 900.0;
const H: f64 = 380.0;
const PANEL: f64 = 400.0;
const TOP: f64 = 50.0;
const BOTTOM: f64 = 320.0;

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The SVG document for `report`.
pub fn svg(report: &Report) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="{W}" height="{H}" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="20" y="22" font-size="15">vigil replay: profile {} ({} stays)</text>"#,
        escape(&report.profile),
        report.stays
    );
    lead_histogram(&mut s, &report.lead_hours, 40.0);
    burden_bars(&mut s, report, 40.0 + PANEL + 60.0);
    s.push_str("</svg>\n");
    s
}

fn axis(s: &mut String, x0: f64, title: &str, y_label: &str, max: f64) {
    let _ = writeln!(
        s,
        r#"<text x="{x0}" y="{}" font-weight="bold">{}</text>"#,
        TOP - 12.0,
        escape(title)
    );
    let _ = writeln!(
        s,
        r#"<line x1="{x0}" y1="{BOTTOM}" x2="{}" y2="{BOTTOM}" stroke="black"/><line x1="{x0}" y1="{TOP}" x2="{x0}" y2="{BOTTOM}" stroke="black"/>"#,
        x0 + PANEL
    );
    let _ = writeln!(
        s,
        r#"<text x="{}" y="{}" text-anchor="end">{max:.1}</text><text x="{}" y="{BOTTOM}" text-anchor="end">0</text>"#,
        x0 - 4.0,
        TOP + 4.0,
        x0 - 4.0
    );
    let _ = writeln!(
        s,
        r#"<text x="{}" y="{}" transform="rotate(-90 {} {})" text-anchor="middle">{}</text>"#,
        x0 - 26.0,
        (TOP + BOTTOM) / 2.0,
        x0 - 26.0,
        (TOP + BOTTOM) / 2.0,
        escape(y_label)
    );
}

/// Stays per 2-hour bin of lead time (0-2 h, 2-4 h, ..., 46 h and more).
fn lead_histogram(s: &mut String, leads: &[f64], x0: f64) {
    const BINS: usize = 24;
    let mut counts = [0usize; BINS];
    for &l in leads {
        let bin = ((l.max(0.0) / 2.0) as usize).min(BINS - 1);
        counts[bin] += 1;
    }
    let max = counts.iter().copied().max().unwrap_or(0).max(1) as f64;
    axis(
        s,
        x0,
        "Lead time before first SepsisLabel (h)",
        "septic stays",
        max,
    );
    let bw = PANEL / BINS as f64;
    for (i, &c) in counts.iter().enumerate() {
        let h = (BOTTOM - TOP) * c as f64 / max;
        let _ = writeln!(
            s,
            r##"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="#3b7dd8"/>"##,
            x0 + i as f64 * bw + 1.0,
            BOTTOM - h,
            bw - 2.0,
            h
        );
        if i % 4 == 0 {
            let _ = writeln!(
                s,
                r#"<text x="{:.1}" y="{}" text-anchor="middle">{}</text>"#,
                x0 + i as f64 * bw,
                BOTTOM + 16.0,
                i * 2
            );
        }
    }
    if leads.is_empty() {
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}" text-anchor="middle">no septic stay alerted before its label</text>"#,
            x0 + PANEL / 2.0,
            (TOP + BOTTOM) / 2.0
        );
    }
}

fn burden_bars(s: &mut String, report: &Report, x0: f64) {
    let rows: Vec<(&str, f64, Option<f64>)> = report
        .rules
        .iter()
        .chain(std::iter::once(&report.overall))
        .map(|r| {
            (
                r.rule.as_str(),
                r.alerts_per_patient_day.unwrap_or(0.0),
                r.false_alerts_per_patient_day,
            )
        })
        .collect();
    let max = rows
        .iter()
        .map(|r| r.1.max(r.2.unwrap_or(0.0)))
        .fold(0.0f64, f64::max)
        .max(0.1);
    axis(s, x0, "Alert burden", "alerts per patient-day", max);
    if rows.iter().any(|r| r.2.is_some()) {
        let _ = writeln!(
            s,
            r##"<rect x="{:.1}" y="{}" width="10" height="10" fill="#333" fill-opacity="0.45"/><text x="{:.1}" y="{}" font-size="10">false: per patient-day of stays never labelled septic</text>"##,
            x0 + PANEL - 250.0,
            TOP - 22.0,
            x0 + PANEL - 236.0,
            TOP - 13.0
        );
    }
    let bw = PANEL / rows.len() as f64;
    for (i, (rule, v, false_part)) in rows.iter().enumerate() {
        let h = (BOTTOM - TOP) * v / max;
        let x = x0 + i as f64 * bw;
        let fill = if *rule == "profile" {
            "#d8543b"
        } else {
            "#6a9f58"
        };
        let _ = writeln!(
            s,
            r#"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{fill}"/>"#,
            x + 4.0,
            BOTTOM - h,
            bw - 8.0,
            h
        );
        if let Some(f) = false_part {
            let fh = (BOTTOM - TOP) * f / max;
            let _ = writeln!(
                s,
                r##"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="#333" fill-opacity="0.45"/>"##,
                x + 4.0,
                BOTTOM - fh,
                bw - 8.0,
                fh
            );
        }
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{}" transform="rotate(35 {:.1} {})" font-size="10">{}</text>"#,
            x + 6.0,
            BOTTOM + 12.0,
            x + 6.0,
            BOTTOM + 12.0,
            escape(rule)
        );
    }
}
