//! `tunas-profiler export`: our tables in the formats the PyTorch searchers
//! people already use read (docs/design.md, "Refresh, validate, compare,
//! export"): ProxylessNAS and Once-for-All latency look-up tables (YAML
//! keyed by op, `count` / `mean` / `var` in ms), or JSON.

use serde::Serialize;
use tunas_shared::{LatencyTable, OpKey, OpKind};

/// Output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExportFormat {
    /// ProxylessNAS LUT keys (`expanded_conv-input:HxWxC-output:...`).
    ProxylessnasYaml,
    /// Once-for-All MobileNetV3 LUT keys (adds `-se:` and `-hs:`, mid in `expand`).
    OfaYaml,
    /// JSON: provenance and one object per op key.
    Json,
}

fn shape(h: u32, w: u32, c: u32) -> String {
    format!("{h}x{w}x{c}")
}

/// The LUT key of an op in ProxylessNAS (`ofa = false`) or OFA style.
pub(crate) fn lut_key(key: &OpKey, ofa: bool) -> String {
    let (oh, ow) = key.out_hw();
    let input = shape(key.in_h, key.in_w, key.cin);
    let output = shape(oh, ow, key.cout);
    match key.op {
        OpKind::Stem => format!("Conv-input:{input}-output:{output}"),
        OpKind::HeadConv => format!(
            "Conv_1-input:{input}-output:{}",
            shape(key.in_h, key.in_w, key.cout)
        ),
        OpKind::HeadFc => format!("Conv_2-input:{input}-output:{}", shape(1, 1, key.cout)),
        OpKind::Classifier => format!("Logits-input:{input}-output:{}", key.cout),
        OpKind::Separable | OpKind::Bottleneck | OpKind::Fused => {
            // Neither LUT format knows a fused bottleneck: it gets its own
            // prefix, so it never collides with an expanded conv's key.
            let prefix = if key.op == OpKind::Fused {
                "fused_conv"
            } else {
                "expanded_conv"
            };
            let expand = if ofa {
                key.mid.to_string()
            } else if key.op == OpKind::Separable {
                "1".into()
            } else {
                let ratio = key.mid as f64 / key.cin as f64;
                if ratio.fract() == 0.0 {
                    format!("{ratio}")
                } else {
                    format!("{ratio:.3}")
                }
            };
            let mut k = format!(
                "{prefix}-input:{input}-output:{output}-expand:{expand}-kernel:{}-stride:{}-idskip:{}",
                key.kernel,
                key.stride,
                u8::from(key.residual)
            );
            if ofa {
                let hs = u8::from(key.act == tunas_shared::Activation::Swish6);
                k.push_str(&format!("-se:{}-hs:{hs}", u8::from(key.se)));
            }
            k
        }
    }
}

#[derive(Serialize)]
struct JsonRow {
    key: String,
    lut_key: String,
    median_ms: f64,
    p10_ms: f64,
    p90_ms: f64,
    mean_ms: f64,
    std_ms: f64,
    runs: u64,
    measured_at: String,
}

/// The table in the chosen format. YAML LUTs keep one entry per LUT key; if
/// two of our keys map to one LUT key (the LUT formats know no activation or
/// batch), the slower is kept, and a comment says so.
pub fn export(table: &LatencyTable, format: ExportFormat) -> String {
    let p = &table.provenance;
    match format {
        ExportFormat::Json => {
            let rows: Vec<JsonRow> = table
                .rows
                .iter()
                .map(|(k, s)| JsonRow {
                    key: k.to_string(),
                    lut_key: lut_key(k, true),
                    median_ms: s.median_us / 1000.0,
                    p10_ms: s.p10_us / 1000.0,
                    p90_ms: s.p90_us / 1000.0,
                    mean_ms: s.mean_us / 1000.0,
                    std_ms: s.std_us / 1000.0,
                    runs: s.runs,
                    measured_at: s.measured_at.clone(),
                })
                .collect();
            let doc = serde_json::json!({
                "provenance": {
                    "device": p.device, "cpu": p.cpu, "os": p.os, "runtime": p.runtime,
                    "runtime_version": p.runtime_version, "execution_provider": p.execution_provider,
                    "threads": p.threads, "pinning": p.pinning, "batch": p.batch, "date": p.date,
                    "profiler_version": p.profiler_version, "space": p.space, "space_hash": p.space_hash,
                    "method": p.method, "overhead_ms": p.overhead_us / 1000.0, "extra": p.extra,
                },
                "ops": rows,
            });
            serde_json::to_string_pretty(&doc).expect("JSON values serialise")
        }
        ExportFormat::ProxylessnasYaml | ExportFormat::OfaYaml => {
            let ofa = format == ExportFormat::OfaYaml;
            let mut entries: std::collections::BTreeMap<String, (f64, f64, u64)> =
                Default::default();
            let mut merged = 0;
            for (k, s) in &table.rows {
                let mean = s.median_us / 1000.0;
                let var = (s.std_us / 1000.0).powi(2);
                let lk = lut_key(k, ofa);
                match entries.get(&lk) {
                    Some(&(m, _, _)) if m >= mean => merged += 1,
                    Some(_) => {
                        merged += 1;
                        entries.insert(lk, (mean, var, s.runs));
                    }
                    None => {
                        entries.insert(lk, (mean, var, s.runs));
                    }
                }
            }
            let mut out = format!(
                "# latency look-up table exported by tunas-profiler {}\n# device: {} | cpu: {} | {} {} ({}) | threads: {} | batch: {} | date: {}\n# space: {} ({}); values in ms; 'mean' is the median of the timed runs\n# per-inference constant to add once per network: {:.4} ms\n",
                p.profiler_version,
                p.device,
                p.cpu,
                p.runtime,
                p.runtime_version,
                p.execution_provider,
                p.threads,
                p.batch,
                p.date,
                p.space,
                p.space_hash,
                p.overhead_us / 1000.0
            );
            if merged > 0 {
                out.push_str(&format!(
                    "# {merged} op keys share a LUT key with another (the format has no activation/batch field); the slower is kept\n"
                ));
            }
            for (k, (mean, var, count)) in entries {
                out.push_str(&format!(
                    "{k}:\n  count: {count}\n  mean: {mean:.6}\n  var: {var:.9}\n"
                ));
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tunas_shared::{Architecture, architecture_ops, builtin_space};

    #[test]
    fn lut_keys_follow_the_published_formats() {
        let space = builtin_space("proxylessnas").unwrap();
        let ops = architecture_ops(&space, &Architecture::largest(&space), 1);
        let b = ops
            .iter()
            .find(|k| k.op == OpKind::Bottleneck && k.residual)
            .unwrap();
        assert_eq!(
            lut_key(b, false),
            "expanded_conv-input:56x56x32-output:56x56x32-expand:6-kernel:7-stride:1-idskip:1"
        );
        assert_eq!(
            lut_key(b, true),
            "expanded_conv-input:56x56x32-output:56x56x32-expand:192-kernel:7-stride:1-idskip:1-se:0-hs:0"
        );
        assert_eq!(
            lut_key(&ops[0], false),
            "Conv-input:224x224x3-output:112x112x32"
        );
    }
}
