//! The invariants of a space that the rest of the crate relies on, checked
//! one concern at a time, in a fixed order: the first broken invariant is
//! the error.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use super::{Choice, Decision, DecisionKind, Layer, Param, SearchSpace, limits};
use crate::error::SpaceError;

impl SearchSpace {
    /// Checks every invariant that the rest of the crate relies on.
    pub fn validate(&self) -> Result<(), SpaceError> {
        let v = Validator { space: self };
        v.check_name()?;
        v.check_input()?;
        v.check_decision_limits()?;
        v.check_fixed_limits()?;
        v.check_decisions()?;
        let used = v.check_references()?;
        v.check_post_pool_pair()?;
        v.check_stem()?;
        v.check_stages()?;
        v.check_every_decision_used(&used)?;
        v.check_parameter_budget()
    }
}

/// Checks one space; every error names it.
struct Validator<'s> {
    space: &'s SearchSpace,
}

impl Validator<'_> {
    fn invalid(&self, what: String) -> SpaceError {
        SpaceError::Invalid {
            space: self.space.name.clone(),
            what,
        }
    }

    fn check_name(&self) -> Result<(), SpaceError> {
        if self.space.name.trim().is_empty() {
            return Err(self.invalid("the space has no name".into()));
        }
        Ok(())
    }

    fn check_input(&self) -> Result<(), SpaceError> {
        let i = &self.space.input;
        if i.height == 0 || i.width == 0 || i.channels == 0 || i.classes == 0 {
            return Err(self.invalid(
                "input height, width, channels and classes must all be at least 1".into(),
            ));
        }
        for (field, value, max) in [
            ("input.height", i.height, limits::INPUT_PX),
            ("input.width", i.width, limits::INPUT_PX),
            ("input.channels", i.channels, limits::INPUT_CHANNELS),
            ("input.classes", i.classes, limits::CLASSES),
        ] {
            limits::check(field, value, max).map_err(|w| self.invalid(w))?;
        }
        Ok(())
    }

    /// The integer values of filters, expansion and kernel decisions are
    /// within [`limits`].
    fn check_decision_limits(&self) -> Result<(), SpaceError> {
        for d in &self.space.decisions {
            let max = match d.kind {
                DecisionKind::Filters => limits::WIDTH,
                DecisionKind::Expansion => limits::EXPANSION,
                DecisionKind::Kernel => limits::KERNEL,
                _ => continue,
            };
            for v in &d.values {
                if let Choice::Int(v) = v {
                    limits::check(&format!("decision '{}'", d.name), *v, max)
                        .map_err(|w| self.invalid(w))?;
                }
            }
        }
        Ok(())
    }

    /// The fixed integer fields of the skeleton are within [`limits`].
    fn check_fixed_limits(&self) -> Result<(), SpaceError> {
        for (field, param, max) in self.integer_fields() {
            if let Param::Fixed(v) = param {
                limits::check(&field, *v, max).map_err(|w| self.invalid(w))?;
            }
        }
        Ok(())
    }

    /// Every integer field of the skeleton with its limit: stem, head, then
    /// each stage's width and its layers' kernels and expansions.
    fn integer_fields(&self) -> Vec<(String, &Param<u32>, u32)> {
        let s = self.space;
        let mut fields: Vec<(String, &Param<u32>, u32)> = vec![
            ("stem.kernel".into(), &s.stem.kernel, limits::KERNEL),
            ("stem.filters".into(), &s.stem.filters, limits::WIDTH),
            ("head.filters".into(), &s.head.filters, limits::WIDTH),
        ];
        if let Some(p) = &s.head.post_pool_filters {
            fields.push(("head.post_pool_filters".into(), p, limits::WIDTH));
        }
        for (si, stage) in s.stages.iter().enumerate() {
            fields.push((
                format!("stages[{si}].filters"),
                &stage.filters,
                limits::WIDTH,
            ));
            for (l, layer) in stage.layers.iter().enumerate() {
                let at = format!("stages[{si}].layers[{l}]");
                fields.push((format!("{at}.kernel"), &layer.kernel, limits::KERNEL));
                fields.push((
                    format!("{at}.expansion"),
                    &layer.expansion,
                    limits::EXPANSION,
                ));
            }
        }
        fields
    }

    /// Each decision in turn: its name is new, then its values fit.
    fn check_decisions(&self) -> Result<(), SpaceError> {
        let mut names = BTreeSet::new();
        for d in &self.space.decisions {
            if !names.insert(d.name.as_str()) {
                return Err(self.invalid(format!("decision '{}' is defined twice", d.name)));
            }
            self.check_decision_values(d)?;
        }
        Ok(())
    }

    /// A decision has between 1 and 36 distinct values, each of its kind.
    fn check_decision_values(&self, d: &Decision) -> Result<(), SpaceError> {
        if d.values.is_empty() {
            return Err(self.invalid(format!("decision '{}' has no values", d.name)));
        }
        if d.values.len() > 36 {
            return Err(self.invalid(format!(
                "decision '{}' has {} values; at most 36 are supported",
                d.name,
                d.values.len()
            )));
        }
        let distinct: BTreeSet<_> = d.values.iter().collect();
        if distinct.len() != d.values.len() {
            return Err(self.invalid(format!(
                "decision '{}' lists a value twice: [{}]",
                d.name,
                d.values_text()
            )));
        }
        for v in &d.values {
            let ok = match (d.kind, v) {
                (DecisionKind::Kernel, Choice::Int(k)) => k % 2 == 1,
                (DecisionKind::Expansion | DecisionKind::Filters, Choice::Int(v)) => *v >= 1,
                (DecisionKind::SqueezeExcite | DecisionKind::Skip, Choice::Flag(_)) => true,
                (DecisionKind::Op, Choice::Op(_)) => true,
                _ => false,
            };
            if !ok {
                return Err(self.invalid(format!(
                    "decision '{}' of kind {} cannot take the value {v} (kernels are odd integers, expansions and filters positive integers, squeeze-excite and skip true/false, op 'separable', 'bottleneck' or 'fused')",
                    d.name,
                    d.kind.name()
                )));
            }
        }
        Ok(())
    }

    /// Every decision reference of the skeleton, in order: the field, the
    /// decision it names (if it is one) and the kind it needs.
    fn references(&self) -> Vec<(String, Option<&str>, DecisionKind)> {
        let s = self.space;
        let mut refs = vec![
            (
                "stem.kernel".to_string(),
                s.stem.kernel.decision(),
                DecisionKind::Kernel,
            ),
            (
                "stem.filters".to_string(),
                s.stem.filters.decision(),
                DecisionKind::Filters,
            ),
        ];
        for (si, stage) in s.stages.iter().enumerate() {
            refs.push((
                format!("stages[{si}].filters"),
                stage.filters.decision(),
                DecisionKind::Filters,
            ));
            for (l, layer) in stage.layers.iter().enumerate() {
                let at = format!("stages[{si}].layers[{l}]");
                refs.extend([
                    (format!("{at}.op"), layer.op.decision(), DecisionKind::Op),
                    (
                        format!("{at}.kernel"),
                        layer.kernel.decision(),
                        DecisionKind::Kernel,
                    ),
                    (
                        format!("{at}.expansion"),
                        layer.expansion.decision(),
                        DecisionKind::Expansion,
                    ),
                    (
                        format!("{at}.squeeze_excite"),
                        layer.squeeze_excite.decision(),
                        DecisionKind::SqueezeExcite,
                    ),
                    (
                        format!("{at}.skip"),
                        layer.skip.decision(),
                        DecisionKind::Skip,
                    ),
                ]);
            }
        }
        refs.push((
            "head.filters".to_string(),
            s.head.filters.decision(),
            DecisionKind::Filters,
        ));
        if let Some(p) = &s.head.post_pool_filters {
            refs.push((
                "head.post_pool_filters".to_string(),
                p.decision(),
                DecisionKind::Filters,
            ));
        }
        refs
    }

    /// Every reference names a defined decision of the field's kind; returns
    /// how often each decision is referenced.
    fn check_references(&self) -> Result<BTreeMap<&str, usize>, SpaceError> {
        let mut used = BTreeMap::<&str, usize>::new();
        for (field, name, kind) in self.references() {
            let Some(name) = name else { continue };
            let Some(d) = self.space.decisions.iter().find(|d| d.name == name) else {
                return Err(self.invalid(format!(
                    "{field} refers to decision '@{name}', which is not defined"
                )));
            };
            if d.kind != kind {
                return Err(self.invalid(format!(
                    "{field} refers to decision '{name}' of kind {}, but needs kind {}",
                    d.kind.name(),
                    kind.name()
                )));
            }
            *used.entry(d.name.as_str()).or_default() += 1;
        }
        Ok(used)
    }

    fn check_post_pool_pair(&self) -> Result<(), SpaceError> {
        let head = &self.space.head;
        if head.post_pool_filters.is_some() != head.post_pool_activation.is_some() {
            return Err(self.invalid(
                "head.post_pool_filters and head.post_pool_activation go together".into(),
            ));
        }
        Ok(())
    }

    /// Fixed values must be sensible too.
    fn check_stem(&self) -> Result<(), SpaceError> {
        let stem = &self.space.stem;
        if let Param::Fixed(k) = stem.kernel
            && k % 2 == 0
        {
            return Err(self.invalid(format!("stem.kernel = {k}: kernels must be odd")));
        }
        if stem.stride == 0 {
            return Err(self.invalid("stem.stride must be at least 1".into()));
        }
        Ok(())
    }

    fn check_stages(&self) -> Result<(), SpaceError> {
        if self.space.stages.is_empty() {
            return Err(self.invalid("a space needs at least one stage".into()));
        }
        for (s, stage) in self.space.stages.iter().enumerate() {
            if stage.layers.is_empty() {
                return Err(self.invalid(format!("stages[{s}] has no layers")));
            }
            for (l, layer) in stage.layers.iter().enumerate() {
                self.check_layer(s, l, layer)?;
            }
        }
        Ok(())
    }

    /// Layer `l` of stage `s`: a stride, an odd kernel, an expansion, and
    /// an identity that fits when the layer is residual or skippable.
    fn check_layer(&self, s: usize, l: usize, layer: &Layer) -> Result<(), SpaceError> {
        let stage = &self.space.stages[s];
        let at = format!("stages[{s}].layers[{l}]");
        if layer.stride == 0 {
            return Err(self.invalid(format!("{at}.stride must be at least 1")));
        }
        if let Param::Fixed(k) = layer.kernel
            && k % 2 == 0
        {
            return Err(self.invalid(format!("{at}.kernel = {k}: kernels must be odd")));
        }
        if let Param::Fixed(0) = layer.expansion {
            return Err(self.invalid(format!("{at}.expansion must be at least 1")));
        }
        // The input of a residual or skippable layer must have the
        // output's width and size, whatever the architecture.
        let input_width = if l == 0 {
            self.space.stage_input_filters(s)
        } else {
            &stage.filters
        };
        let same_width = *input_width == stage.filters;
        let skippable = layer.skip != Param::Fixed(false);
        if layer.is_residual(l) || skippable {
            let why = if skippable { "skippable" } else { "residual" };
            if layer.stride != 1 {
                return Err(self.invalid(format!(
                    "{at} is {why} but has stride {}: the identity needs stride 1",
                    layer.stride
                )));
            }
            if !same_width {
                return Err(self.invalid(format!(
                    "{at} is {why} but its input width ({}) is not tied to its output width ({}); use the same decision or value",
                    param_text(input_width),
                    param_text(&stage.filters)
                )));
            }
        }
        Ok(())
    }

    fn check_every_decision_used(&self, used: &BTreeMap<&str, usize>) -> Result<(), SpaceError> {
        if let Some(d) = self
            .space
            .decisions
            .iter()
            .find(|d| !used.contains_key(d.name.as_str()))
        {
            return Err(self.invalid(format!(
                "decision '{}' is not referenced by any field",
                d.name
            )));
        }
        Ok(())
    }

    /// Each field within its limit can still add up to more weights than
    /// a device holds: the widest network is the measure.
    fn check_parameter_budget(&self) -> Result<(), SpaceError> {
        let space = self.space;
        let params =
            crate::opkey::architecture_params(space, &crate::arch::Architecture::largest(space));
        if params > limits::PARAMS {
            return Err(self.invalid(format!(
                "its largest network has {params} parameters; at most {} are supported (narrow the widest filters or expansions)",
                limits::PARAMS
            )));
        }
        Ok(())
    }
}

fn param_text<T: fmt::Display>(p: &Param<T>) -> String {
    match p {
        Param::Fixed(v) => v.to_string(),
        Param::Decision(name) => format!("@{name}"),
    }
}
