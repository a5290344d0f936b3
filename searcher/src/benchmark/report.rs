//! The benchmark's report, computed from the journal alone: per target the
//! random cloud (median, 90th percentile, best), the searched networks with
//! their spread over training seeds, training noise, the rank correlation
//! between shared-weight and stand-alone accuracy, and the cost.

use std::collections::HashMap;

use serde::Serialize;
use tunas_shared::plot::{CloudChart, RangePoint, cloud_chart};
use tunas_shared::rank::{kendall_tau_b, kendall_tau_ceiling, spearman};
use tunas_shared::table::quantile;

use super::{BenchmarkDir, BenchmarkError, BenchmarkSettings, Entry, Manifest, Plan, SharedPhase};

/// One trained architecture.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct TrainedArch {
    /// Architecture.
    pub(crate) arch: String,
    /// Estimated latency, ms.
    pub(crate) est_latency_ms: f64,
    /// Stand-alone test accuracy (seed 0).
    pub(crate) test_accuracy: Option<f64>,
}

/// The random architectures of a target.
#[derive(Clone, Debug, Serialize)]
pub struct RandomCloud {
    /// Drawn.
    pub(crate) drawn: usize,
    /// Trained so far.
    pub trained: usize,
    /// Every architecture.
    pub(crate) archs: Vec<TrainedArch>,
    /// Mean test accuracy of the trained ones.
    pub(crate) mean: Option<f64>,
    /// Their standard deviation.
    pub std: Option<f64>,
    /// Median.
    pub(crate) median: Option<f64>,
    /// 90th percentile (linear interpolation).
    pub(crate) p90: Option<f64>,
    /// Best.
    pub(crate) best: Option<f64>,
}

/// One search's network.
#[derive(Clone, Debug, Serialize)]
pub struct SearchedArch {
    /// Search seed.
    pub(crate) seed: u64,
    /// Architecture.
    pub arch: String,
    /// Estimated latency, ms.
    pub(crate) est_latency_ms: f64,
    /// Its miss of the target, percent.
    pub(crate) latency_error_pct: f64,
    /// The search's own validation accuracy (shared weights).
    pub(crate) validation_accuracy: f64,
    /// Stand-alone test accuracy per training seed (in seed order).
    pub test_accuracies: Vec<f64>,
    /// Their mean.
    pub(crate) mean: Option<f64>,
    /// Their minimum.
    pub(crate) min: Option<f64>,
    /// Their maximum.
    pub(crate) max: Option<f64>,
    /// Whether the mean is at or above the random cloud's 90th percentile.
    pub(crate) at_or_above_p90: Option<bool>,
    /// Whether the mean is above the best random network.
    pub(crate) above_best: Option<bool>,
}

/// Kendall τ and Spearman ρ between shared-weight and stand-alone accuracy
/// over a target's architectures, on one search's weights.
#[derive(Clone, Debug, Serialize)]
pub struct RankCorrelation {
    /// Search seed.
    pub(crate) seed: u64,
    /// Which weights.
    pub(crate) phase: SharedPhase,
    /// Architectures with both accuracies.
    pub n: usize,
    /// Kendall τ-b.
    pub(crate) kendall_tau: Option<f64>,
    /// Spearman ρ.
    pub(crate) spearman: Option<f64>,
}

/// Everything about one target.
#[derive(Clone, Debug, Serialize)]
pub struct TargetReport {
    /// Target, ms.
    pub(crate) target_ms: f64,
    /// The random cloud.
    pub random: RandomCloud,
    /// The searched networks.
    pub searched: Vec<SearchedArch>,
    /// Mean over searches of the searched networks' mean accuracy.
    pub(crate) searched_mean: Option<f64>,
    /// The worst searched mean minus the random 90th percentile, points.
    pub gap_to_p90_points: Option<f64>,
    /// Training noise: pooled standard deviation over training seeds of the
    /// searched networks and of the random ones trained with every seed
    /// (`noise_random`), points.
    pub training_noise_points: Option<f64>,
    /// Architectures trained with more than one seed that the training
    /// noise rests on.
    pub training_noise_archs: usize,
    /// The part of the random cloud's spread (std, points) that is not
    /// training noise: what any ranking has to tell apart.
    pub(crate) spread_beyond_noise_points: Option<f64>,
    /// The highest Kendall τ any predictor could reach against the random
    /// networks' single-training accuracies, given the training noise
    /// (`tunas_shared::rank::kendall_tau_ceiling`).
    pub kendall_tau_ceiling: Option<f64>,
    /// Rank correlations per search and phase.
    pub rank_correlation: Vec<RankCorrelation>,
}

/// The whole report (`report.json`).
#[derive(Clone, Debug, Serialize)]
pub struct BenchmarkReport {
    /// Space.
    pub(crate) space: String,
    /// Table digest.
    pub(crate) table_digest: String,
    /// Whether every planned piece of work is done.
    pub complete: bool,
    /// Per target.
    pub targets: Vec<TargetReport>,
    /// CPU hours of searches (each piece of work runs on one thread; its
    /// thread's CPU time, so the figure does not depend on the load).
    pub(crate) search_cpu_hours: f64,
    /// CPU hours of stand-alone trainings run in this folder.
    pub(crate) train_cpu_hours: f64,
    /// Trainings reused from other folders (`--trainings-from`): not run
    /// here, so not in this folder's cost.
    pub reused_trainings: usize,
    /// The CPU hours they took where they ran.
    pub(crate) reused_train_cpu_hours: f64,
    /// CPU hours of shared-weight evaluations.
    pub(crate) shared_cpu_hours: f64,
    /// All of it.
    pub(crate) total_cpu_hours: f64,
    /// The recipe's epochs (the rest is in benchmark.json).
    pub(crate) epochs: usize,
}

pub(super) fn mean(v: &[f64]) -> Option<f64> {
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

pub(super) fn std_dev(v: &[f64]) -> Option<f64> {
    let m = mean(v)?;
    (v.len() > 1)
        .then(|| (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (v.len() - 1) as f64).sqrt())
}

struct Index<'a> {
    trained: HashMap<(&'a str, u64), f64>,
    searches: HashMap<(usize, u64), &'a Entry>,
    shared: HashMap<(usize, u64, SharedPhase, &'a str), f64>,
}

impl<'a> Index<'a> {
    fn new(entries: &'a [Entry]) -> Self {
        let mut ix = Index {
            trained: HashMap::new(),
            searches: HashMap::new(),
            shared: HashMap::new(),
        };
        for e in entries {
            match e {
                Entry::Train {
                    arch,
                    seed,
                    test_accuracy,
                    ..
                } => {
                    ix.trained.insert((arch.as_str(), *seed), *test_accuracy);
                }
                Entry::Search { target, seed, .. } => {
                    ix.searches.insert((*target, *seed), e);
                }
                Entry::Shared {
                    target,
                    seed,
                    phase,
                    arch,
                    accuracy,
                    ..
                } => {
                    ix.shared
                        .insert((*target, *seed, *phase, arch.as_str()), *accuracy);
                }
            }
        }
        ix
    }

    fn accuracies(&self, arch: &str, seeds: u64) -> Vec<f64> {
        (0..seeds)
            .filter_map(|s| self.trained.get(&(arch, s)).copied())
            .collect()
    }
}

/// The report of target `t` (of `target_ms`): its random cloud, its
/// searches, and how the shared weights ranked its architectures.
fn target_report(
    ix: &Index,
    t: usize,
    target_ms: f64,
    random: &[(String, f64)],
    settings: &BenchmarkSettings,
) -> TargetReport {
    let cloud = random_cloud(ix, random);
    let searched = searched_archs(ix, t, target_ms, &cloud, settings);
    let seeds = settings.train_seeds as u64;
    let mut repeated: Vec<Vec<f64>> = searched.iter().map(|s| s.test_accuracies.clone()).collect();
    repeated.extend(
        random
            .iter()
            .take(settings.noise_random)
            .map(|(arch, _)| ix.accuracies(arch, seeds)),
    );
    let (training_noise_points, training_noise_archs) = pooled_std_points(&repeated);
    let means: Vec<f64> = searched.iter().filter_map(|s| s.mean).collect();
    let gap = (means.len() == searched.len() && !means.is_empty())
        .then(|| means.iter().copied().fold(f64::INFINITY, f64::min))
        .zip(cloud.p90)
        .map(|(worst, p90)| (worst - p90) * 100.0);
    let rank_correlation = rank_correlations(ix, t, &cloud, &searched);
    let spread_and_noise = cloud.std.map(|s| s * 100.0).zip(training_noise_points);
    TargetReport {
        spread_beyond_noise_points: spread_and_noise
            .map(|(spread, noise)| (spread * spread - noise * noise).max(0.0).sqrt()),
        kendall_tau_ceiling: spread_and_noise
            .and_then(|(spread, noise)| kendall_tau_ceiling(spread, noise)),
        target_ms,
        searched_mean: mean(&means),
        gap_to_p90_points: gap,
        training_noise_points,
        training_noise_archs,
        random: cloud,
        searched,
        rank_correlation,
    }
}

/// The random architectures of a target with their seed-0 accuracies, and
/// the statistics of those accuracies.
fn random_cloud(ix: &Index, random: &[(String, f64)]) -> RandomCloud {
    let archs: Vec<TrainedArch> = random
        .iter()
        .map(|(arch, ms)| TrainedArch {
            arch: arch.clone(),
            est_latency_ms: *ms,
            test_accuracy: ix.trained.get(&(arch.as_str(), 0)).copied(),
        })
        .collect();
    random_cloud_of(archs, random.len())
}

/// The statistics of the trained ones of `archs`, `drawn` of them drawn.
pub(super) fn random_cloud_of(archs: Vec<TrainedArch>, drawn: usize) -> RandomCloud {
    let mut accs: Vec<f64> = archs.iter().filter_map(|a| a.test_accuracy).collect();
    accs.sort_by(f64::total_cmp);
    let q = |p: f64| (!accs.is_empty()).then(|| quantile(&accs, p));
    RandomCloud {
        drawn,
        trained: accs.len(),
        mean: mean(&accs),
        std: std_dev(&accs),
        median: q(0.5),
        p90: q(0.9),
        best: accs.last().copied(),
        archs,
    }
}

/// The pooled standard deviation over the seeds of each architecture's
/// accuracies, in points, and how many architectures (with more than one
/// seed) it rests on.
pub(super) fn pooled_std_points(per_arch: &[Vec<f64>]) -> (Option<f64>, usize) {
    let (mut squares, mut dof, mut archs) = (0.0, 0usize, 0usize);
    for test in per_arch.iter().filter(|t| t.len() > 1) {
        let m = mean(test).expect("not empty");
        squares += test.iter().map(|x| (x - m).powi(2)).sum::<f64>();
        dof += test.len() - 1;
        archs += 1;
    }
    (
        (dof > 0).then(|| (squares / dof as f64).sqrt() * 100.0),
        archs,
    )
}

/// Every finished search of target `t`, with the stand-alone accuracies of
/// its architecture over the training seeds.
fn searched_archs(
    ix: &Index,
    t: usize,
    target_ms: f64,
    cloud: &RandomCloud,
    settings: &BenchmarkSettings,
) -> Vec<SearchedArch> {
    let seeds = settings.train_seeds as u64;
    let mut searched = Vec::new();
    for seed in settings.search_seeds() {
        let Some(Entry::Search {
            arch,
            est_latency_ms,
            validation_accuracy,
            ..
        }) = ix.searches.get(&(t, seed)).copied()
        else {
            continue;
        };
        let test = ix.accuracies(arch, seeds);
        let m = mean(&test);
        searched.push(SearchedArch {
            seed,
            arch: arch.clone(),
            est_latency_ms: *est_latency_ms,
            latency_error_pct: (est_latency_ms / target_ms - 1.0) * 100.0,
            validation_accuracy: *validation_accuracy,
            mean: m,
            min: test.iter().copied().reduce(f64::min),
            max: test.iter().copied().reduce(f64::max),
            at_or_above_p90: m.zip(cloud.p90).map(|(m, p)| m >= p),
            above_best: m.zip(cloud.best).map(|(m, b)| m > b),
            test_accuracies: test,
        });
    }
    searched
}

/// Per search and shared-weights phase, how the shared-weights accuracy
/// ranks the target's architectures against their stand-alone accuracy.
fn rank_correlations(
    ix: &Index,
    t: usize,
    cloud: &RandomCloud,
    searched: &[SearchedArch],
) -> Vec<RankCorrelation> {
    // Stand-alone accuracy of every architecture of the target: random ones
    // at seed 0, searched ones as their mean over training seeds.
    let mut standalone: Vec<(&str, f64)> = cloud
        .archs
        .iter()
        .filter_map(|a| a.test_accuracy.map(|acc| (a.arch.as_str(), acc)))
        .collect();
    standalone.extend(
        searched
            .iter()
            .filter_map(|s| s.mean.map(|m| (s.arch.as_str(), m))),
    );
    let mut rank_correlation = Vec::new();
    for s in searched {
        for phase in [SharedPhase::Warmup, SharedPhase::Final] {
            let pairs: Vec<(f64, f64)> = standalone
                .iter()
                .filter_map(|(arch, acc)| {
                    ix.shared
                        .get(&(t, s.seed, phase, *arch))
                        .map(|sh| (*sh, *acc))
                })
                .collect();
            let (a, b): (Vec<f64>, Vec<f64>) = pairs.iter().copied().unzip();
            let enough = pairs.len() >= 3;
            rank_correlation.push(RankCorrelation {
                seed: s.seed,
                phase,
                n: pairs.len(),
                kendall_tau: enough.then(|| kendall_tau_b(&a, &b)),
                spearman: enough.then(|| spearman(&a, &b)),
            });
        }
    }
    rank_correlation
}

/// Computes the report, writes `report.json` and one chart per target.
pub(crate) fn write(
    files: &BenchmarkDir,
    manifest: &Manifest,
    plan: &Plan,
    entries: &[Entry],
    settings: &BenchmarkSettings,
) -> Result<BenchmarkReport, BenchmarkError> {
    let report = compute(manifest, plan, entries, settings);
    let json = serde_json::to_string_pretty(&report).expect("serialises") + "\n";
    let path = files.report();
    tunas_shared::write_atomic(&path, json.as_bytes())
        .map_err(|e| BenchmarkError::Io { path, source: e })?;
    for (t, tr) in report.targets.iter().enumerate() {
        let chart = chart_of(tr, &manifest.space, settings.recipe.epochs);
        if let Err(e) = cloud_chart(&files.chart(t), &chart) {
            eprintln!("warning: {e}");
        }
    }
    Ok(report)
}

/// The report of a folder's journal as it stands, written nowhere.
pub(super) fn compute(
    manifest: &Manifest,
    plan: &Plan,
    entries: &[Entry],
    settings: &BenchmarkSettings,
) -> BenchmarkReport {
    let ix = Index::new(entries);
    let targets: Vec<TargetReport> = plan
        .targets_ms
        .iter()
        .enumerate()
        .map(|(t, &ms)| target_report(&ix, t, ms, &plan.random[t], settings))
        .collect();
    // A fold from +0.0: an empty sum of f64 is −0.0, which prints "-0.00".
    let hours = |f: fn(&Entry) -> bool| -> f64 {
        entries
            .iter()
            .filter(|e| f(e))
            .map(Entry::cpu_seconds)
            .fold(0.0, |a, b| a + b)
            / 3600.0
    };
    let search = hours(|e| matches!(e, Entry::Search { .. }));
    let train = hours(|e| matches!(e, Entry::Train { .. }) && !e.is_reused());
    let reused = hours(Entry::is_reused);
    let shared = hours(|e| matches!(e, Entry::Shared { .. }));
    let complete = entries.len() >= super::planned_work(settings, plan);
    BenchmarkReport {
        space: manifest.space.clone(),
        table_digest: manifest.table_digest.clone(),
        complete,
        targets,
        search_cpu_hours: search,
        train_cpu_hours: train,
        reused_trainings: entries.iter().filter(|e| e.is_reused()).count(),
        reused_train_cpu_hours: reused,
        shared_cpu_hours: shared,
        total_cpu_hours: search + train + shared,
        epochs: settings.recipe.epochs,
    }
}

fn chart_of(t: &TargetReport, space: &str, epochs: usize) -> CloudChart {
    let pct = |v: f64| v * 100.0;
    let mut levels = Vec::new();
    if let Some(m) = t.random.median {
        levels.push((format!("random median {:.2}%", pct(m)), pct(m)));
    }
    if let Some(p) = t.random.p90 {
        levels.push((format!("random 90th percentile {:.2}%", pct(p)), pct(p)));
    }
    CloudChart {
        title: format!(
            "{space} at {:.4} ms: stand-alone test accuracy after {epochs} epoch(s)",
            t.target_ms
        ),
        x_label: "estimated latency (ms)".into(),
        y_label: "test accuracy (%)".into(),
        cloud_name: format!("random, ±band ({} trained)", t.random.trained),
        cloud: t
            .random
            .archs
            .iter()
            .filter_map(|a| a.test_accuracy.map(|acc| (a.est_latency_ms, pct(acc))))
            .collect(),
        levels,
        highlighted: t
            .searched
            .iter()
            .filter_map(|s| {
                Some(RangePoint {
                    name: format!(
                        "searched, seed {} (mean of {} trainings)",
                        s.seed,
                        s.test_accuracies.len()
                    ),
                    x: s.est_latency_ms,
                    y: pct(s.mean?),
                    y_low: pct(s.min?),
                    y_high: pct(s.max?),
                })
            })
            .collect(),
        vertical: Some(("target".into(), t.target_ms)),
    }
}

/// The report as a table for a person.
pub fn text(r: &BenchmarkReport) -> String {
    let pct = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{:.2}%", v * 100.0));
    let mut out = String::new();
    for t in &r.targets {
        out += &format!(
            "target {:.4} ms: random ({} of {} trained) mean {} ± {}, median {}, p90 {}, best {}\n",
            t.target_ms,
            t.random.trained,
            t.random.drawn,
            pct(t.random.mean),
            t.random
                .std
                .map_or("-".into(), |s| format!("{:.2}", s * 100.0)),
            pct(t.random.median),
            pct(t.random.p90),
            pct(t.random.best)
        );
        for s in &t.searched {
            out += &format!(
                "  searched seed {}: {} {:.4} ms ({:+.1}%), stand-alone {} over {} seeds [{} – {}]{}\n",
                s.seed,
                s.arch,
                s.est_latency_ms,
                s.latency_error_pct,
                pct(s.mean),
                s.test_accuracies.len(),
                pct(s.min),
                pct(s.max),
                match (s.at_or_above_p90, s.above_best) {
                    (_, Some(true)) => ", above the best random",
                    (Some(true), _) => ", at or above random p90",
                    (Some(false), _) => ", below random p90",
                    _ => "",
                }
            );
        }
        if let Some(g) = t.gap_to_p90_points {
            out += &format!("  worst searched − random p90: {g:+.2} points");
            if let Some(n) = t.training_noise_points {
                out += &format!(
                    " (training noise, std over seeds of {} networks: {n:.2} points)",
                    t.training_noise_archs
                );
            }
            out += "\n";
        }
        if let (Some(spread), Some(own), Some(ceiling)) = (
            t.random.std,
            t.spread_beyond_noise_points,
            t.kendall_tau_ceiling,
        ) {
            out += &format!(
                "  random spread {:.2} points (std), {own:.2} of it beyond training noise: no ranking of these single-training accuracies can reach Kendall τ above {ceiling:.2}\n",
                spread * 100.0
            );
        }
        for c in &t.rank_correlation {
            if let (Some(tau), Some(rho)) = (c.kendall_tau, c.spearman) {
                out += &format!(
                    "  shared vs stand-alone, search {} {:?} weights: Kendall τ {tau:.3}, Spearman ρ {rho:.3} over {}\n",
                    c.seed, c.phase, c.n
                );
            }
        }
    }
    out += &format!(
        "cost: {:.2} CPU-hours (searches {:.2}, trainings {:.2}, shared-weight evaluations {:.2}){}{}\n",
        r.total_cpu_hours,
        r.search_cpu_hours,
        r.train_cpu_hours,
        r.shared_cpu_hours,
        if r.reused_trainings > 0 {
            format!(
                "; {} trainings reused from other folders ({:.2} CPU-hours there)",
                r.reused_trainings, r.reused_train_cpu_hours
            )
        } else {
            String::new()
        },
        if r.complete { "" } else { "; not complete yet" }
    );
    out
}
