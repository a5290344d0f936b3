//! The run's charts: controller probabilities and search curves.

use super::*;
use std::path::Path;

use tunas_shared::SearchSpace;
use tunas_shared::plot::{Panel, Series, small_multiples};

/// Controller probabilities per decision over time, and reward / accuracy /
/// cost curves. A chart that cannot be drawn (no font) is reported and
/// skipped: the data is in the CSV log and the checkpoint.
pub(super) fn write_plots(
    space: &SearchSpace,
    files: &RunFiles,
    history: &[(usize, Vec<Vec<f32>>)],
    log_path: &Path,
    config: &SearchConfig,
) {
    let path = files.dir.join("probabilities.svg");
    if let Err(e) = small_multiples(
        &path,
        "controller probabilities per decision",
        "step",
        &probability_panels(space, history),
        6,
    ) {
        eprintln!("warning: {e}");
    }
    let Ok(text) = std::fs::read_to_string(log_path) else {
        return;
    };
    let panels = curve_panels(&log_rows(&text), config);
    let path = files.dir.join("curves.svg");
    if let Err(e) = small_multiples(&path, "search curves (moving averages)", "step", &panels, 3) {
        eprintln!("warning: {e}");
    }
}

/// One panel per decision: the probability of each value over the steps
/// of `history`.
fn probability_panels(space: &SearchSpace, history: &[(usize, Vec<Vec<f32>>)]) -> Vec<Panel> {
    space
        .decisions
        .iter()
        .enumerate()
        .map(|(d, dec)| Panel {
            title: dec.name.clone(),
            series: dec
                .values
                .iter()
                .enumerate()
                .map(|(v, value)| Series {
                    name: value.to_string(),
                    points: history
                        .iter()
                        .map(|(s, p)| (*s as f64, p[d][v] as f64))
                        .collect(),
                })
                .collect(),
            y_range: Some((0.0, 1.0)),
        })
        .collect()
}

/// The columns the curves use from each row of the CSV log: step,
/// accuracy, cost, reward, baseline. Rows missing one are left out.
fn log_rows(text: &str) -> Vec<Vec<f64>> {
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let c: Vec<&str> = l.split(',').collect();
            let f = |i: usize| c.get(i).and_then(|v| v.parse::<f64>().ok());
            Some(vec![f(0)?, f(8)?, f(9)?, f(10)?, f(11)?])
        })
        .collect()
}

/// Reward and baseline, accuracy, and cost against the target, each as a
/// moving average over about a hundredth of the rows.
fn curve_panels(rows: &[Vec<f64>], config: &SearchConfig) -> Vec<Panel> {
    let window = (rows.len() / 100).max(1);
    let smooth = |col: usize| -> Vec<(f64, f64)> {
        rows.chunks(window)
            .map(|c| {
                (
                    c[0][0],
                    c.iter().map(|r| r[col]).sum::<f64>() / c.len() as f64,
                )
            })
            .collect()
    };
    let unit = match config.resource {
        Resource::Latency => "estimated latency (ms)",
        Resource::Flops => "M multiply-adds",
        Resource::Params => "M parameters",
    };
    let target: Vec<(f64, f64)> = vec![(0.0, config.target), (config.steps as f64, config.target)];
    vec![
        Panel {
            title: "reward (and baseline)".into(),
            series: vec![
                Series {
                    name: "reward".into(),
                    points: smooth(3),
                },
                Series {
                    name: "baseline".into(),
                    points: smooth(4),
                },
            ],
            y_range: None,
        },
        Panel {
            title: "validation accuracy of the sample (Q)".into(),
            series: vec![Series {
                name: "Q".into(),
                points: smooth(1),
            }],
            y_range: None,
        },
        Panel {
            title: unit.into(),
            series: vec![
                Series {
                    name: "sampled".into(),
                    points: smooth(2),
                },
                Series {
                    name: "target".into(),
                    points: target,
                },
            ],
            y_range: None,
        },
    ]
}
