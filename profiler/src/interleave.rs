//! Interleaving: calibration networks are timed among the context networks
//! and one-op models, in a seeded random order, so a slow period of the
//! device hits every kind of measurement alike instead of one phase.
//!
//! Each finished calibration network's end-to-end time is kept in the
//! journal's `x-calibration-e2e-us` line (`INDEX=US` pairs, shortest
//! round-trip decimals), so a killed run resumes with none lost or timed
//! again.

use std::collections::BTreeMap;

use rand::{Rng, SeedableRng};

/// The journal field of finished calibration networks.
pub(crate) const CALIBRATION_E2E_FIELD: &str = "x-calibration-e2e-us";

/// Parses `INDEX=US` pairs; a malformed pair is an error naming it.
pub(crate) fn parse_calibration_times(text: &str) -> Result<BTreeMap<usize, f64>, String> {
    let mut times = BTreeMap::new();
    for pair in text.split_whitespace() {
        let parsed = pair.split_once('=').and_then(|(i, v)| {
            let v: f64 = v
                .parse()
                .ok()
                .filter(|v: &f64| v.is_finite() && *v >= 0.0)?;
            Some((i.parse::<usize>().ok()?, v))
        });
        let (i, v) = parsed.ok_or_else(|| format!("'{pair}' is not INDEX=MICROSECONDS"))?;
        if times.insert(i, v).is_some() {
            return Err(format!("calibration network {i} appears twice"));
        }
    }
    Ok(times)
}

/// The `x-calibration-e2e-us` value (lossless).
pub(crate) fn calibration_times_text(times: &BTreeMap<usize, f64>) -> String {
    times
        .iter()
        .map(|(i, v)| format!("{i}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Decides, after each unit of op measurement, whether a calibration
/// network is timed next: with probability `left / (left + units_left)`,
/// where `units_left` estimates the op units still to come from the keys
/// left and the keys each unit has finished so far. So the calibration
/// networks spread evenly over the run in a seeded order.
#[derive(Debug)]
pub(crate) struct Interleave {
    rng: rand::rngs::StdRng,
    units: usize,
    keys_done: usize,
}

impl Interleave {
    /// A schedule seeded with `seed` (a resumed run passes a seed that
    /// depends on what is already done, so it does not replay choices).
    pub fn new(seed: u64) -> Self {
        Interleave {
            rng: rand::rngs::StdRng::seed_from_u64(seed),
            units: 0,
            keys_done: 0,
        }
    }

    /// Records one op unit that finished `keys` rows.
    pub(crate) fn unit(&mut self, keys: usize) {
        self.units += 1;
        self.keys_done += keys;
    }

    /// Whether a calibration network is due now, with `calibration_left`
    /// networks and `keys_left` op keys still to measure.
    pub(crate) fn due(&mut self, calibration_left: usize, keys_left: usize) -> bool {
        if calibration_left == 0 {
            return false;
        }
        if keys_left == 0 {
            return true;
        }
        let per_unit = (self.keys_done as f64 / self.units.max(1) as f64).max(0.5);
        let units_left = (keys_left as f64 / per_unit).ceil();
        let p = calibration_left as f64 / (calibration_left as f64 + units_left);
        self.rng.random_bool(p.clamp(0.0, 1.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calibration_times_round_trip_losslessly() {
        let times: BTreeMap<usize, f64> = [(0, 1234.5678901234), (7, 0.1 + 0.2), (39, 1e6)].into();
        let back = parse_calibration_times(&calibration_times_text(&times)).unwrap();
        assert_eq!(back, times);
        assert!(parse_calibration_times("3=1 3=2").is_err());
        assert!(parse_calibration_times("x=1").is_err());
        assert!(parse_calibration_times("1=-4").is_err());
        assert_eq!(parse_calibration_times("").unwrap(), BTreeMap::new());
    }

    #[test]
    fn calibration_networks_spread_over_the_run() {
        // 400 keys at 4 keys a unit (100 units) and 40 networks: about one
        // network every 2.5 units, none left for the end, the same order
        // for the same seed.
        let run = |seed| {
            let mut s = Interleave::new(seed);
            let (mut keys_left, mut cal_left, mut at) = (400usize, 40usize, Vec::new());
            let mut step = 0;
            while keys_left > 0 {
                s.unit(4);
                keys_left -= 4;
                step += 1;
                if s.due(cal_left, keys_left) {
                    cal_left -= 1;
                    at.push(step);
                }
            }
            (at, cal_left)
        };
        let (at, left) = run(1);
        assert_eq!(run(1).0, at, "seeded");
        assert_ne!(run(2).0, at, "another seed, another order");
        assert!(left <= 3, "{left} networks left for the end");
        // Spread: about as many in each half of the run.
        let first_half = at.iter().filter(|&&s| s <= 50).count();
        assert!((12..=28).contains(&first_half), "{at:?}");
    }
}
