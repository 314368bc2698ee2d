//! `--plot FILE.svg`, drawn with `plotters`: a histogram of the profile's lead times before the
//! first `SepsisLabel`, the alert burden (alerts per patient-day) of every rule the profile
//! runs beside its false alerts (per patient-day of the stays never labelled septic), and,
//! when the sepsis model ran on labelled stays, its calibration curve (mean risk against the
//! share of rows labelled septic, per tenth of the rows).

use plotters::prelude::*;

use crate::Report;
use crate::report::ScreenReport;

/// One panel's size in pixels; the canvas is as wide as its panels.
const PANEL: (u32, u32) = (560, 460);
const FONT: &str = "sans-serif";
const BLUE: RGBColor = RGBColor(0x3b, 0x7d, 0xd8);
const GREEN: RGBColor = RGBColor(0x4e, 0x8a, 0x3e);
const RED: RGBColor = RGBColor(0xc8, 0x46, 0x2e);
const GREY: RGBColor = RGBColor(0x66, 0x66, 0x66);

/// Why the plot could not be drawn.
#[derive(Debug, thiserror::Error)]
#[error("cannot draw the plot: {0}")]
pub struct PlotError(String);

impl<E: std::error::Error + Send + Sync> From<DrawingAreaErrorKind<E>> for PlotError {
    fn from(e: DrawingAreaErrorKind<E>) -> Self {
        Self(e.to_string())
    }
}

type Panel<'a> = DrawingArea<SVGBackend<'a>, plotters::coord::Shift>;

/// The SVG document for `report`.
///
/// # Errors
/// What `plotters` reports (it draws into memory, so in practice nothing).
pub fn svg(report: &Report) -> Result<String, PlotError> {
    let mut out = String::new();
    {
        let panels = if report.screen.is_some() { 3 } else { 2 };
        let root =
            SVGBackend::with_string(&mut out, (PANEL.0 * panels, PANEL.1 + 40)).into_drawing_area();
        root.fill(&WHITE)?;
        let root = root.titled(
            &format!(
                "vigil replay: profile {} ({} stays)",
                report.profile, report.stays
            ),
            (FONT, 20),
        )?;
        let areas = root.split_evenly((1, panels as usize));
        lead_histogram(&areas[0], &report.lead_hours)?;
        burden_bars(&areas[1], report)?;
        if let Some(screen) = &report.screen {
            calibration_curve(&areas[2], screen)?;
        }
        root.present()?;
    }
    Ok(out)
}

/// A panel's chart with its caption, the same margins as the others, and `y_labels` pixels
/// for the vertical axis's labels.
fn frame<'a, 'b>(
    area: &'a Panel<'b>,
    caption: &str,
    y_labels: u32,
) -> ChartBuilder<'a, 'b, SVGBackend<'b>> {
    let mut builder = ChartBuilder::on(area);
    builder
        .caption(caption, (FONT, 16))
        .margin(16)
        // Room for half of the last tick label beyond the plotting area.
        .margin_right(40)
        .x_label_area_size(44)
        .y_label_area_size(y_labels);
    builder
}

/// A tick label: the figure to 4 decimals, without trailing zeros (`2000`, `0.25`).
fn tick(v: &f64) -> String {
    format!("{}", (v * 1e4).round() / 1e4)
}

/// The chart's series named in a box at `at`.
fn legend<'a, X: Ranged, Y: Ranged>(
    chart: &mut ChartContext<'a, SVGBackend<'a>, Cartesian2d<X, Y>>,
    at: SeriesLabelPosition,
) -> Result<(), PlotError> {
    chart
        .configure_series_labels()
        .position(at)
        .background_style(WHITE.mix(0.9))
        .border_style(GREY)
        .label_font((FONT, 12))
        .draw()?;
    Ok(())
}

/// The first round figure at least 5 % above `top` (the largest figure drawn), so that the
/// tallest bar or point stays clear of the frame.
fn axis_end(top: f64) -> f64 {
    let top = top.max(1e-3) * 1.05;
    let step = 10f64.powf(top.log10().floor());
    [1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0]
        .iter()
        .map(|m| m * step)
        .find(|&end| end >= top)
        .unwrap_or(10.0 * step)
}

/// Septic stays per 2-hour bin of lead time (0-2 h, 2-4 h, ..., the last bin 46 h and more).
fn lead_histogram(area: &Panel, leads: &[f64]) -> Result<(), PlotError> {
    const BINS: usize = 24;
    let mut counts = [0u32; BINS];
    for &l in leads {
        let bin = ((l.max(0.0) / 2.0) as usize).min(BINS - 1);
        counts[bin] += 1;
    }
    let top = f64::from(counts.iter().copied().max().unwrap_or(0).max(1));
    // Stays are counted: the axis ends on a whole number.
    let end = axis_end(top).ceil() as u32;
    let mut chart = frame(area, "Lead time before the first SepsisLabel", 56)
        .build_cartesian_2d(0.0..(2 * BINS) as f64, 0..end)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .light_line_style(TRANSPARENT)
        .x_labels(13)
        .x_desc("hours from the first alert to the label (the last bin: 46 h or more)")
        .y_desc("septic stays")
        .x_label_formatter(&|v| format!("{v:.0}"))
        .draw()?;
    chart
        .draw_series(counts.iter().enumerate().map(|(i, &c)| {
            let x = (2 * i) as f64;
            Rectangle::new([(x + 0.1, 0), (x + 1.9, c)], BLUE.filled())
        }))?
        .label(match leads.len() {
            1 => "1 septic stay alerted before its label".to_string(),
            n => format!("{n} septic stays alerted before their label"),
        })
        .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], BLUE.filled()));
    legend(&mut chart, SeriesLabelPosition::UpperRight)?;
    Ok(())
}

/// One row per rule the profile runs, and one for the profile as a whole: its alerts per
/// patient-day, and beside them its false alerts when the stays are labelled. Rules the
/// profile switches off are named under the chart, not drawn as empty rows.
fn burden_bars(area: &Panel, report: &Report) -> Result<(), PlotError> {
    let rows: Vec<_> = report
        .rules
        .iter()
        .filter(|r| r.enabled)
        .chain(std::iter::once(&report.overall))
        .collect();
    let off: Vec<&str> = report
        .rules
        .iter()
        .filter(|r| !r.enabled)
        .map(|r| r.rule.as_str())
        .collect();
    let labelled = rows
        .iter()
        .any(|r| r.false_alerts_per_patient_day.is_some());
    let top = rows
        .iter()
        .map(|r| {
            r.alerts_per_patient_day
                .unwrap_or(0.0)
                .max(r.false_alerts_per_patient_day.unwrap_or(0.0))
        })
        .fold(0.0f64, f64::max);
    let longest = rows.iter().map(|r| r.rule.len()).max().unwrap_or(8);
    let (area, note) = area.split_vertically(PANEL.1 - 3 * NOTE_LINE);
    // Rows from the top, the profile last, in tenths of a row (plotters formats integer axes
    // itself); one empty row above them holds the legend.
    let n = rows.len() as i32;
    let centre = |i: usize| 10 * (n - i as i32) - 5;
    // The naive font metrics plotters uses without a font file: 0.7 em a character.
    let names = (longest as f64 * 12.0 * 0.7) as u32 + 16;
    let mut chart = frame(&area, "Alert burden", names).build_cartesian_2d(
        0.0..axis_end(top),
        (0..10 * n + 12).with_key_points((0..rows.len()).map(centre).collect()),
    )?;
    let name = |v: &i32| {
        let i = (10 * n - 5 - v) / 10;
        usize::try_from(i)
            .ok()
            .and_then(|i| rows.get(i))
            .map(|r| r.rule.clone())
            .unwrap_or_default()
    };
    chart
        .configure_mesh()
        .disable_y_mesh()
        .light_line_style(TRANSPARENT)
        .x_desc("alerts per patient-day")
        .x_label_formatter(&tick)
        .y_label_formatter(&name)
        .draw()?;
    let bar = |i: usize, v: f64, lo: i32, hi: i32| [(0.0, centre(i) + lo), (v, centre(i) + hi)];
    let (alerts_lo, alerts_hi) = if labelled { (0, 4) } else { (-3, 3) };
    chart
        .draw_series(rows.iter().enumerate().map(|(i, r)| {
            let colour = if i + 1 == rows.len() { RED } else { GREEN };
            let v = r.alerts_per_patient_day.unwrap_or(0.0);
            Rectangle::new(bar(i, v, alerts_lo, alerts_hi), colour.filled())
        }))?
        .label("all alerts (the profile in red)")
        .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], GREEN.filled()));
    if labelled {
        chart
            .draw_series(rows.iter().enumerate().map(|(i, r)| {
                let v = r.false_alerts_per_patient_day.unwrap_or(0.0);
                Rectangle::new(bar(i, v, -4, 0), GREY.filled())
            }))?
            .label("false: per patient-day of stays never labelled septic")
            .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], GREY.filled()));
    }
    legend(&mut chart, SeriesLabelPosition::UpperRight)?;
    if !off.is_empty() {
        let style = (FONT, 12).into_font().color(&GREY);
        for (k, line) in wrap(&format!("off in this profile: {}", off.join(", ")))
            .iter()
            .enumerate()
        {
            note.draw(&Text::new(
                line.as_str(),
                (16, k as i32 * NOTE_LINE as i32),
                &style,
            ))?;
        }
    }
    Ok(())
}

/// Height of a line of the note under the burden chart.
const NOTE_LINE: u32 = 15;

/// `text` in lines of at most 80 characters (a panel holds about 90 at 12 px), broken at
/// spaces.
fn wrap(text: &str) -> Vec<String> {
    let mut lines = vec![String::new()];
    for word in text.split(' ') {
        let line = lines.last_mut().expect("one line at least");
        if !line.is_empty() && line.len() + 1 + word.len() > 80 {
            lines.push(word.to_string());
        } else {
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
    }
    lines
}

/// Mean risk (x) against the share of rows labelled septic (y), one point per tenth of the
/// rows, on equal axes with the diagonal a perfectly calibrated risk would follow.
fn calibration_curve(area: &Panel, screen: &ScreenReport) -> Result<(), PlotError> {
    let top = screen
        .calibration
        .iter()
        .map(|b| b.mean_risk.max(b.observed))
        .fold(0.0f64, f64::max);
    let end = axis_end(top);
    let mut chart = frame(area, &format!("Calibration of {}", screen.model), 56)
        .build_cartesian_2d(0.0..end, 0.0..end)?;
    chart
        .configure_mesh()
        .light_line_style(TRANSPARENT)
        .x_desc("mean risk, per tenth of the rows")
        .y_desc("share of rows labelled septic")
        .x_label_formatter(&tick)
        .y_label_formatter(&tick)
        .draw()?;
    chart
        .draw_series(DashedLineSeries::new(
            [(0.0, 0.0), (end, end)],
            6,
            4,
            GREY.stroke_width(1),
        ))?
        .label("perfectly calibrated")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 14, y)], GREY));
    let points: Vec<(f64, f64)> = screen
        .calibration
        .iter()
        .map(|b| (b.mean_risk, b.observed))
        .collect();
    chart
        .draw_series(LineSeries::new(
            points.iter().copied(),
            BLUE.stroke_width(2),
        ))?
        .label(format!("{} (a dot per tenth of the rows)", screen.model))
        .legend(|(x, y)| PathElement::new([(x, y), (x + 14, y)], BLUE.stroke_width(2)));
    chart.draw_series(points.iter().map(|&p| Circle::new(p, 4, BLUE.filled())))?;
    legend(&mut chart, SeriesLabelPosition::UpperLeft)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{axis_end, wrap};

    #[test]
    fn a_long_note_is_broken_at_spaces_into_lines_of_80_characters() {
        let names = ["news2.single3"; 12].join(", ");
        let text = format!("off in this profile: {names}");
        let lines = wrap(&text);
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert!(lines.iter().all(|l| l.len() <= 80), "{lines:?}");
        assert_eq!(lines.join(" "), text);
        assert_eq!(wrap("short"), ["short"]);
    }

    #[test]
    fn an_axis_ends_on_the_first_round_figure_5_percent_above_the_largest() {
        for (top, end) in [
            (0.0, 0.0012),
            (0.3, 0.4),
            (0.95, 1.0),
            (0.96, 1.2),
            (1.0, 1.2),
            (137.0, 150.0),
            (480.0, 600.0),
            (952.0, 1000.0),
            (953.0, 1200.0),
        ] {
            assert!(
                (axis_end(top) - end).abs() < 1e-9 * end,
                "{top}: {}",
                axis_end(top)
            );
        }
    }
}
