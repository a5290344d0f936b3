//! Per-node profiles: ONNX Runtime's profile JSON (a Chrome trace) parsed
//! into node times per run, and split among op scopes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::error::RuntimeError;

/// Mean execution time of one node over the profiled runs.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeTiming {
    /// Node name as ONNX Runtime reports it: after its fusions and layout
    /// changes a node may carry a suffix (`stem/act_nchwc`) or the name of
    /// another node it absorbed, but it keeps the op's scope prefix.
    pub name: String,
    /// Operator as executed, e.g. `FusedConv`.
    pub op_type: String,
    /// Execution provider that ran it.
    pub provider: String,
    /// Mean kernel time per run, µs.
    pub mean_us: f64,
    /// Runs in which the node was seen.
    pub runs: usize,
}

/// Per-node timings of a profiled session.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeProfile {
    /// Runs used (after skipping warm-up).
    pub runs: usize,
    /// Mean `model_run` time, µs: the whole inference as ONNX Runtime sees it.
    pub mean_run_us: f64,
    /// Nodes in execution order of their first appearance.
    pub nodes: Vec<NodeTiming>,
    /// Per node (same order as `nodes`), its time in each kept run, µs
    /// (0 where the node did not run).
    pub node_runs: Vec<Vec<f64>>,
}

impl NodeProfile {
    /// Sum of the mean node times whose name starts with `prefix` (e.g. an
    /// op scope such as `stage1/layer2/`).
    #[cfg(test)]
    pub(crate) fn scope_us(&self, prefix: &str) -> f64 {
        self.nodes
            .iter()
            .filter(|n| n.name.starts_with(prefix))
            .map(|n| n.mean_us)
            .sum()
    }

    /// Per run, the summed time of the nodes each scope claims: `result[i][r]`
    /// is scope `i` in run `r` (see [`NodeProfile::attribute`] for the rule).
    pub(crate) fn attribute_per_run(&self, scopes: &[&str]) -> Vec<Vec<f64>> {
        let mut out = vec![vec![0.0; self.runs]; scopes.len()];
        for (node, runs) in self.nodes.iter().zip(&self.node_runs) {
            let owner = scopes.iter().position(|s| {
                node.name
                    .strip_prefix(s)
                    .is_some_and(|rest| rest.starts_with('/'))
            });
            if let Some(i) = owner {
                for (acc, d) in out[i].iter_mut().zip(runs) {
                    *acc += d;
                }
            }
        }
        out
    }

    /// Splits the node times among op scopes (node names are
    /// `{scope}/{part}`, possibly with a suffix ONNX Runtime adds such as
    /// `_nchwc`). Returns the time per scope, in the order given, and the
    /// time of nodes no scope claims: layout reorders (`ReorderInput`,
    /// `ReorderOutput`) and other nodes the runtime inserts.
    pub(crate) fn attribute(&self, scopes: &[&str]) -> (Vec<f64>, f64) {
        let mut per_scope = vec![0.0; scopes.len()];
        let mut unattributed = 0.0;
        for node in &self.nodes {
            let owner = scopes.iter().position(|s| {
                node.name
                    .strip_prefix(s)
                    .is_some_and(|rest| rest.starts_with('/'))
            });
            match owner {
                Some(i) => per_scope[i] += node.mean_us,
                None => unattributed += node.mean_us,
            }
        }
        (per_scope, unattributed)
    }
}

/// Parses an ONNX Runtime profile (Chrome trace JSON). Runs are delimited by
/// the `model_run` session events; the first `skip_runs` runs (warm-up) are
/// ignored. Node times are the `<node>_kernel_time` events' `dur` (µs).
pub fn parse_profile(json: &str, skip_runs: usize) -> Result<NodeProfile, String> {
    let events: Vec<serde_json::Value> =
        serde_json::from_str(json).map_err(|e| format!("not a JSON event list: {e}"))?;
    let mut runs = model_runs(&events);
    if runs.len() <= skip_runs {
        return Err(format!(
            "{} runs recorded, but {skip_runs} are to be skipped as warm-up",
            runs.len()
        ));
    }
    let kept = runs.split_off(skip_runs);
    let mut nodes = NodeTimes::new(&kept);
    for e in &events {
        nodes.add(e);
    }
    Ok(nodes.finish())
}

/// A number field of an event.
fn num(e: &serde_json::Value, f: &str) -> Option<f64> {
    e.get(f).and_then(|v| v.as_f64())
}

/// A text field of an event (empty when missing).
fn text(e: &serde_json::Value, f: &str) -> String {
    e.get(f)
        .and_then(|v| v.as_str())
        .unwrap_or_default()
        .to_string()
}

/// `(start, duration)` of every `model_run` session event, in time order.
fn model_runs(events: &[serde_json::Value]) -> Vec<(f64, f64)> {
    let mut runs: Vec<(f64, f64)> = events
        .iter()
        .filter(|e| text(e, "cat") == "Session" && text(e, "name") == "model_run")
        .filter_map(|e| Some((num(e, "ts")?, num(e, "dur")?)))
        .collect();
    runs.sort_by(|a, b| a.0.total_cmp(&b.0));
    runs
}

/// What is known of one node so far.
struct NodeTotals {
    op_type: String,
    provider: String,
    /// Kernel time summed over the kept runs, µs.
    total_us: f64,
    /// The kept runs it was seen in.
    seen: BTreeSet<usize>,
    /// Its time in each kept run, µs.
    per_run: Vec<f64>,
}

/// Kernel times of the nodes over the kept runs, nodes in order of first
/// appearance.
struct NodeTimes<'a> {
    /// The kept runs, `(start, duration)`.
    runs: &'a [(f64, f64)],
    /// Position of each node in `nodes`.
    index: BTreeMap<String, usize>,
    nodes: Vec<(String, NodeTotals)>,
}

impl<'a> NodeTimes<'a> {
    fn new(runs: &'a [(f64, f64)]) -> Self {
        NodeTimes {
            runs,
            index: BTreeMap::new(),
            nodes: Vec::new(),
        }
    }

    /// The kept run that event time `ts` falls in.
    fn run_of(&self, ts: f64) -> Option<usize> {
        self.runs
            .iter()
            .position(|&(start, dur)| ts >= start && ts <= start + dur)
    }

    /// Counts event `e` if it is a node's kernel time within a kept run.
    fn add(&mut self, e: &serde_json::Value) {
        if text(e, "cat") != "Node" {
            return;
        }
        let name = text(e, "name");
        let Some(node) = name.strip_suffix("_kernel_time") else {
            return;
        };
        let (Some(ts), Some(dur)) = (num(e, "ts"), num(e, "dur")) else {
            return;
        };
        let Some(run) = self.run_of(ts) else {
            return;
        };
        let i = match self.index.get(node) {
            Some(&i) => i,
            None => {
                let args = e.get("args");
                let arg = |f: &str| {
                    args.and_then(|a| a.get(f))
                        .and_then(|v| v.as_str())
                        .unwrap_or_default()
                        .to_string()
                };
                let totals = NodeTotals {
                    op_type: arg("op_name"),
                    provider: arg("provider"),
                    total_us: 0.0,
                    seen: BTreeSet::new(),
                    per_run: vec![0.0; self.runs.len()],
                };
                self.index.insert(node.to_string(), self.nodes.len());
                self.nodes.push((node.to_string(), totals));
                self.nodes.len() - 1
            }
        };
        let totals = &mut self.nodes[i].1;
        totals.total_us += dur;
        totals.seen.insert(run);
        totals.per_run[run] += dur;
    }

    /// Mean times per run.
    fn finish(self) -> NodeProfile {
        let n = self.runs.len() as f64;
        let mut nodes = Vec::with_capacity(self.nodes.len());
        let mut node_runs = Vec::with_capacity(self.nodes.len());
        for (name, totals) in self.nodes {
            nodes.push(NodeTiming {
                name,
                op_type: totals.op_type,
                provider: totals.provider,
                mean_us: totals.total_us / n,
                runs: totals.seen.len(),
            });
            node_runs.push(totals.per_run);
        }
        NodeProfile {
            runs: self.runs.len(),
            mean_run_us: self.runs.iter().map(|r| r.1).sum::<f64>() / n,
            nodes,
            node_runs,
        }
    }
}

/// Reads and parses a profile file (see [`parse_profile`]).
pub fn read_profile(path: &Path, skip_runs: usize) -> Result<NodeProfile, RuntimeError> {
    let profile_error = |message: String| RuntimeError::Profile {
        path: path.display().to_string(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| profile_error(e.to_string()))?;
    parse_profile(&text, skip_runs).map_err(profile_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROFILE: &str = r#"[
{"cat":"Session","pid":1,"tid":1,"dur":500,"ts":10,"ph":"X","name":"session_initialization","args":{}},
{"cat":"Node","pid":1,"tid":1,"dur":90,"ts":1001,"ph":"X","name":"op/conv_kernel_time","args":{"op_name":"FusedConv","provider":"CPUExecutionProvider"}},
{"cat":"Session","pid":1,"tid":1,"dur":100,"ts":1000,"ph":"X","name":"model_run","args":{}},
{"cat":"Node","pid":1,"tid":1,"dur":0,"ts":2000,"ph":"X","name":"op/conv_fence_before","args":{"op_name":"FusedConv"}},
{"cat":"Node","pid":1,"tid":1,"dur":10,"ts":2001,"ph":"X","name":"op/conv_kernel_time","args":{"op_name":"FusedConv","provider":"CPUExecutionProvider"}},
{"cat":"Node","pid":1,"tid":1,"dur":4,"ts":2012,"ph":"X","name":"op/pool_kernel_time","args":{"op_name":"GlobalAveragePool","provider":"CPUExecutionProvider"}},
{"cat":"Session","pid":1,"tid":1,"dur":20,"ts":2000,"ph":"X","name":"model_run","args":{}},
{"cat":"Node","pid":1,"tid":1,"dur":12,"ts":3001,"ph":"X","name":"op/conv_kernel_time","args":{"op_name":"FusedConv","provider":"CPUExecutionProvider"}},
{"cat":"Node","pid":1,"tid":1,"dur":6,"ts":3013,"ph":"X","name":"op/pool_kernel_time","args":{"op_name":"GlobalAveragePool","provider":"CPUExecutionProvider"}},
{"cat":"Session","pid":1,"tid":1,"dur":22,"ts":3000,"ph":"X","name":"model_run","args":{}}
]"#;

    #[test]
    fn profiles_skip_warm_up_runs_and_average_nodes() {
        let p = parse_profile(PROFILE, 1).unwrap();
        assert_eq!(p.runs, 2);
        assert_eq!(p.mean_run_us, 21.0);
        assert_eq!(p.nodes.len(), 2);
        assert_eq!(p.nodes[0].name, "op/conv");
        assert_eq!(p.nodes[0].op_type, "FusedConv");
        assert_eq!(p.nodes[0].mean_us, 11.0);
        assert_eq!(p.nodes[1].mean_us, 5.0);
        assert_eq!(p.scope_us("op/"), 16.0);
        assert_eq!(p.attribute(&["op"]), (vec![16.0], 0.0));
        assert_eq!(p.attribute(&["o", "x"]), (vec![0.0, 0.0], 16.0));
        let all = parse_profile(PROFILE, 0).unwrap();
        assert_eq!(all.nodes[0].mean_us, (90.0 + 10.0 + 12.0) / 3.0);
        assert!(parse_profile(PROFILE, 3).is_err());
        assert!(parse_profile("{", 0).is_err());
    }
}
