//! The report's charts, drawn by plotters into SVG strings.
//!
//! plotters (its SVG backend alone, no fonts, no bitmaps) lays out axes,
//! ticks and legends, and escapes every text it writes; kvc only picks
//! what to plot. No chart is given text from a checkpoint: labels are
//! reasons, buckets, dates, short keys and numbers. Titles appear in the
//! report's tables, escaped there.

use plotters::coord::Shift;
use plotters::prelude::*;

/// Chart size in pixels.
pub const WIDTH: u32 = 760;
pub const HEIGHT: u32 = 320;

const MIB: f64 = 1024.0 * 1024.0;

fn err<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

/// Run `draw` on an SVG drawing area of `w × h` and return the SVG.
fn svg(
    w: u32,
    h: u32,
    draw: impl FnOnce(&DrawingArea<SVGBackend<'_>, Shift>) -> Result<(), String>,
) -> Result<String, String> {
    let mut buf = String::new();
    {
        let root = SVGBackend::with_string(&mut buf, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        draw(&root)?;
        root.present().map_err(err)?;
    }
    Ok(buf)
}

/// Category `i` sits at x = i; labels only at whole positions.
fn category_label(labels: &[String], v: f64) -> String {
    let i = v.round();
    if (v - i).abs() < 1e-9 && i >= 0.0 {
        labels.get(i as usize).cloned().unwrap_or_default()
    } else {
        String::new()
    }
}

/// The top of a y axis over `values`: a tenth of room above the highest,
/// or 1 when there is nothing to show.
fn headroom(values: impl Iterator<Item = f64>) -> f64 {
    let max = values.fold(0.0f64, f64::max);
    if max > 0.0 {
        max * 1.1
    } else {
        1.0
    }
}

type CategoryChart<'a, 'b> = ChartContext<
    'a,
    SVGBackend<'b>,
    Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
>;

/// A chart of `n` categories at x = 0 … n-1 (bars and daily lines share
/// it), y from 0 to `top`.
fn category_chart<'a, 'b>(
    root: &'a DrawingArea<SVGBackend<'b>, Shift>,
    title: &str,
    n: usize,
    top: f64,
) -> Result<CategoryChart<'a, 'b>, String> {
    ChartBuilder::on(root)
        .caption(title, ("sans-serif", 16))
        .margin(10)
        .x_label_area_size(36)
        .y_label_area_size(70)
        .build_cartesian_2d(-0.5f64..(n as f64 - 0.5), 0f64..top)
        .map_err(err)
}

/// A vertical bar chart of `values` over the category `labels` (bars are
/// rectangles on an f64 axis: plotters' segmented u32 axis overflows on
/// small ranges in 0.3.7).
pub fn bars(
    title: &str,
    labels: &[String],
    values: &[f64],
    y_desc: &str,
) -> Result<String, String> {
    let n = labels.len().max(1);
    let top = headroom(values.iter().copied());
    svg(WIDTH, HEIGHT, |root| {
        let mut chart = category_chart(root, title, n, top)?;
        let label_of = |v: &f64| category_label(labels, *v);
        chart
            .configure_mesh()
            .max_light_lines(0)
            .disable_x_mesh()
            .x_labels(n + 1)
            .x_label_formatter(&label_of)
            .y_desc(y_desc)
            .draw()
            .map_err(err)?;
        chart
            .draw_series(values.iter().enumerate().map(|(i, v)| {
                let x = i as f64;
                Rectangle::new(
                    [(x - 0.4, 0.0), (x + 0.4, *v)],
                    RGBColor(70, 110, 170).filled(),
                )
            }))
            .map_err(err)?;
        Ok(())
    })
}

/// One point of the size/last-use scatter.
#[derive(Clone, Copy, Debug)]
pub struct Point {
    /// Hours since last use.
    pub hours: f64,
    pub bytes: u64,
    /// Eviction rank (1 = first victim); `None`: never evicted by the engine.
    pub rank: Option<usize>,
}

/// A tick label: three significant digits at most.
fn short_number(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.3}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string()
    }
}

/// Colour of a rank among `ranked`: red for the first victims, blue for
/// the last; grey for unranked.
fn rank_colour(rank: Option<usize>, ranked: usize) -> RGBColor {
    match rank {
        None => RGBColor(150, 150, 150),
        Some(r) => {
            let t = if ranked > 1 {
                (r - 1) as f64 / (ranked - 1) as f64
            } else {
                0.0
            };
            let mix = |a: f64, b: f64| (a + (b - a) * t).round() as u8;
            RGBColor(mix(215.0, 40.0), mix(50.0, 90.0), mix(40.0, 200.0))
        }
    }
}

/// The points in drawing order: unranked first, then from the last
/// victim to the first, so the next victims are drawn on top.
fn on_top(points: &[Point]) -> Vec<&Point> {
    let mut order: Vec<&Point> = points.iter().collect();
    order.sort_by_key(|p| p.rank.map_or(0, |r| usize::MAX - r));
    order
}

/// Size against time since last use, both on log scales, each checkpoint
/// coloured by its eviction rank.
pub fn scatter(title: &str, points: &[Point]) -> Result<String, String> {
    let ranked = points.iter().filter_map(|p| p.rank).max().unwrap_or(0);
    let hours = |p: &Point| p.hours.max(0.01);
    let mib = |p: &Point| (p.bytes as f64 / MIB).max(0.001);
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, 0.0f64, f64::MAX, 0.0f64);
    for p in points {
        x0 = x0.min(hours(p));
        x1 = x1.max(hours(p));
        y0 = y0.min(mib(p));
        y1 = y1.max(mib(p));
    }
    if points.is_empty() {
        (x0, x1, y0, y1) = (0.01, 1.0, 0.001, 1.0);
    }
    svg(WIDTH, HEIGHT + 60, |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(title, ("sans-serif", 16))
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(
                (x0 / 1.5..x1 * 1.5).log_scale(),
                (y0 / 1.5..y1 * 1.5).log_scale(),
            )
            .map_err(err)?;
        chart
            .configure_mesh()
            .max_light_lines(0)
            .x_labels(6)
            .y_labels(6)
            .x_label_formatter(&|v| short_number(*v))
            .y_label_formatter(&|v| short_number(*v))
            .x_desc("hours since last use")
            .y_desc("size (MiB)")
            .draw()
            .map_err(err)?;
        chart
            .draw_series(
                on_top(points).into_iter().map(|p| {
                    Circle::new((hours(p), mib(p)), 3, rank_colour(p.rank, ranked).filled())
                }),
            )
            .map_err(err)?;
        // A legend of the colours.
        for (label, rank) in [
            ("first victim", Some(1)),
            ("last victim", Some(ranked.max(1))),
            ("not ranked", None),
        ] {
            chart
                .draw_series(std::iter::empty::<Circle<(f64, f64), i32>>())
                .map_err(err)?
                .label(label)
                .legend(move |(x, y)| Circle::new((x, y), 4, rank_colour(rank, ranked).filled()));
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(err)?;
        Ok(())
    })
}

/// Several series of counts per day, as lines.
pub fn lines(
    title: &str,
    days: &[String],
    series: &[(&str, Vec<f64>, RGBColor)],
) -> Result<String, String> {
    let n = days.len().max(1);
    let top = headroom(series.iter().flat_map(|s| s.1.iter().copied()));
    svg(WIDTH, HEIGHT, |root| {
        let mut chart = category_chart(root, title, n, top)?;
        let label_of = |v: &f64| category_label(days, *v);
        chart
            .configure_mesh()
            .max_light_lines(0)
            .x_labels(n.min(12) + 1)
            .x_label_formatter(&label_of)
            .y_desc("count")
            .draw()
            .map_err(err)?;
        for (name, values, colour) in series {
            let c = *colour;
            chart
                .draw_series(LineSeries::new(
                    values.iter().enumerate().map(|(i, v)| (i as f64, *v)),
                    c.stroke_width(2),
                ))
                .map_err(err)?
                .label(*name)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 16, y)], c.stroke_width(2))
                });
            chart
                .draw_series(
                    values
                        .iter()
                        .enumerate()
                        .map(|(i, v)| Circle::new((i as f64, *v), 3, c.filled())),
                )
                .map_err(err)?;
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(err)?;
        Ok(())
    })
}

/// One node of the forest drawing.
#[derive(Clone, Debug)]
pub struct TreeNode {
    pub depth: u32,
    /// Index of the parent among the drawn nodes.
    pub parent: Option<usize>,
    /// Short key and figures: no checkpoint text.
    pub label: String,
    pub superseded: bool,
    pub covered: bool,
}

/// Rows of the forest drawing: one node a row, indented by depth, with
/// lines to the parent.
pub fn forest(title: &str, nodes: &[TreeNode]) -> Result<String, String> {
    const ROW: i32 = 18;
    const INDENT: i32 = 22;
    const TOP: i32 = 34;
    let h = (TOP + ROW * nodes.len() as i32 + 12).max(60) as u32;
    svg(WIDTH, h, |root| {
        root.draw(&Text::new(title.to_string(), (10, 8), ("sans-serif", 16)))
            .map_err(err)?;
        let at = |i: usize| {
            let depth = nodes[i].depth.min(24) as i32;
            (12 + depth * INDENT, TOP + i as i32 * ROW)
        };
        for (i, n) in nodes.iter().enumerate() {
            let (x, y) = at(i);
            if let Some(p) = n.parent {
                let (px, py) = at(p);
                root.draw(&PathElement::new(
                    vec![(px + 4, py + 12), (px + 4, y + 6), (x, y + 6)],
                    RGBColor(120, 120, 120),
                ))
                .map_err(err)?;
            }
            let fill = if n.superseded {
                RGBColor(230, 140, 60)
            } else if n.covered {
                RGBColor(170, 170, 170)
            } else {
                RGBColor(70, 110, 170)
            };
            root.draw(&Rectangle::new([(x, y), (x + 9, y + 12)], fill.filled()))
                .map_err(err)?;
            root.draw(&Text::new(
                n.label.clone(),
                (x + 14, y),
                ("monospace", 12).into_font().color(&BLACK),
            ))
            .map_err(err)?;
        }
        Ok(())
    })
}
