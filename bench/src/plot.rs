//! The PNG: pause and resume time against memory size, with E2B's published figures and our
//! targets as reference lines.
//!
//! plotters with its bitmap backend and ab_glyph text rendering: pure Rust, nothing to link (its
//! default `ttf` feature needs fontconfig and freetype). The one thing taken from the system is
//! a TTF font file, read at run time (Debian's fonts-dejavu-core).

use anyhow::{anyhow, Context};
use plotters::prelude::*;
use std::path::Path;

/// `f` sampled at `n` points spread evenly on a log scale between `lo` and `hi`, for reference
/// lines that are not straight on log axes.
pub fn sample(lo: f64, hi: f64, n: usize, f: impl Fn(f64) -> f64) -> Vec<(f64, f64)> {
    (0..n).map(|i| lo * (hi / lo).powf(i as f64 / (n - 1).max(1) as f64)).map(|x| (x, f(x))).collect()
}

/// 1, 2 and 5 times a power of ten get a label, the rest of the log axis's ticks none (they
/// would run into each other).
fn round_label(v: f64) -> String {
    let mag = 10f64.powf(v.log10().floor());
    let lead = (v / mag).round();
    if [1.0, 2.0, 5.0].contains(&lead) && ((v / mag) - lead).abs() < 0.01 {
        format!("{v:.0}")
    } else {
        String::new()
    }
}

/// One line of the plot: (memory MiB, ms) points.
pub struct Series {
    pub label: String,
    pub points: Vec<(f64, f64)>,
    pub color: RGBColor,
    pub dashed: bool,
}

pub struct Panel {
    pub title: String,
    pub series: Vec<Series>,
}

pub const FONT_CANDIDATES: &[&str] = &["/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", "/usr/share/fonts/TTF/DejaVuSans.ttf"];

fn register_font() -> anyhow::Result<()> {
    let path = FONT_CANDIDATES
        .iter()
        .find(|p| Path::new(p).exists())
        .ok_or_else(|| anyhow!("no font for the plot's text; install one: apt-get install fonts-dejavu-core"))?;
    let bytes = std::fs::read(path).with_context(|| format!("read {path}"))?;
    // plotters keeps fonts for the life of the process.
    plotters::style::register_font("sans-serif", FontStyle::Normal, Box::leak(bytes.into_boxed_slice()))
        .map_err(|_| anyhow!("{path} is not a usable font"))
}

/// Draw the panels side by side, both axes log-scaled (sizes double from point to point, and a
/// cost proportional to size is a straight line), into `out`.
pub fn draw(out: &Path, panels: &[Panel], (x_min, x_max): (f64, f64), caption: &str) -> anyhow::Result<()> {
    register_font()?;
    let root = BitMapBackend::new(out, (720 * panels.len() as u32, 560)).into_drawing_area();
    root.fill(&WHITE)?;
    let (top, body) = root.split_vertically(36);
    top.titled(caption, ("sans-serif", 18))?;
    // A decade under the smallest point (resumes from memory take a millisecond or two).
    let y_min = panels
        .iter()
        .flat_map(|p| p.series.iter().flat_map(|s| s.points.iter().map(|&(_, y)| y)))
        .filter(|y| *y > 0.0)
        .fold(10.0f64, f64::min);
    let y_min = 10f64.powf(y_min.log10().floor());
    let y_max = panels
        .iter()
        .flat_map(|p| p.series.iter().flat_map(|s| s.points.iter().map(|&(_, y)| y)))
        .fold(1000.0f64, f64::max)
        * 40.0; // headroom for the legend, above the lines
    for (area, panel) in body.split_evenly((1, panels.len())).iter().zip(panels) {
        let mut chart = ChartBuilder::on(area)
            .caption(&panel.title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(44)
            .y_label_area_size(64)
            .build_cartesian_2d((x_min..x_max).log_scale(), (y_min..y_max).log_scale())?;
        chart
            .configure_mesh()
            .x_desc("memory touched by the sandbox's process (MiB, log scale)")
            .y_desc("milliseconds (log scale)")
            .y_label_formatter(&|v| format!("{v:.0}"))
            .x_label_formatter(&|v| round_label(*v))
            .label_style(("sans-serif", 14))
            .draw()?;
        for s in &panel.series {
            let style = ShapeStyle::from(&s.color).stroke_width(2);
            let points: Vec<(f64, f64)> = s.points.iter().map(|&(x, y)| (x, y.max(y_min))).collect();
            let color = s.color;
            let anno = if s.dashed {
                chart.draw_series(DashedLineSeries::new(points.clone(), 8, 6, style))?
            } else {
                chart.draw_series(LineSeries::new(points.clone(), style))?
            };
            anno.label(s.label.as_str()).legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], ShapeStyle::from(&color).stroke_width(2)));
            if !s.dashed {
                chart.draw_series(points.iter().map(|&p| Circle::new(p, 4, ShapeStyle::from(&color).filled())))?;
            }
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(("sans-serif", 13))
            .draw()?;
    }
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_round_ticks_are_labelled() {
        assert_eq!(round_label(1000.0), "1000");
        assert_eq!(round_label(200.0), "200");
        assert_eq!(round_label(500.0), "500");
        assert_eq!(round_label(900.0), "");
        assert_eq!(round_label(300.0), "");
    }

    #[test]
    fn samples_spread_on_a_log_scale() {
        let pts = sample(10.0, 1000.0, 3, |x| x * 2.0);
        assert_eq!(pts.len(), 3);
        assert!((pts[1].0 - 100.0).abs() < 1e-9 && (pts[2].1 - 2000.0).abs() < 1e-9);
    }
}
