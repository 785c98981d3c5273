//! An SVG chart of backlog and task count over time, one line per policy.

use plotters::prelude::*;

use crate::Error;
use crate::engine::Run;

const COLORS: [RGBColor; 9] = [
    RGBColor(31, 119, 180),
    RGBColor(230, 120, 20),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(214, 39, 40),
    RGBColor(120, 120, 120),
    RGBColor(23, 190, 207),
    RGBColor(188, 189, 34),
    RGBColor(227, 119, 194),
];

/// Renders `runs` (all on the same trace) as an SVG document.
pub fn svg(title: &str, runs: &[Run]) -> Result<String, Error> {
    let mut out = String::new();
    draw(&mut out, title, runs).map_err(|e| Error::new(format!("chart: {e}")))?;
    Ok(out)
}

fn draw(out: &mut String, title: &str, runs: &[Run]) -> Result<(), Box<dyn std::error::Error>> {
    let end = runs.iter().map(|r| r.duration).max().unwrap_or(60).max(60);
    let (unit, per) = if end > 3 * 3600 {
        ("hours", 3600.0)
    } else {
        ("minutes", 60.0)
    };
    let x_max = end as f64 / per;
    let backlog_max = runs
        .iter()
        .flat_map(|r| r.timeline.iter().map(|s| s.backlog))
        .max()
        .unwrap_or(0)
        .max(1) as f64
        * 1.05;
    let tasks_max = runs
        .iter()
        .flat_map(|r| r.timeline.iter().map(|s| s.tasks))
        .max()
        .unwrap_or(0)
        .max(1) as f64
        * 1.1;

    let root = SVGBackend::with_string(out, (1100, 760)).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(title, ("sans-serif", 22))?;
    let (upper, lower) = root.split_vertically(370);

    for (area, caption, y_max, y_desc, pick) in [
        (
            &upper,
            "backlog: messages visible + in flight",
            backlog_max,
            "messages",
            Panel::Backlog,
        ),
        (
            &lower,
            "tasks (starting, running or finishing)",
            tasks_max,
            "tasks",
            Panel::Tasks,
        ),
    ] {
        let mut chart = ChartBuilder::on(area)
            .margin(12)
            .caption(caption, ("sans-serif", 16))
            .x_label_area_size(34)
            .y_label_area_size(56)
            .build_cartesian_2d(0f64..x_max, 0f64..y_max)?;
        chart
            .configure_mesh()
            .x_desc(unit)
            .y_desc(y_desc)
            .light_line_style(WHITE.mix(0.0))
            .draw()?;
        for (i, run) in runs.iter().enumerate() {
            let color = COLORS[i % COLORS.len()];
            let points = run.timeline.iter().map(|s| {
                let y = match pick {
                    Panel::Backlog => s.backlog as f64,
                    Panel::Tasks => f64::from(s.tasks),
                };
                (s.t as f64 / per, y)
            });
            chart
                .draw_series(LineSeries::new(points, color.stroke_width(2)))?
                .label(run.policy.as_str())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 24, y)], color.stroke_width(3))
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()?;
    }
    root.present()?;
    Ok(())
}

#[derive(Clone, Copy)]
enum Panel {
    Backlog,
    Tasks,
}
