//! SVG plots of the results, drawn with plotters' SVG backend.

use std::path::Path;

use plotters::prelude::*;

/// One line of a plot: a name, a colour and its points.
#[derive(Debug, Clone)]
pub struct Series {
    /// Legend text.
    pub name: String,
    /// Line colour.
    pub color: RGBColor,
    /// (x, y) points.
    pub points: Vec<(f64, f64)>,
}

type PlotResult = Result<(), Box<dyn std::error::Error>>;

/// Verify time against keys held, log-log: flat lines stay flat, linear
/// growth rises with slope one.
pub fn verify_vs_keys(path: &Path, series: &[Series]) -> PlotResult {
    let root = SVGBackend::new(path, (760, 480)).into_drawing_area();
    root.fill(&WHITE)?;
    let ys = series.iter().flat_map(|s| s.points.iter().map(|p| p.1));
    let (lo, hi) = ys.fold((f64::INFINITY, 0f64), |(lo, hi), y| (lo.min(y), hi.max(y)));
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Verify time vs keys held (token of the oldest key)",
            ("sans-serif", 20),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(
            (0.8f64..80f64)
                .log_scale()
                .with_key_points(vec![1.0, 4.0, 16.0, 64.0]),
            ((lo / 2.0)..(hi * 2.0)).log_scale(),
        )?;
    chart
        .configure_mesh()
        .x_desc("keys held")
        .y_desc("ns per verify")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| format_ns(*y))
        .draw()?;
    for s in series {
        let color = s.color;
        chart
            .draw_series(LineSeries::new(s.points.iter().copied(), color.stroke_width(2)))?
            .label(s.name.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
        chart.draw_series(s.points.iter().map(|&p| Circle::new(p, 4, color.filled())))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

/// Verify latency percentiles, idle against under key swaps.
pub fn swap_percentiles(path: &Path, rate: f64, idle: [f64; 3], swapping: [f64; 3]) -> PlotResult {
    let root = SVGBackend::new(path, (760, 420)).into_drawing_area();
    root.fill(&WHITE)?;
    let hi = idle.iter().chain(&swapping).fold(0f64, |a, &b| a.max(b));
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("Native verify latency: idle vs {rate:.0} key-set swaps/s"),
            ("sans-serif", 20),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(-0.5f64..2.5f64, 0f64..hi * 1.15)?;
    const LABELS: [&str; 3] = ["p50", "p99", "p99.9"];
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(3)
        .x_label_formatter(&|x| {
            let i = x.round();
            if (x - i).abs() < 0.01 && (0.0..3.0).contains(&i) {
                LABELS[i as usize].to_owned()
            } else {
                String::new()
            }
        })
        .y_desc("ns per verify (incl. timer)")
        .y_label_formatter(&|y| format_ns(*y))
        .draw()?;
    for (offset, values, color, name) in [(-0.18, idle, BLUE, "idle"), (0.18, swapping, RED, "under swaps")] {
        chart
            .draw_series(values.iter().enumerate().map(|(i, &v)| {
                let x = i as f64 + offset;
                Rectangle::new([(x - 0.16, 0.0), (x + 0.16, v)], color.mix(0.75).filled())
            }))?
            .label(name)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 15, y + 5)], color.mix(0.75).filled()));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

/// `350 ns`, `3.6 µs`, `1.2 ms`.
pub fn format_ns(ns: f64) -> String {
    if ns >= 1e6 {
        format!("{:.1} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.1} µs", ns / 1e3)
    } else {
        format!("{ns:.0} ns")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_ns_picks_the_unit() {
        assert_eq!(format_ns(350.4), "350 ns");
        assert_eq!(format_ns(3_600.0), "3.6 µs");
        assert_eq!(format_ns(1_250_000.0), "1.2 ms");
    }

    #[test]
    fn plots_are_written_as_svg() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.svg");
        let series = [Series {
            name: "flat".into(),
            color: BLUE,
            points: vec![(1.0, 300.0), (4.0, 310.0), (16.0, 305.0), (64.0, 320.0)],
        }];
        verify_vs_keys(&a, &series).unwrap();
        let b = dir.path().join("b.svg");
        swap_percentiles(&b, 1000.0, [300.0, 400.0, 900.0], [310.0, 500.0, 1500.0]).unwrap();
        for path in [a, b] {
            let svg = std::fs::read_to_string(path).unwrap();
            assert!(
                svg.starts_with("<svg") && svg.contains("</svg>"),
                "{}",
                &svg[..100]
            );
        }
    }
}
