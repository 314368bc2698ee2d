//! `--plot FILE.svg`: panels drawn by hand (no plotting dependency): a histogram of the
//! profile's lead times before the first `SepsisLabel`, the alert burden (alerts per
//! patient-day) of every rule, overlaid with its false alerts (per patient-day of the stays
//! never labelled septic), and, when the sepsis model ran on labelled stays, its calibration
//! curve (mean risk against the share of rows labelled septic, per tenth of the rows).

use std::fmt::Write as _;

use crate::Report;

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
    let panels = if report.screen.is_some() { 3.0 } else { 2.0 };
    let w = 40.0 + panels * (PANEL + 60.0) - 20.0;
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{H}" viewBox="0 0 {w} {H}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="{w}" height="{H}" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="20" y="22" font-size="15">vigil replay: profile {} ({} stays)</text>"#,
        escape(&report.profile),
        report.stays
    );
    lead_histogram(&mut s, &report.lead_hours, 40.0);
    burden_bars(&mut s, report, 40.0 + PANEL + 60.0);
    if let Some(screen) = &report.screen {
        calibration_curve(&mut s, screen, 40.0 + 2.0 * (PANEL + 60.0));
    }
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

/// Mean risk (x) against the share of rows labelled septic (y), one point per tenth of the
/// rows, on equal axes with the diagonal a perfectly calibrated risk would follow.
fn calibration_curve(s: &mut String, screen: &crate::report::ScreenReport, x0: f64) {
    let top = screen
        .calibration
        .iter()
        .map(|b| b.mean_risk.max(b.observed))
        .fold(0.0f64, f64::max);
    // The axes end at the next tenth of a power of ten above the largest figure.
    let step = 10f64.powf(top.max(1e-3).log10().floor());
    let max = ((top / step).floor() + 1.0) * step;
    axis(
        s,
        x0,
        &format!("Calibration of {}", screen.model),
        "share of rows labelled septic",
        max,
    );
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{}" text-anchor="middle">mean risk, per tenth of the rows (0 to {max})</text>"#,
        x0 + PANEL / 2.0,
        BOTTOM + 30.0
    );
    let x = |v: f64| x0 + PANEL * v / max;
    let y = |v: f64| BOTTOM - (BOTTOM - TOP) * v / max;
    let _ = writeln!(
        s,
        r##"<line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#999" stroke-dasharray="4 4"/>"##,
        x(0.0),
        y(0.0),
        x(max),
        y(max)
    );
    let points: Vec<String> = screen
        .calibration
        .iter()
        .map(|b| format!("{:.1},{:.1}", x(b.mean_risk), y(b.observed)))
        .collect();
    let _ = writeln!(
        s,
        r##"<polyline points="{}" fill="none" stroke="#3b7dd8" stroke-width="2"/>"##,
        points.join(" ")
    );
    for b in &screen.calibration {
        let _ = writeln!(
            s,
            r##"<circle cx="{:.1}" cy="{:.1}" r="3.5" fill="#3b7dd8"><title>{} rows: mean risk {:.4}, labelled septic {:.4}</title></circle>"##,
            x(b.mean_risk),
            y(b.observed),
            b.rows,
            b.mean_risk,
            b.observed
        );
    }
}
