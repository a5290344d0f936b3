//! The search-vs-random benchmark on a tiny configuration (few steps, two
//! random networks, one short epoch on the repo's subset): every piece of
//! work runs, a rerun redoes nothing, a torn journal line is redone, and a
//! folder of other settings is refused. And a sweep: one search per
//! target, resumed, its folder guarded the same way.

use std::path::{Path, PathBuf};

use tunas_searcher::benchmark::{
    self, BenchmarkError, BenchmarkInputs, BenchmarkSettings, RunSettings, TargetChoice,
};
use tunas_searcher::data::load_idx_dir;
use tunas_shared::{LatencyTable, builtin_space};

fn subset_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../searcher/testdata/fashion-mnist-subset")
}

fn reference_table() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tables/x86_64-amd-epyc-1t/tiny28.csv")
}

fn inputs() -> BenchmarkInputs {
    inputs_of("tiny28", reference_table())
}

/// The test subset with the table at `path` of the built-in `space`.
fn inputs_of(space: &str, path: PathBuf) -> BenchmarkInputs {
    let bytes = std::fs::read(&path).unwrap();
    let mut data = load_idx_dir(&subset_dir()).unwrap();
    data.test = data.test.subset(&(0..200).collect::<Vec<_>>());
    BenchmarkInputs {
        space: builtin_space(space).unwrap(),
        table: LatencyTable::read(&path).unwrap(),
        table_path: path,
        table_digest: tunas_shared::content_digest(&bytes),
        data,
        data_origin: subset_dir().display().to_string(),
    }
}

fn tiny() -> BenchmarkSettings {
    let mut s = BenchmarkSettings::defaults();
    s.targets = TargetChoice::Percentiles(vec![50.0]);
    s.searches = 1;
    s.random = 2;
    s.train_seeds = 2;
    s.recipe.epochs = 1;
    s.recipe.batch = 32;
    s.search.steps = 8;
    s.search.batch = 16;
    s.search.validation_batch = 16;
    s.search.checkpoint_every = 4;
    s.limit_train = Some(400);
    s.holdout = Some(100);
    s.shared_eval_images = 50;
    s.calibration_batches = 1;
    s
}

fn how() -> RunSettings {
    RunSettings {
        jobs: 2,
        progress_every_s: 0,
        trainings_from: Vec::new(),
    }
}

fn journal_lines(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("journal.jsonl"))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn tiny_benchmark_runs_every_piece_and_a_rerun_redoes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let inputs = inputs();
    let report = benchmark::run(dir.path(), &inputs, &tiny(), &how()).unwrap();
    assert!(report.complete);
    let t = &report.targets[0];
    assert_eq!(t.random.trained, 2);
    assert_eq!(t.searched.len(), 1);
    let s = &t.searched[0];
    assert_eq!(s.test_accuracies.len(), 2, "two training seeds");
    assert!(t.training_noise_points.is_some());
    assert!(t.gap_to_p90_points.is_some());
    // The τ ceiling exists whenever the random accuracies spread at all.
    assert!(
        t.kendall_tau_ceiling
            .map_or(t.random.std == Some(0.0), |c| (0.0..=1.0).contains(&c)),
        "{:?} with random std {:?}",
        t.kendall_tau_ceiling,
        t.random.std
    );
    // Shared-weight accuracies on both weights, over the 2 random + 1
    // searched architectures.
    assert_eq!(t.rank_correlation.len(), 2);
    assert!(t.rank_correlation.iter().all(|c| c.n == 3));
    // 1 search + 2 random + 2 searched trainings + 2 phases × 3 archs.
    let lines = journal_lines(dir.path());
    assert_eq!(lines.len(), 1 + 2 + 2 + 6);
    for f in [
        "benchmark.json",
        "report.json",
        "random.json",
        "search-t0-s1/result.json",
        "search-t0-s1/warmup.weights",
    ] {
        assert!(dir.path().join(f).exists(), "{f} missing");
    }
    assert!(!dir.path().join("lock").exists(), "the lock is released");
    // Every piece has its CPU time.
    let v: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    assert!(v["cpu_seconds"].as_f64().unwrap() > 0.0, "{v}");

    // A rerun finds everything done and writes the same report.
    let again = benchmark::run(dir.path(), &inputs, &tiny(), &how()).unwrap();
    assert_eq!(journal_lines(dir.path()), lines);
    assert_eq!(
        serde_json::to_value(&again.targets).unwrap(),
        serde_json::to_value(&report.targets).unwrap()
    );
    // The report can also be written from the journal alone.
    let only = benchmark::report_only(dir.path()).unwrap();
    assert_eq!(
        serde_json::to_value(&only.targets).unwrap(),
        serde_json::to_value(&report.targets).unwrap()
    );
    let text = benchmark::report_text(&report);
    assert!(text.contains("searched seed 1"), "{text}");
    assert!(text.contains("Kendall τ"), "{text}");
}

#[test]
fn a_killed_benchmark_redoes_only_the_torn_piece() {
    let dir = tempfile::tempdir().unwrap();
    let inputs = inputs();
    let mut settings = tiny();
    settings.train_seeds = 1;
    benchmark::run(dir.path(), &inputs, &settings, &how()).unwrap();
    let lines = journal_lines(dir.path());
    // A kill in the middle of the last write leaves half a line; the work
    // of that line is done again, nothing else.
    let last = lines.last().unwrap().clone();
    let kept: String = lines[..lines.len() - 1]
        .iter()
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(
        dir.path().join("journal.jsonl"),
        format!("{kept}{}", &last[..last.len() / 2]),
    )
    .unwrap();
    benchmark::run(dir.path(), &inputs, &settings, &how()).unwrap();
    let after = journal_lines(dir.path());
    assert_eq!(after.len(), lines.len());
    assert_eq!(after[..lines.len() - 1], lines[..lines.len() - 1]);
    let key = |l: &str| {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        (
            v["kind"].clone(),
            v["arch"].clone(),
            v["seed"].clone(),
            v["phase"].clone(),
        )
    };
    assert_eq!(key(&after[lines.len() - 1]), key(&last));
}

#[test]
fn noise_random_adds_seeds_of_random_networks_and_may_only_grow() {
    let dir = tempfile::tempdir().unwrap();
    let inputs = inputs();
    let settings = tiny();
    let first = benchmark::run(dir.path(), &inputs, &settings, &how()).unwrap();
    assert_eq!(first.targets[0].training_noise_archs, 1, "the searched one");
    let before = journal_lines(dir.path());
    // Raised on the same folder: only the second seed of the first random
    // network is new work.
    let mut more = settings.clone();
    more.noise_random = 1;
    let report = benchmark::run(dir.path(), &inputs, &more, &how()).unwrap();
    let after = journal_lines(dir.path());
    assert_eq!(after[..before.len()], before[..]);
    assert_eq!(after.len(), before.len() + 1);
    let added: serde_json::Value = serde_json::from_str(after.last().unwrap()).unwrap();
    let random: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("random.json")).unwrap())
            .unwrap();
    let first_random = random[0][0][0].as_str().unwrap();
    assert_eq!(added["kind"], "train");
    assert_eq!(added["seed"], 1);
    assert_eq!(added["arch"].as_str(), Some(first_random));
    assert!(report.complete);
    let t = &report.targets[0];
    assert_eq!(t.training_noise_archs, 2);
    // The random cloud still counts one training (seed 0) per network.
    assert_eq!(t.random.trained, 2);
    // The pooled noise is that of both pairs of seeds.
    let by_key = trainings(dir.path());
    let pair = |arch: &str| {
        (
            by_key[&(arch.to_string(), 0)].0,
            by_key[&(arch.to_string(), 1)].0,
        )
    };
    let (a0, a1) = (
        t.searched[0].test_accuracies[0],
        t.searched[0].test_accuracies[1],
    );
    let (b0, b1) = pair(first_random);
    // Two seeds each: the variance of a pair is half its squared difference.
    let pooled = (((a0 - a1).powi(2) / 2.0 + (b0 - b1).powi(2) / 2.0) / 2.0).sqrt() * 100.0;
    assert!((t.training_noise_points.unwrap() - pooled).abs() < 1e-9);
    let stored: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("benchmark.json")).unwrap())
            .unwrap();
    assert_eq!(stored["settings"]["noise_random"], 1);
    // Lowered again: refused, naming the setting.
    let err = benchmark::prepare(dir.path(), &inputs, &settings).unwrap_err();
    assert!(err.to_string().contains("noise_random"), "{err}");
}

/// The `train` lines of a journal: (arch, seed) → (accuracy, reused from).
fn trainings(dir: &Path) -> std::collections::HashMap<(String, u64), (f64, Option<String>)> {
    journal_lines(dir)
        .iter()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["kind"] == "train")
        .map(|v| {
            (
                (
                    v["arch"].as_str().unwrap().to_string(),
                    v["seed"].as_u64().unwrap(),
                ),
                (
                    v["test_accuracy"].as_f64().unwrap(),
                    v["reused_from"].as_str().map(str::to_string),
                ),
            )
        })
        .collect()
}

/// A tiny benchmark, and a second one of other search settings (another
/// validation batch; search seed 2, a further seed of the setting) on the
/// same space, images and recipe, reusing the first one's trainings.
fn a_benchmark_and_one_reusing_it(
    inputs: &BenchmarkInputs,
) -> (
    tempfile::TempDir,
    tempfile::TempDir,
    BenchmarkSettings,
    benchmark::BenchmarkReport,
) {
    let first = tempfile::tempdir().unwrap();
    benchmark::run(first.path(), inputs, &tiny(), &how()).unwrap();
    let mut other_search = tiny();
    other_search.search.validation_batch = 32;
    other_search.first_search_seed = 2;
    let reusing = RunSettings {
        trainings_from: vec![first.path().to_path_buf()],
        ..how()
    };
    let second = tempfile::tempdir().unwrap();
    let report = benchmark::run(second.path(), inputs, &other_search, &reusing).unwrap();
    (first, second, other_search, report)
}

#[test]
fn trainings_are_reused_from_a_folder_of_the_same_recipe_and_equal_a_rerun() {
    let inputs = inputs();
    let (first, second, other_search, report) = a_benchmark_and_one_reusing_it(&inputs);
    let done = trainings(first.path());
    assert!(report.complete);
    let random: Vec<Vec<(String, f64)>> =
        serde_json::from_str(&std::fs::read_to_string(second.path().join("random.json")).unwrap())
            .unwrap();
    let here = trainings(second.path());
    let origin = first.path().display().to_string();
    for (arch, _) in &random[0] {
        let (accuracy, from) = &here[&(arch.clone(), 0)];
        assert_eq!(
            from.as_deref(),
            Some(origin.as_str()),
            "{arch} was not reused"
        );
        assert_eq!(*accuracy, done[&(arch.clone(), 0)].0);
    }
    // The searched network's trainings ran here, unless the first folder
    // happened to hold the same architecture.
    assert!(second.path().join("search-t0-s2/result.json").exists());
    assert!(!second.path().join("search-t0-s1").exists());
    let searched = &report.targets[0].searched[0].arch;
    let reused_searched = done.contains_key(&(searched.clone(), 0));
    assert_eq!(here[&(searched.clone(), 0)].1.is_some(), reused_searched);
    let reused = here.values().filter(|t| t.1.is_some()).count();
    assert_eq!(report.reused_trainings, reused);
    let text = benchmark::report_text(&report);
    assert!(
        text.contains(&format!("{reused} trainings reused from other folders")),
        "{text}"
    );
    // A reused training is what running it again gives: a fresh folder of
    // the same settings trains the random networks to the same accuracies.
    let fresh = tempfile::tempdir().unwrap();
    benchmark::run(fresh.path(), &inputs, &other_search, &how()).unwrap();
    let rerun = trainings(fresh.path());
    for (arch, _) in &random[0] {
        assert_eq!(rerun[&(arch.clone(), 0)].0, here[&(arch.clone(), 0)].0);
        assert!(rerun[&(arch.clone(), 0)].1.is_none());
    }

    // Another recipe's trainings are refused before any work, naming the
    // setting; so are the benchmark's own folder and a folder without a
    // benchmark.
    let mut other_recipe = tiny();
    other_recipe.recipe.epochs = 2;
    let third = tempfile::tempdir().unwrap();
    let reusing = RunSettings {
        trainings_from: vec![first.path().to_path_buf()],
        ..how()
    };
    let err = benchmark::run(third.path(), &inputs, &other_recipe, &reusing).unwrap_err();
    match &err {
        BenchmarkError::ForeignTrainings {
            key, stored, given, ..
        } => {
            assert_eq!(key, "settings.recipe.epochs");
            assert_eq!((stored.as_str(), given.as_str()), ("1", "2"));
        }
        e => panic!("expected foreign trainings, got {e}"),
    }
    assert!(!third.path().join("journal.jsonl").exists() || journal_lines(third.path()).is_empty());
    let own = RunSettings {
        trainings_from: vec![second.path().to_path_buf()],
        ..how()
    };
    let err = benchmark::run(second.path(), &inputs, &other_search, &own).unwrap_err();
    assert!(err.to_string().contains("own folder"), "{err}");
    let empty = tempfile::tempdir().unwrap();
    let nothing = RunSettings {
        trainings_from: vec![empty.path().to_path_buf()],
        ..how()
    };
    let fourth = tempfile::tempdir().unwrap();
    let err = benchmark::run(fourth.path(), &inputs, &tiny(), &nothing).unwrap_err();
    assert!(err.to_string().contains("no benchmark.json"), "{err}");
}

#[test]
fn a_folder_of_other_settings_is_refused_naming_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    let inputs = inputs();
    let mut settings = tiny();
    settings.random = 2;
    // Only the manifest is needed: prepare writes it without running.
    benchmark::prepare(dir.path(), &inputs, &settings).unwrap();
    let mut other = settings.clone();
    other.recipe.epochs = 2;
    let err = benchmark::prepare(dir.path(), &inputs, &other).unwrap_err();
    match &err {
        BenchmarkError::Mismatch {
            key, stored, given, ..
        } => {
            assert_eq!(key, "settings.recipe.epochs");
            assert_eq!((stored.as_str(), given.as_str()), ("1", "2"));
        }
        e => panic!("expected a mismatch, got {e}"),
    }
    // Another table (another digest) is refused too.
    let mut moved = BenchmarkInputs {
        table_digest: "0000000000000000".into(),
        ..inputs
    };
    let err = benchmark::prepare(dir.path(), &moved, &settings).unwrap_err();
    assert!(err.to_string().contains("table_digest"), "{err}");
    // ...and another space's table is refused before anything is written.
    moved.space = builtin_space("proxylessnas").unwrap();
    let fresh = tempfile::tempdir().unwrap();
    assert!(benchmark::prepare(fresh.path(), &moved, &settings).is_err());
}

#[test]
fn an_unreachable_band_is_said_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = tiny();
    settings.targets = TargetChoice::Ms(vec![0.001]);
    settings.band_draws = 2000;
    let err = benchmark::prepare(dir.path(), &inputs(), &settings).unwrap_err();
    assert!(
        matches!(err, BenchmarkError::BandUnreachable { found: 0, .. }),
        "{err}"
    );
    assert!(!dir.path().join("benchmark.json").exists());
}

#[test]
fn a_two_target_sweep_gives_a_front_and_resumes() {
    use tunas_searcher::sweep::{self, SweepProgress, SweepSettings};
    const QUIET_SWEEP: SweepProgress = SweepProgress {
        lines: false,
        every_s: 0,
    };
    let dir = tempfile::tempdir().unwrap();
    let inputs = inputs();
    let t = tiny();
    let settings = SweepSettings {
        targets: TargetChoice::Percentiles(vec![25.0, 75.0]),
        search: t.search.clone(),
        holdout: t.holdout,
        limit_train: t.limit_train,
    };
    let front = sweep::run(dir.path(), &inputs, &settings, 2, QUIET_SWEEP).unwrap();
    assert_eq!(front.points.len(), 2);
    assert!(front.points[0].target_ms < front.points[1].target_ms);
    for f in [
        "sweep.json",
        "front.json",
        "target-0/result.json",
        "target-1/result.json",
    ] {
        assert!(dir.path().join(f).exists(), "{f} missing");
    }
    // Again: the finished searches are read back, not run.
    let stamp = |i: usize| {
        std::fs::metadata(dir.path().join(format!("target-{i}/result.json")))
            .unwrap()
            .modified()
            .unwrap()
    };
    let before = (stamp(0), stamp(1));
    let again = sweep::run(dir.path(), &inputs, &settings, 2, QUIET_SWEEP).unwrap();
    assert_eq!((stamp(0), stamp(1)), before);
    assert_eq!(again.points[1].arch, front.points[1].arch);
    // Another search setting in the same folder is refused.
    let mut other = settings.clone();
    other.search.beta = -0.2;
    let err = sweep::run(dir.path(), &inputs, &other, 1, QUIET_SWEEP).unwrap_err();
    assert!(err.to_string().contains("settings.search.beta"), "{err}");
    // A table of another space: the space is named, not a setting
    // derived from it.
    let proxyless =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../tables/x86_64-amd-epyc-1t/proxylessnas.csv");
    let another_space = inputs_of("proxylessnas", proxyless);
    let err = sweep::run(dir.path(), &another_space, &settings, 1, QUIET_SWEEP).unwrap_err();
    assert!(err.to_string().contains("space = \"tiny28\""), "{err}");
    // Another table of the space at another path: its content counts,
    // not its path.
    let moved = dir.path().join("moved.csv");
    let text = std::fs::read_to_string(reference_table()).unwrap();
    let edited = text.replacen(",2.161,", ",2.261,", 1);
    assert_ne!(edited, text);
    std::fs::write(&moved, &edited).unwrap();
    let another_table = inputs_of("tiny28", moved.clone());
    let err = sweep::run(dir.path(), &another_table, &settings, 1, QUIET_SWEEP).unwrap_err();
    assert!(err.to_string().contains("table_digest"), "{err}");
    // The same content moved: accepted, nothing searched again.
    std::fs::copy(reference_table(), &moved).unwrap();
    let moved_same = inputs_of("tiny28", moved);
    sweep::run(dir.path(), &moved_same, &settings, 1, QUIET_SWEEP).unwrap();
    assert_eq!((stamp(0), stamp(1)), before);
    let text = sweep::text(&front);
    assert_eq!(text.lines().count(), 3, "{text}");
}

#[test]
fn compare_puts_folders_of_one_recipe_side_by_side_and_refuses_another() {
    let inputs = inputs();
    let (first, second, _, _) = a_benchmark_and_one_reusing_it(&inputs);
    let dirs = [first.path().to_path_buf(), second.path().to_path_buf()];
    let chart = second.path().join("compare.svg");
    let c = benchmark::compare(&dirs, 0, Some(&chart)).unwrap();
    assert!(chart.exists());
    // The second folder's changes against the first, and nothing else.
    assert!(
        c.folders[0].changes.is_empty(),
        "{:?}",
        c.folders[0].changes
    );
    let mut changes = c.folders[1].changes.clone();
    changes.sort();
    assert_eq!(changes, ["first_search_seed=2", "validation_batch=32"]);
    // The random networks are the same ones (reused): counted once.
    assert_eq!(c.random.trained, 2);
    assert_eq!(c.pooled.searches, 2);
    let searched: Vec<f64> = c
        .folders
        .iter()
        .flat_map(|f| &f.searched)
        .map(|s| s.test_accuracies.iter().sum::<f64>() / s.test_accuracies.len() as f64)
        .collect();
    let mean = (searched[0] + searched[1]) / 2.0;
    assert!((c.pooled.mean.unwrap() - mean).abs() < 1e-12);
    let text = benchmark::comparison_text(&c);
    assert!(text.contains("pooled over 2 searches"), "{text}");
    assert!(text.contains("validation_batch=32"), "{text}");
    // Another recipe measures something else: refused, naming the setting.
    let mut other_recipe = tiny();
    other_recipe.recipe.epochs = 2;
    let third = tempfile::tempdir().unwrap();
    benchmark::prepare(third.path(), &inputs, &other_recipe).unwrap();
    // As a run leaves it before its first piece of work.
    std::fs::copy(
        first.path().join("random.json"),
        third.path().join("random.json"),
    )
    .unwrap();
    let with_third = [first.path().to_path_buf(), third.path().to_path_buf()];
    let err = benchmark::compare(&with_third, 0, None).unwrap_err();
    assert!(matches!(err, BenchmarkError::Incomparable { .. }), "{err}");
    assert!(err.to_string().contains("recipe.epochs"), "{err}");
    // So is a target the folders do not have, and a folder of no benchmark.
    let err = benchmark::compare(&dirs, 1, None).unwrap_err();
    assert!(err.to_string().contains("not 1"), "{err}");
    let empty = tempfile::tempdir().unwrap();
    let err = benchmark::compare(&[empty.path().to_path_buf()], 0, None).unwrap_err();
    assert!(err.to_string().contains("no benchmark.json"), "{err}");
}
