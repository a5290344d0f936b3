//! Charts as SVG or PNG (by the file's extension): estimate-vs-measured
//! scatter plots with an error band, and line charts in small multiples.
//!
//! Text is drawn with DejaVu Sans, loaded at run time from the system
//! (Debian package `fonts-dejavu-core`, which `cargo xtask setup` installs);
//! `TUNAS_FONT` may point at another TTF file.

use std::path::Path;
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};
use thiserror::Error;

/// A chart could not be drawn or written.
#[derive(Debug, Error)]
pub enum PlotError {
    /// No font to draw text with.
    #[error(
        "no font for chart text: install the Debian package fonts-dejavu-core (`cargo xtask setup` does) or set TUNAS_FONT to a .ttf file"
    )]
    NoFont,
    /// The extension is neither `.svg` nor `.png`.
    #[error("{path}: charts are written as .svg or .png; use one of those extensions")]
    BadExtension {
        /// File path.
        path: String,
    },
    /// Drawing or writing failed.
    #[error("{path}: cannot draw the chart: {message}")]
    Draw {
        /// File path.
        path: String,
        /// What failed.
        message: String,
    },
}

const FONT_CANDIDATES: [&str; 3] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
];

fn ensure_font() -> Result<(), PlotError> {
    static FONT: OnceLock<bool> = OnceLock::new();
    let ok = *FONT.get_or_init(|| {
        let from_env = std::env::var("TUNAS_FONT").ok();
        let paths = from_env.iter().map(String::as_str).chain(FONT_CANDIDATES);
        for path in paths {
            if let Ok(bytes) = std::fs::read(path) {
                let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                if register_font("sans-serif", FontStyle::Normal, bytes).is_ok() {
                    return true;
                }
            }
        }
        false
    });
    if ok { Ok(()) } else { Err(PlotError::NoFont) }
}

/// One named line of a chart.
#[derive(Clone, Debug)]
pub struct Series {
    /// Legend text.
    pub name: String,
    /// Points (x, y).
    pub points: Vec<(f64, f64)>,
}

/// One panel of a small-multiples chart.
#[derive(Clone, Debug)]
pub struct Panel {
    /// Panel title.
    pub title: String,
    /// Its lines.
    pub series: Vec<Series>,
    /// Fixed y range, or `None` to fit the data.
    pub y_range: Option<(f64, f64)>,
}

fn draw_err(path: &Path) -> impl Fn(String) -> PlotError + '_ {
    move |message| PlotError::Draw {
        path: path.display().to_string(),
        message,
    }
}

/// Draws with `svg` or `png` (the same generic drawing, instantiated for
/// each backend) by the path's extension.
fn with_backend(
    path: &Path,
    size: (u32, u32),
    svg: impl FnOnce(&DrawingArea<SVGBackend<'_>, Shift>) -> Result<(), String>,
    png: impl FnOnce(&DrawingArea<BitMapBackend<'_>, Shift>) -> Result<(), String>,
) -> Result<(), PlotError> {
    ensure_font()?;
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    // Draw into a temporary file beside the target, then rename: never a
    // half-written chart.
    let tmp = path.with_extension(format!(
        "tmp{}.{}",
        std::process::id(),
        ext.as_deref().unwrap_or("")
    ));
    let result = match ext.as_deref() {
        Some("svg") => {
            let root = SVGBackend::new(&tmp, size).into_drawing_area();
            svg(&root).and_then(|_| root.present().map_err(|e| e.to_string()))
        }
        Some("png") => {
            let root = BitMapBackend::new(&tmp, size).into_drawing_area();
            png(&root).and_then(|_| root.present().map_err(|e| e.to_string()))
        }
        _ => {
            return Err(PlotError::BadExtension {
                path: path.display().to_string(),
            });
        }
    };
    result
        .and_then(|_| std::fs::rename(&tmp, path).map_err(|e| e.to_string()))
        .map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            draw_err(path)(e)
        })
}

const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

fn span(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    let pad = ((hi - lo) * 0.05).max(1e-9);
    (lo - pad, hi + pad)
}

/// Scatter of (estimated, measured) with the y = x line and a ±`band`
/// relative band (e.g. 0.10).
pub fn estimate_vs_measured(
    path: &Path,
    title: &str,
    unit: &str,
    points: &[(f64, f64)],
    band: f64,
) -> Result<(), PlotError> {
    with_backend(
        path,
        (720, 640),
        |root| draw_scatter(root, title, unit, points, band),
        |root| draw_scatter(root, title, unit, points, band),
    )
}

fn draw_scatter<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    unit: &str,
    points: &[(f64, f64)],
    band: f64,
) -> Result<(), String>
where
    DB::ErrorType: 'static,
{
    let (lo, hi) = span(points.iter().flat_map(|&(e, m)| [e, m]));
    let lo = lo.max(0.0);
    {
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let mut chart = ChartBuilder::on(root)
            .caption(title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(lo..hi, lo..hi)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc(format!("measured end to end ({unit})"))
            .y_desc(format!("estimated from the table ({unit})"))
            .draw()
            .map_err(|e| e.to_string())?;
        let line = |f: f64| vec![(lo, lo * f), (hi, hi * f)];
        chart
            .draw_series(LineSeries::new(line(1.0), BLACK.stroke_width(1)))
            .map_err(|e| e.to_string())?
            .label("estimate = measured");
        for f in [1.0 + band, 1.0 - band] {
            chart
                .draw_series(LineSeries::new(
                    line(f),
                    PALETTE[3].mix(0.6).stroke_width(1),
                ))
                .map_err(|e| e.to_string())?;
        }
        chart
            .draw_series(points.iter().map(|&(e, m)| {
                let inside = (e / m - 1.0).abs() <= band;
                let color = if inside { PALETTE[0] } else { PALETTE[3] };
                Circle::new((m, e), 3, color.filled())
            }))
            .map_err(|e| e.to_string())?;
        Ok(())
    }
}

/// A point drawn with a vertical range (e.g. a mean over seeds with its
/// minimum and maximum).
#[derive(Clone, Debug)]
pub struct RangePoint {
    /// Legend text.
    pub name: String,
    /// x.
    pub x: f64,
    /// y (the mark).
    pub y: f64,
    /// Lower end of the range.
    pub y_low: f64,
    /// Upper end of the range.
    pub y_high: f64,
}

/// A cloud of points (grey), horizontal reference levels (e.g. the cloud's
/// median and 90th percentile), highlighted points with ranges, and an
/// optional vertical reference (e.g. a target): how a searched result
/// compares with a random sample.
#[derive(Clone, Debug)]
pub struct CloudChart {
    /// Chart title.
    pub title: String,
    /// x-axis label.
    pub x_label: String,
    /// y-axis label.
    pub y_label: String,
    /// Legend text of the cloud.
    pub cloud_name: String,
    /// The cloud.
    pub cloud: Vec<(f64, f64)>,
    /// Horizontal levels: (legend text, y).
    pub levels: Vec<(String, f64)>,
    /// Highlighted points.
    pub highlighted: Vec<RangePoint>,
    /// A vertical reference line: (legend text, x).
    pub vertical: Option<(String, f64)>,
}

/// Draws a [`CloudChart`] as SVG or PNG (by the extension).
pub fn cloud_chart(path: &Path, chart: &CloudChart) -> Result<(), PlotError> {
    with_backend(
        path,
        (760, 560),
        |root| draw_cloud(root, chart),
        |root| draw_cloud(root, chart),
    )
}

/// The chart every cloud part is drawn on.
type CloudContext<'a, DB> = ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// The axis ranges of a [`CloudChart`]: every point, range, level and the
/// vertical line inside, with room above the data for the legend so that
/// it never hides a point.
fn cloud_ranges(c: &CloudChart) -> ((f64, f64), (f64, f64)) {
    let xs = c
        .cloud
        .iter()
        .map(|p| p.0)
        .chain(c.highlighted.iter().map(|p| p.x))
        .chain(c.vertical.iter().map(|v| v.1));
    let ys = c
        .cloud
        .iter()
        .map(|p| p.1)
        .chain(c.highlighted.iter().flat_map(|p| [p.y_low, p.y_high]))
        .chain(c.levels.iter().map(|l| l.1));
    let (x0, x1) = span(xs);
    let (y0, y1) = span(ys);
    let legend_rows = 1 + c.levels.len() + c.highlighted.len() + usize::from(c.vertical.is_some());
    let y1 = top_with_legend_room(y0, y1, legend_rows);
    ((x0, x1), (y0, y1))
}

fn draw_cloud<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    c: &CloudChart,
) -> Result<(), String>
where
    DB::ErrorType: 'static,
{
    let ((x0, x1), (y0, y1)) = cloud_ranges(c);
    let mut chart = framed(root, &c.title, (x0, x1), (y0, y1))?;
    chart
        .configure_mesh()
        .x_desc(c.x_label.as_str())
        .y_desc(c.y_label.as_str())
        .draw()
        .map_err(|e| e.to_string())?;
    draw_cloud_points(&mut chart, c)?;
    draw_levels(&mut chart, &c.levels, (x0, x1))?;
    if let Some((name, x)) = &c.vertical {
        draw_vertical(&mut chart, name, *x, (y0, y1))?;
    }
    draw_highlighted(&mut chart, &c.highlighted)?;
    draw_legend(&mut chart)
}

/// A white chart with `title` over the ranges, room for both axes' labels.
fn framed<'a, DB: DrawingBackend>(
    root: &'a DrawingArea<DB, Shift>,
    title: &str,
    (x0, x1): (f64, f64),
    (y0, y1): (f64, f64),
) -> Result<CloudContext<'a, DB>, String>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    ChartBuilder::on(root)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(|e| e.to_string())
}

/// The top of a y range `y0..y1` raised so that a legend of `rows` entries
/// in the upper left stays clear of the data.
fn top_with_legend_room(y0: f64, y1: f64, rows: usize) -> f64 {
    y1 + (y1 - y0) * (0.06 * rows as f64).max(0.25)
}

/// The legend, upper left, over a half-transparent white.
fn draw_legend<'a, DB: DrawingBackend + 'a>(chart: &mut CloudContext<'a, DB>) -> Result<(), String>
where
    DB::ErrorType: 'static,
{
    chart
        .configure_series_labels()
        .label_font(("sans-serif", 11))
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK.mix(0.3))
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(|e| e.to_string())
}

/// The cloud, in grey.
fn draw_cloud_points<DB: DrawingBackend>(
    chart: &mut CloudContext<'_, DB>,
    c: &CloudChart,
) -> Result<(), String>
where
    DB::ErrorType: 'static,
{
    let grey = RGBColor(150, 150, 150);
    chart
        .draw_series(c.cloud.iter().map(|&p| Circle::new(p, 4, grey.filled())))
        .map_err(|e| e.to_string())?
        .label(c.cloud_name.clone())
        .legend(move |(x, y)| Circle::new((x + 6, y), 4, grey.filled()));
    Ok(())
}

/// Horizontal lines across `x0..x1`, one colour each.
fn draw_levels<DB: DrawingBackend>(
    chart: &mut CloudContext<'_, DB>,
    levels: &[(String, f64)],
    (x0, x1): (f64, f64),
) -> Result<(), String>
where
    DB::ErrorType: 'static,
{
    for (i, (name, y)) in levels.iter().enumerate() {
        let color = PALETTE[(i + 1) % PALETTE.len()];
        chart
            .draw_series(LineSeries::new(
                [(x0, *y), (x1, *y)],
                color.mix(0.8).stroke_width(1),
            ))
            .map_err(|e| e.to_string())?
            .label(name.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 12, y)], color));
    }
    Ok(())
}

/// A vertical reference line at `x` across `y0..y1`.
fn draw_vertical<DB: DrawingBackend>(
    chart: &mut CloudContext<'_, DB>,
    name: &str,
    x: f64,
    (y0, y1): (f64, f64),
) -> Result<(), String>
where
    DB::ErrorType: 'static,
{
    chart
        .draw_series(LineSeries::new(
            [(x, y0), (x, y1)],
            BLACK.mix(0.6).stroke_width(2),
        ))
        .map_err(|e| e.to_string())?
        .label(name.to_string())
        .legend(|(x, y)| {
            PathElement::new(vec![(x, y), (x + 12, y)], BLACK.mix(0.6).stroke_width(2))
        });
    Ok(())
}

/// Each highlighted point: its range as a vertical bar, its value as a
/// triangle.
fn draw_highlighted<DB: DrawingBackend>(
    chart: &mut CloudContext<'_, DB>,
    points: &[RangePoint],
) -> Result<(), String>
where
    DB::ErrorType: 'static,
{
    for (i, p) in points.iter().enumerate() {
        let color = PALETTE[(i + 3) % PALETTE.len()];
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(p.x, p.y_low), (p.x, p.y_high)],
                color.stroke_width(2),
            )))
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(std::iter::once(TriangleMarker::new(
                (p.x, p.y),
                7,
                color.filled(),
            )))
            .map_err(|e| e.to_string())?
            .label(p.name.clone())
            .legend(move |(x, y)| TriangleMarker::new((x + 6, y), 5, color.filled()));
    }
    Ok(())
}

/// A mark with a vertical range (e.g. a mean over seeds with its minimum
/// and maximum), placed in a category of a [`CategoryChart`].
#[derive(Clone, Copy, Debug)]
pub struct RangeMark {
    /// y (the mark).
    pub y: f64,
    /// Lower end of the range.
    pub y_low: f64,
    /// Upper end of the range.
    pub y_high: f64,
}

/// Values by category, left to right: grey dots (e.g. random networks) and
/// coloured marks with ranges (e.g. searched networks, one category per
/// setting), with horizontal reference levels across all of them. Values
/// of one category are spread side by side so that none hides another.
#[derive(Clone, Debug)]
pub struct CategoryChart {
    /// Chart title.
    pub title: String,
    /// y-axis label.
    pub y_label: String,
    /// Category names, the x-axis labels.
    pub categories: Vec<String>,
    /// Legend text of the dots.
    pub dots_name: String,
    /// Dots: (category index, y).
    pub dots: Vec<(usize, f64)>,
    /// Legend text of the marks.
    pub marks_name: String,
    /// Marks: (category index, mark).
    pub marks: Vec<(usize, RangeMark)>,
    /// Horizontal levels: (legend text, y).
    pub levels: Vec<(String, f64)>,
}

/// Draws a [`CategoryChart`] as SVG or PNG (by the extension), wider for
/// more categories.
pub fn category_chart(path: &Path, chart: &CategoryChart) -> Result<(), PlotError> {
    // Room for the longest category name under each category.
    let longest = chart.categories.iter().map(|c| c.chars().count()).max();
    let per_category = (6 * longest.unwrap_or(0) as u32 + 16).max(80);
    let width = (120 + per_category * chart.categories.len() as u32).max(760);
    with_backend(
        path,
        (width, 560),
        |root| draw_categories(root, chart),
        |root| draw_categories(root, chart),
    )
}

/// x of value `j` of the `m` in category `i`: spread evenly over at most
/// ±0.3 around `i`.
fn spread_x(i: usize, j: usize, m: usize) -> f64 {
    if m <= 1 {
        return i as f64;
    }
    let width = (0.12 * (m - 1) as f64).min(0.6);
    i as f64 - width / 2.0 + width * j as f64 / (m - 1) as f64
}

/// Each value's x: its category, spread among the values of that category.
fn spread_by_category<T: Copy>(values: &[(usize, T)]) -> Vec<(f64, T)> {
    let mut seen: std::collections::HashMap<usize, usize> = std::collections::HashMap::new();
    let count = |i: usize| values.iter().filter(|v| v.0 == i).count();
    values
        .iter()
        .map(|&(i, v)| {
            let j = seen.entry(i).or_insert(0);
            let x = spread_x(i, *j, count(i));
            *j += 1;
            (x, v)
        })
        .collect()
}

fn draw_categories<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    c: &CategoryChart,
) -> Result<(), String>
where
    DB::ErrorType: 'static,
{
    let n = c.categories.len().max(1);
    let ys = c
        .dots
        .iter()
        .map(|d| d.1)
        .chain(c.marks.iter().flat_map(|m| [m.1.y_low, m.1.y_high]))
        .chain(c.levels.iter().map(|l| l.1));
    let (y0, y1) = span(ys);
    let y1 = top_with_legend_room(y0, y1, 2 + c.levels.len());
    let (x0, x1) = (-0.6, n as f64 - 0.4);
    let mut chart = framed(root, &c.title, (x0, x1), (y0, y1))?;
    // Labels only at whole x, where the categories are.
    let name_at = |x: &f64| {
        let r = x.round();
        match c.categories.get(r as usize) {
            Some(name) if (x - r).abs() < 1e-6 && r >= 0.0 => name.clone(),
            _ => String::new(),
        }
    };
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(n + 2)
        .x_label_formatter(&name_at)
        .y_desc(c.y_label.as_str())
        .draw()
        .map_err(|e| e.to_string())?;
    let grey = RGBColor(150, 150, 150);
    chart
        .draw_series(
            spread_by_category(&c.dots)
                .into_iter()
                .map(|p| Circle::new(p, 4, grey.filled())),
        )
        .map_err(|e| e.to_string())?
        .label(c.dots_name.clone())
        .legend(move |(x, y)| Circle::new((x + 6, y), 4, grey.filled()));
    draw_levels(&mut chart, &c.levels, (x0, x1))?;
    let color = PALETTE[3];
    let marks = spread_by_category(&c.marks);
    chart
        .draw_series(marks.iter().map(|(x, m)| {
            PathElement::new(vec![(*x, m.y_low), (*x, m.y_high)], color.stroke_width(2))
        }))
        .map_err(|e| e.to_string())?;
    chart
        .draw_series(
            marks
                .iter()
                .map(|(x, m)| TriangleMarker::new((*x, m.y), 7, color.filled())),
        )
        .map_err(|e| e.to_string())?
        .label(c.marks_name.clone())
        .legend(move |(x, y)| TriangleMarker::new((x + 6, y), 5, color.filled()));
    draw_legend(&mut chart)
}

/// Small multiples: a grid of panels, each with its own lines and legend.
pub fn small_multiples(
    path: &Path,
    title: &str,
    x_label: &str,
    panels: &[Panel],
    columns: usize,
) -> Result<(), PlotError> {
    let columns = columns.max(1).min(panels.len().max(1));
    let rows = panels.len().div_ceil(columns).max(1);
    let size = (320 * columns as u32, 40 + 220 * rows as u32);
    with_backend(
        path,
        size,
        |root| draw_panels(root, title, x_label, panels, (rows, columns)),
        |root| draw_panels(root, title, x_label, panels, (rows, columns)),
    )
}

fn draw_panels<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    x_label: &str,
    panels: &[Panel],
    (rows, columns): (usize, usize),
) -> Result<(), String>
where
    DB::ErrorType: 'static,
{
    {
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let root = root
            .titled(title, ("sans-serif", 22))
            .map_err(|e| e.to_string())?;
        let areas = root.split_evenly((rows, columns));
        for (area, panel) in areas.iter().zip(panels) {
            let (x0, x1) = span(
                panel
                    .series
                    .iter()
                    .flat_map(|s| s.points.iter().map(|p| p.0)),
            );
            let (y0, y1) = panel.y_range.unwrap_or_else(|| {
                span(
                    panel
                        .series
                        .iter()
                        .flat_map(|s| s.points.iter().map(|p| p.1)),
                )
            });
            let mut chart = ChartBuilder::on(area)
                .caption(&panel.title, ("sans-serif", 13))
                .margin(6)
                .x_label_area_size(22)
                .y_label_area_size(40)
                .build_cartesian_2d(x0..x1, y0..y1)
                .map_err(|e| e.to_string())?;
            chart
                .configure_mesh()
                .x_labels(4)
                .y_labels(4)
                .x_desc(x_label)
                .label_style(("sans-serif", 10))
                .draw()
                .map_err(|e| e.to_string())?;
            for (i, s) in panel.series.iter().enumerate() {
                let color = PALETTE[i % PALETTE.len()];
                chart
                    .draw_series(LineSeries::new(
                        s.points.iter().copied(),
                        color.stroke_width(2),
                    ))
                    .map_err(|e| e.to_string())?
                    .label(s.name.clone())
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 12, y)], color));
            }
            if panel.series.len() > 1 {
                chart
                    .configure_series_labels()
                    .label_font(("sans-serif", 10))
                    .background_style(WHITE.mix(0.7))
                    .border_style(BLACK.mix(0.3))
                    .position(SeriesLabelPosition::UpperLeft)
                    .draw()
                    .map_err(|e| e.to_string())?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_are_written_as_svg_and_png() {
        if ensure_font().is_err() {
            eprintln!("skipped: no DejaVu font on this machine");
            return;
        }
        let dir = std::env::temp_dir().join(format!("tunas-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pts = [(1.0, 1.05), (2.0, 1.9), (3.0, 3.5)];
        for ext in ["svg", "png"] {
            let p = dir.join(format!("scatter.{ext}"));
            estimate_vs_measured(&p, "test", "ms", &pts, 0.1).unwrap();
            assert!(std::fs::metadata(&p).unwrap().len() > 500);
        }
        let panel = Panel {
            title: "p".into(),
            series: vec![Series {
                name: "a".into(),
                points: vec![(0.0, 0.1), (1.0, 0.9)],
            }],
            y_range: Some((0.0, 1.0)),
        };
        let p = dir.join("multi.svg");
        small_multiples(&p, "t", "step", &[panel.clone(), panel], 2).unwrap();
        let cloud = CloudChart {
            title: "t".into(),
            x_label: "ms".into(),
            y_label: "accuracy".into(),
            cloud_name: "random".into(),
            cloud: pts.to_vec(),
            levels: vec![("median".into(), 1.9)],
            highlighted: vec![RangePoint {
                name: "searched".into(),
                x: 2.0,
                y: 3.0,
                y_low: 2.8,
                y_high: 3.1,
            }],
            vertical: Some(("target".into(), 2.0)),
        };
        let p = dir.join("cloud.svg");
        cloud_chart(&p, &cloud).unwrap();
        assert!(std::fs::read_to_string(&p).unwrap().contains("searched"));
        let categories = CategoryChart {
            title: "t".into(),
            y_label: "accuracy".into(),
            categories: vec!["random".into(), "base".into(), "lever".into()],
            dots_name: "random".into(),
            dots: vec![(0, 1.0), (0, 1.2), (0, 0.9)],
            marks_name: "searched".into(),
            marks: vec![(
                2,
                RangeMark {
                    y: 1.1,
                    y_low: 1.0,
                    y_high: 1.3,
                },
            )],
            levels: vec![("p90".into(), 1.15)],
        };
        let p = dir.join("categories.svg");
        category_chart(&p, &categories).unwrap();
        // Every category under its axis, every legend entry: text lines.
        let svg = std::fs::read_to_string(&p).unwrap();
        let texts: Vec<&str> = svg.lines().map(str::trim).collect();
        for label in ["random", "base", "lever", "p90", "searched"] {
            assert!(texts.contains(&label), "no {label} in the chart");
        }
        let err = estimate_vs_measured(&dir.join("x.jpg"), "t", "ms", &pts, 0.1).unwrap_err();
        assert!(matches!(err, PlotError::BadExtension { .. }));
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn values_of_one_category_are_spread_around_it_and_never_cross_into_the_next() {
        assert_eq!(spread_x(3, 0, 1), 3.0);
        let xs: Vec<f64> = (0..20).map(|j| spread_x(1, j, 20)).collect();
        assert!(
            (xs[0] - 0.7).abs() < 1e-12 && (xs[19] - 1.3).abs() < 1e-12,
            "{xs:?}"
        );
        assert!(xs.windows(2).all(|w| w[0] < w[1]));
        let two = spread_by_category(&[(0, 'a'), (1, 'b'), (0, 'c')]);
        assert_eq!(two[1], (1.0, 'b'));
        assert!(
            (two[0].0 + 0.06).abs() < 1e-12 && (two[2].0 - 0.06).abs() < 1e-12,
            "{two:?}"
        );
    }
}
