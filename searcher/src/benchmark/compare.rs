//! Benchmark folders of one space, table, images, recipe and target side
//! by side: what each folder's settings change against the first, its
//! searched networks against the random cloud of them all, and every
//! search pooled (mean, spread, Welch difference to the random mean, how
//! many reach the random 90th percentile). The question it answers: did
//! any setting make the search win, and does the search beat a random
//! draw on average?

use std::path::{Path, PathBuf};

use serde::Serialize;
use tunas_shared::plot::{CategoryChart, RangeMark, category_chart};

use super::report::{self, RandomCloud, SearchedArch, TrainedArch};
use super::{BenchmarkError, SharedPhase, differences, read_folder};

/// One folder's row.
#[derive(Clone, Debug, Serialize)]
pub struct FolderRow {
    /// The folder.
    pub dir: PathBuf,
    /// Its short name: the folder name without what all folders' names
    /// begin with.
    pub label: String,
    /// Its settings that differ from the first folder's, `key=value`.
    pub changes: Vec<String>,
    /// Whether its benchmark is complete.
    pub complete: bool,
    /// Its searched networks; the p90 and best flags against the pooled
    /// random cloud.
    pub searched: Vec<SearchedArch>,
    /// Kendall τ on each search's final shared weights, in search order.
    pub tau_final: Vec<Option<f64>>,
    /// Kendall τ on each search's warm-up weights.
    pub tau_warmup: Vec<Option<f64>>,
    /// CPU hours of its searches.
    pub search_cpu_hours: f64,
}

/// Every searched network of every folder against the random cloud.
#[derive(Clone, Debug, Serialize)]
pub struct Pooled {
    /// Searched networks with a stand-alone accuracy.
    pub searches: usize,
    /// Mean of their accuracies (each the mean over its training seeds).
    pub mean: Option<f64>,
    /// Their standard deviation.
    pub std: Option<f64>,
    /// Searched mean minus random mean, points.
    pub difference_points: Option<f64>,
    /// Its standard error (Welch), points.
    pub standard_error_points: Option<f64>,
    /// Searched networks at or above the random 90th percentile.
    pub at_or_above_p90: usize,
    /// Searched networks above the best random network.
    pub above_best: usize,
    /// Pooled standard deviation over training seeds of the searched
    /// networks, points.
    pub training_noise_points: Option<f64>,
    /// Networks it rests on.
    pub training_noise_archs: usize,
}

/// The comparison (`compare --json`).
#[derive(Clone, Debug, Serialize)]
pub struct Comparison {
    /// Space.
    pub space: String,
    /// Table digest.
    pub table_digest: String,
    /// Target, ms.
    pub target_ms: f64,
    /// The recipe's epochs.
    pub epochs: usize,
    /// The random networks of all folders (each architecture once, from the
    /// first folder that trained it).
    pub random: RandomCloud,
    /// One row per folder, in the order given.
    pub folders: Vec<FolderRow>,
    /// All searches together.
    pub pooled: Pooled,
}

/// Compares the folders `dirs` at target index `target`; with `chart`, also
/// draws them (SVG or PNG by the extension).
pub fn compare(
    dirs: &[PathBuf],
    target: usize,
    chart: Option<&Path>,
) -> Result<Comparison, BenchmarkError> {
    let Some(base_dir) = dirs.first() else {
        return Err(BenchmarkError::BadSetting {
            what: "compare",
            why: "give at least one benchmark folder".into(),
        });
    };
    let folders: Vec<_> = dirs
        .iter()
        .map(|d| read_folder(d, "compare").map(|f| (d, f)))
        .collect::<Result<_, _>>()?;
    let (_, (base, _, _)) = &folders[0];
    let base_value = comparable(base, target, base_dir)?;
    let labels = short_labels(dirs);
    let mut rows = Vec::new();
    let mut cloud: Vec<TrainedArch> = Vec::new();
    for ((dir, (manifest, plan, entries)), label) in folders.iter().zip(labels) {
        let value = comparable(manifest, target, dir)?;
        if let Some((key, there, here)) = differences(&value, &base_value, "").into_iter().next() {
            return Err(BenchmarkError::Incomparable {
                dir: dir.to_path_buf(),
                base: base_dir.clone(),
                key,
                value: there,
                base_value: here,
            });
        }
        let r = report::compute(manifest, plan, entries, &manifest.settings);
        let t = &r.targets[target];
        for a in &t.random.archs {
            if a.test_accuracy.is_some() && !cloud.iter().any(|c| c.arch == a.arch) {
                cloud.push(a.clone());
            }
        }
        let tau = |phase: SharedPhase| {
            t.searched
                .iter()
                .map(|s| {
                    t.rank_correlation
                        .iter()
                        .find(|c| c.seed == s.seed && c.phase == phase)
                        .and_then(|c| c.kendall_tau)
                })
                .collect()
        };
        rows.push(FolderRow {
            dir: dir.to_path_buf(),
            label,
            changes: setting_changes(&base.settings, &manifest.settings),
            complete: r.complete,
            searched: t.searched.clone(),
            tau_final: tau(SharedPhase::Final),
            tau_warmup: tau(SharedPhase::Warmup),
            search_cpu_hours: r.search_cpu_hours,
        });
    }
    let drawn = cloud.len();
    let random = report::random_cloud_of(cloud, drawn);
    for s in rows.iter_mut().flat_map(|r| r.searched.iter_mut()) {
        s.at_or_above_p90 = s.mean.zip(random.p90).map(|(m, p)| m >= p);
        s.above_best = s.mean.zip(random.best).map(|(m, b)| m > b);
    }
    let pooled = pooled(&rows, &random);
    let comparison = Comparison {
        space: base.space.clone(),
        table_digest: base.table_digest.clone(),
        target_ms: base.targets_ms[target],
        epochs: base.settings.recipe.epochs,
        random,
        folders: rows,
        pooled,
    };
    if let Some(path) = chart {
        category_chart(path, &chart_of(&comparison)).map_err(|e| BenchmarkError::BadSetting {
            what: "chart",
            why: e.to_string(),
        })?;
    }
    Ok(comparison)
}

/// What must be equal for two folders to be compared: space, table, images,
/// recipe and the target's latency.
fn comparable(
    m: &super::Manifest,
    target: usize,
    dir: &Path,
) -> Result<serde_json::Value, BenchmarkError> {
    let Some(target_ms) = m.targets_ms.get(target) else {
        return Err(BenchmarkError::BadSetting {
            what: "target",
            why: format!(
                "{} has {} target(s) (0 to {}), not {target}",
                dir.display(),
                m.targets_ms.len(),
                m.targets_ms.len().saturating_sub(1)
            ),
        });
    };
    Ok(serde_json::json!({
        "space": m.space,
        "space_hash": m.space_hash,
        "table_digest": m.table_digest,
        "data": m.data,
        "target_ms": target_ms,
        "recipe": serde_json::to_value(&m.settings.recipe).expect("serialises"),
    }))
}

/// The settings of `other` that differ from `base`'s, as `key=value`
/// (the search's own settings without their `search.` prefix); the targets
/// and the recipe are equal by then and left out.
fn setting_changes(
    base: &super::BenchmarkSettings,
    other: &super::BenchmarkSettings,
) -> Vec<String> {
    let strip = |mut v: serde_json::Value| {
        if let Some(o) = v.as_object_mut() {
            o.remove("targets");
            o.remove("recipe");
        }
        v
    };
    let a = strip(serde_json::to_value(base).expect("serialises"));
    let b = strip(serde_json::to_value(other).expect("serialises"));
    differences(&a, &b, "")
        .into_iter()
        .map(|(key, _, value)| {
            let key = key.strip_prefix("search.").unwrap_or(&key).to_string();
            format!("{key}={}", short_value(&value))
        })
        .collect()
}

/// A setting's JSON text as a person writes it: strings without quotes,
/// numbers to 6 significant digits (an f32 setting read as f64 prints as
/// 0.10000000149011612).
fn short_value(json: &str) -> String {
    match serde_json::from_str::<serde_json::Value>(json) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(serde_json::Value::Number(n)) if !n.is_i64() && !n.is_u64() => {
            let v = n.as_f64().expect("a JSON number");
            let digits = 5 - v.abs().log10().floor().clamp(-20.0, 20.0) as i32;
            let text = format!("{v:.*}", digits.max(0) as usize);
            if text.contains('.') {
                text.trim_end_matches('0').trim_end_matches('.').to_string()
            } else {
                text
            }
        }
        _ => json.to_string(),
    }
}

/// Each folder's name without the beginning all names share (cut at a `-`
/// or `_`); a name left empty keeps its whole.
fn short_labels(dirs: &[PathBuf]) -> Vec<String> {
    let names: Vec<String> = dirs
        .iter()
        .map(|d| {
            d.file_name()
                .map_or_else(|| d.display().to_string(), |n| n.to_string_lossy().into())
        })
        .collect();
    let mut common = if names.len() > 1 {
        names.iter().skip(1).fold(names[0].len(), |n, other| {
            names[0]
                .bytes()
                .zip(other.bytes())
                .take(n)
                .take_while(|(a, b)| a == b)
                .count()
        })
    } else {
        0
    };
    // Only whole words: back to the last separator inside the shared part.
    while common > 0 && !names.iter().all(|n| separator_at(n, common)) {
        common -= 1;
    }
    names
        .iter()
        .map(|n| {
            let rest = n[common..].trim_start_matches(['-', '_']);
            if rest.is_empty() {
                n.clone()
            } else {
                rest.into()
            }
        })
        .collect()
}

/// Whether `name` ends at byte `at` or has a separator there.
fn separator_at(name: &str, at: usize) -> bool {
    name.len() == at || matches!(name.as_bytes().get(at), Some(b'-' | b'_'))
}

/// Difference of the means of `a` and `b` and its standard error (Welch:
/// each sample's own variance).
pub(crate) fn welch(a: &[f64], b: &[f64]) -> Option<(f64, f64)> {
    let (ma, mb) = (report::mean(a)?, report::mean(b)?);
    let (sa, sb) = (report::std_dev(a)?, report::std_dev(b)?);
    let se = (sa * sa / a.len() as f64 + sb * sb / b.len() as f64).sqrt();
    Some((ma - mb, se))
}

fn pooled(rows: &[FolderRow], random: &RandomCloud) -> Pooled {
    let searched: Vec<&SearchedArch> = rows.iter().flat_map(|r| &r.searched).collect();
    let means: Vec<f64> = searched.iter().filter_map(|s| s.mean).collect();
    let randoms: Vec<f64> = random
        .archs
        .iter()
        .filter_map(|a| a.test_accuracy)
        .collect();
    let welch = welch(&means, &randoms);
    let repeated: Vec<Vec<f64>> = searched.iter().map(|s| s.test_accuracies.clone()).collect();
    let (training_noise_points, training_noise_archs) = report::pooled_std_points(&repeated);
    Pooled {
        searches: means.len(),
        mean: report::mean(&means),
        std: report::std_dev(&means),
        difference_points: welch.map(|w| w.0 * 100.0),
        standard_error_points: welch.map(|w| w.1 * 100.0),
        at_or_above_p90: searched
            .iter()
            .filter(|s| s.at_or_above_p90 == Some(true))
            .count(),
        above_best: searched
            .iter()
            .filter(|s| s.above_best == Some(true))
            .count(),
        training_noise_points,
        training_noise_archs,
    }
}

fn chart_of(c: &Comparison) -> CategoryChart {
    let pct = |v: f64| v * 100.0;
    let mut levels = Vec::new();
    for (name, v) in [
        ("random median", c.random.median),
        ("random 90th percentile", c.random.p90),
        ("best random", c.random.best),
    ] {
        if let Some(v) = v {
            levels.push((format!("{name} {:.2}%", pct(v)), pct(v)));
        }
    }
    let mut categories = vec!["random".to_string()];
    categories.extend(c.folders.iter().map(|f| f.label.clone()));
    CategoryChart {
        title: format!(
            "{} at {:.4} ms: searched against random, stand-alone after {} epoch(s)",
            c.space, c.target_ms, c.epochs
        ),
        y_label: "test accuracy (%)".into(),
        categories,
        dots_name: format!("random, ±band ({} trained)", c.random.trained),
        dots: c
            .random
            .archs
            .iter()
            .filter_map(|a| a.test_accuracy.map(|acc| (0, pct(acc))))
            .collect(),
        marks_name: "searched (mean over training seeds; bar: min–max)".into(),
        marks: c
            .folders
            .iter()
            .enumerate()
            .flat_map(|(i, f)| {
                f.searched.iter().filter_map(move |s| {
                    Some((
                        i + 1,
                        RangeMark {
                            y: pct(s.mean?),
                            y_low: pct(s.min?),
                            y_high: pct(s.max?),
                        },
                    ))
                })
            })
            .collect(),
        levels,
    }
}

/// The comparison as a table for a person.
pub fn comparison_text(c: &Comparison) -> String {
    let pct = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{:.2}%", v * 100.0));
    let r = &c.random;
    let mut out = format!(
        "{} at {:.4} ms (table {}, {}-epoch recipe): random, {} trained over {} folder(s): mean {} ± {}, median {}, p90 {}, best {}\n",
        c.space,
        c.target_ms,
        c.table_digest,
        c.epochs,
        r.trained,
        c.folders.len(),
        pct(r.mean),
        r.std.map_or("-".into(), |s| format!("{:.2}", s * 100.0)),
        pct(r.median),
        pct(r.p90),
        pct(r.best),
    );
    let cells: Vec<[String; 6]> = c
        .folders
        .iter()
        .map(|f| {
            let join = |v: Vec<String>| v.join("  ");
            let tau = |t: &[Option<f64>]| {
                join(
                    t.iter()
                        .map(|t| t.map_or("-".into(), |t| format!("{t:.2}")))
                        .collect(),
                )
            };
            [
                format!("{}{}", f.label, if f.complete { "" } else { " (running)" }),
                join(
                    f.searched
                        .iter()
                        .map(|s| {
                            let mark = match (s.at_or_above_p90, s.above_best) {
                                (_, Some(true)) => "++",
                                (Some(true), _) => "+",
                                _ => "",
                            };
                            format!("{}{mark}", pct(s.mean))
                        })
                        .collect(),
                ),
                join(
                    f.searched
                        .iter()
                        .map(|s| format!("{:+.1}%", s.latency_error_pct))
                        .collect(),
                ),
                tau(&f.tau_final),
                tau(&f.tau_warmup),
                if f.changes.is_empty() {
                    "-".into()
                } else {
                    f.changes.join(" ")
                },
            ]
        })
        .collect();
    let header = [
        "folder",
        "searched",
        "latency",
        "τ final",
        "τ warm-up",
        "changes (against the first folder)",
    ];
    let widths: Vec<usize> = (0..header.len())
        .map(|i| {
            cells
                .iter()
                .map(|row| row[i].chars().count())
                .chain([header[i].chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |row: &[&str]| {
        let mut s = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == row.len() {
                s += cell;
            } else {
                s += &format!("{cell:<w$}  ", w = widths[i]);
            }
        }
        s.trim_end().to_string() + "\n"
    };
    out += &line(&header);
    for row in &cells {
        out += &line(&row.each_ref().map(String::as_str));
    }
    let p = &c.pooled;
    out += &format!(
        "pooled over {} searches: mean {} ± {} against random {}",
        p.searches,
        pct(p.mean),
        p.std.map_or("-".into(), |s| format!("{:.2}", s * 100.0)),
        pct(r.mean)
    );
    if let (Some(d), Some(se)) = (p.difference_points, p.standard_error_points) {
        out += &format!(
            ": {d:+.2} points, standard error {se:.2} (Welch), {:.1} standard errors",
            if se > 0.0 { d / se } else { f64::NAN }
        );
    }
    out += &format!(
        "; {} of {} at or above the random p90 (+), {} above its best (++)",
        p.at_or_above_p90, p.searches, p.above_best
    );
    if let Some(n) = p.training_noise_points {
        out += &format!(
            "; training noise {n:.2} points (std over seeds, {} networks)",
            p.training_noise_archs
        );
    }
    out += "\n";
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn welch_matches_a_hand_computed_example() {
        // Means 2 and 5; variances 1 (n 3) and 4 (n 4): SE √(1/3 + 1).
        let (d, se) = welch(&[1.0, 2.0, 3.0], &[3.0, 3.0, 7.0, 7.0]).unwrap();
        assert!((d + 3.0).abs() < 1e-12, "{d}");
        let var_b = (4.0 + 4.0 + 4.0 + 4.0) / 3.0;
        let want = (1.0f64 / 3.0 + var_b / 4.0).sqrt();
        assert!((se - want).abs() < 1e-12, "{se} against {want}");
        assert!(
            welch(&[1.0], &[1.0, 2.0]).is_none(),
            "one value has no spread"
        );
    }

    #[test]
    fn settings_read_as_a_person_writes_them() {
        assert_eq!(short_value("0.10000000149011612"), "0.1");
        assert_eq!(short_value("0.02666666666666667"), "0.0266667");
        assert_eq!(short_value("0.005925925925925926"), "0.00592593");
        assert_eq!(short_value("9000"), "9000");
        assert_eq!(short_value("123456.7"), "123457");
        assert_eq!(short_value("\"sampled\""), "sampled");
        assert_eq!(short_value("[1,2]"), "[1,2]");
    }

    #[test]
    fn labels_drop_the_shared_beginning_at_a_word_boundary() {
        let dirs: Vec<PathBuf> = [
            "reports/benchmark-rgb32-p25",
            "reports/benchmark-rgb32-p25-k2",
            "x/benchmark-rgb32-p25-lrhalf",
            "benchmark-rgb32-p25-lr2x",
        ]
        .iter()
        .map(PathBuf::from)
        .collect();
        assert_eq!(
            short_labels(&dirs),
            ["benchmark-rgb32-p25", "k2", "lrhalf", "lr2x"]
        );
        // "lr" is shared by the last two, but not a whole word.
        let two: Vec<PathBuf> = ["a-lrhalf", "a-lr2x"].iter().map(PathBuf::from).collect();
        assert_eq!(short_labels(&two), ["lrhalf", "lr2x"]);
        assert_eq!(short_labels(&[PathBuf::from("only")]), ["only"]);
    }
}
