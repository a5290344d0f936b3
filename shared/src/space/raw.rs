//! Decision values and params as TOML gives them: scalars are read as
//! [`RawScalar`] first, so that an error can name the field and say what
//! it needs instead of serde's "data did not match any variant of untagged
//! enum".

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{Choice, Decision, DecisionKind, LayerOp, Param};

/// A scalar as TOML gives it, before it is known to fit its field: the
/// error can then name the field and say what it needs instead of serde's
/// "data did not match any variant of untagged enum".
#[doc(hidden)]
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum RawScalar {
    /// An integer.
    Int(i64),
    /// A number with a fraction (or an integer too large for `i64`).
    Float(f64),
    /// `true` or `false`.
    Flag(bool),
    /// A string.
    Text(String),
}

impl fmt::Display for RawScalar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RawScalar::Int(v) => write!(f, "{v}"),
            RawScalar::Float(v) => write!(f, "{v}"),
            RawScalar::Flag(v) => write!(f, "{v}"),
            RawScalar::Text(v) => write!(f, "\"{v}\""),
        }
    }
}

impl<'de> Deserialize<'de> for RawScalar {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = RawScalar;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number, true/false or a string")
            }
            fn visit_i64<E>(self, v: i64) -> Result<RawScalar, E> {
                Ok(RawScalar::Int(v))
            }
            fn visit_u64<E>(self, v: u64) -> Result<RawScalar, E> {
                Ok(i64::try_from(v).map_or(RawScalar::Float(v as f64), RawScalar::Int))
            }
            fn visit_f64<E>(self, v: f64) -> Result<RawScalar, E> {
                Ok(RawScalar::Float(v))
            }
            fn visit_bool<E>(self, v: bool) -> Result<RawScalar, E> {
                Ok(RawScalar::Flag(v))
            }
            fn visit_str<E>(self, v: &str) -> Result<RawScalar, E> {
                Ok(RawScalar::Text(v.to_string()))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// A value a space field can hold, read from a [`RawScalar`].
pub(crate) trait ParamValue: Sized {
    /// What the field needs, for error messages.
    const EXPECTED: &'static str;
    /// The value, if `raw` is one.
    #[doc(hidden)]
    fn from_raw(raw: &RawScalar) -> Option<Self>;
}

impl ParamValue for u32 {
    const EXPECTED: &'static str = "a positive integer";
    fn from_raw(raw: &RawScalar) -> Option<Self> {
        match raw {
            RawScalar::Int(v) => u32::try_from(*v).ok(),
            _ => None,
        }
    }
}

impl ParamValue for bool {
    const EXPECTED: &'static str = "true or false";
    fn from_raw(raw: &RawScalar) -> Option<Self> {
        match raw {
            RawScalar::Flag(v) => Some(*v),
            _ => None,
        }
    }
}

impl ParamValue for LayerOp {
    const EXPECTED: &'static str = "an op name ('separable', 'bottleneck' or 'fused')";
    fn from_raw(raw: &RawScalar) -> Option<Self> {
        match raw {
            RawScalar::Text(t) if t == "separable" => Some(LayerOp::Separable),
            RawScalar::Text(t) if t == "bottleneck" => Some(LayerOp::Bottleneck),
            RawScalar::Text(t) if t == "fused" => Some(LayerOp::Fused),
            _ => None,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDecision {
    name: String,
    kind: DecisionKind,
    values: Vec<RawScalar>,
}

impl TryFrom<RawDecision> for Decision {
    type Error = String;

    fn try_from(raw: RawDecision) -> Result<Self, String> {
        let values = raw
            .values
            .iter()
            .map(|v| {
                let choice = match raw.kind {
                    DecisionKind::Kernel | DecisionKind::Expansion | DecisionKind::Filters => {
                        u32::from_raw(v).filter(|n| *n > 0).map(Choice::Int)
                    }
                    DecisionKind::SqueezeExcite | DecisionKind::Skip => {
                        bool::from_raw(v).map(Choice::Flag)
                    }
                    DecisionKind::Op => LayerOp::from_raw(v).map(Choice::Op),
                };
                choice.ok_or_else(|| {
                    let expected = match raw.kind {
                        DecisionKind::SqueezeExcite | DecisionKind::Skip => bool::EXPECTED,
                        DecisionKind::Op => LayerOp::EXPECTED,
                        _ => u32::EXPECTED,
                    };
                    format!(
                        "decision '{}' (kind {}): the value {v} must be {expected}",
                        raw.name,
                        raw.kind.name()
                    )
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Decision {
            name: raw.name,
            kind: raw.kind,
            values,
        })
    }
}

#[derive(Serialize)]
#[serde(untagged)]
enum RawParam<T> {
    Fixed(T),
    Reference(String),
}

impl<T: Serialize + Clone> Serialize for Param<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Param::Fixed(v) => RawParam::Fixed(v.clone()).serialize(serializer),
            Param::Decision(name) => {
                RawParam::<T>::Reference(format!("@{name}")).serialize(serializer)
            }
        }
    }
}

impl<'de, T: ParamValue> Deserialize<'de> for Param<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = RawScalar::deserialize(deserializer)?;
        if let RawScalar::Text(s) = &raw
            && let Some(name) = s.strip_prefix('@')
            && !name.is_empty()
        {
            return Ok(Param::Decision(name.to_string()));
        }
        T::from_raw(&raw).map(Param::Fixed).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "expected {} or a decision reference like \"@stage1/filters\", found {raw}",
                T::EXPECTED
            ))
        })
    }
}
