//! A small graph builder over the [`proto`](super::proto) messages: inputs,
//! outputs, float initializers and the handful of operators the op emitters
//! use, each with its attributes spelled out once.
//!
//! Value names are chosen by the caller and must be unique in the graph; a
//! node is named after the value it produces, so runtime profiles (which
//! report node names) read as `stage1/layer2/expand`.

use prost::Message;

use super::proto::{
    AttributeProto, AttributeType, DataType, Dimension, GraphProto, ModelProto, NodeProto,
    OperatorSetIdProto, TensorProto, TensorShapeProto, TensorTypeProto, TypeProto, ValueInfoProto,
};
use super::{IR_VERSION, OPSET_VERSION};

/// An integer attribute.
pub(crate) fn attr_int(name: &str, value: i64) -> AttributeProto {
    AttributeProto {
        name: name.to_string(),
        r#type: AttributeType::Int as i32,
        i: Some(value),
        ..Default::default()
    }
}

/// An integer-list attribute.
pub(crate) fn attr_ints(name: &str, values: &[i64]) -> AttributeProto {
    AttributeProto {
        name: name.to_string(),
        r#type: AttributeType::Ints as i32,
        ints: values.to_vec(),
        ..Default::default()
    }
}

/// A float attribute.
pub(crate) fn attr_float(name: &str, value: f32) -> AttributeProto {
    AttributeProto {
        name: name.to_string(),
        r#type: AttributeType::Float as i32,
        f: Some(value),
        ..Default::default()
    }
}

/// One axis of a declared graph input or output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Dim {
    /// A fixed size.
    Fixed(i64),
    /// A symbolic size (`dim_param`), chosen by whoever runs the model, for
    /// example the batch axis `batch`.
    Named(String),
}

impl Dim {
    fn proto(&self) -> Dimension {
        match self {
            Dim::Fixed(d) => Dimension {
                dim_value: Some(*d),
                ..Default::default()
            },
            Dim::Named(name) => Dimension {
                dim_param: Some(name.clone()),
                ..Default::default()
            },
        }
    }
}

/// A float32 tensor type with a fixed shape.
pub(crate) fn float_tensor_type(dims: &[i64]) -> TypeProto {
    let dims: Vec<Dim> = dims.iter().map(|&d| Dim::Fixed(d)).collect();
    float_tensor_type_dims(&dims)
}

/// A float32 tensor type whose axes may be symbolic.
pub(crate) fn float_tensor_type_dims(dims: &[Dim]) -> TypeProto {
    TypeProto {
        tensor_type: Some(TensorTypeProto {
            elem_type: DataType::Float as i32,
            shape: Some(TensorShapeProto {
                dim: dims.iter().map(Dim::proto).collect(),
            }),
        }),
        ..Default::default()
    }
}

/// Geometry of a 2-D convolution with "same" padding (odd kernel).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ConvParams {
    /// Square kernel size (odd).
    pub(crate) kernel: u32,
    /// Stride in both directions.
    pub(crate) stride: u32,
    /// Groups: 1 for a full conv, the channel count for a depthwise one.
    pub(crate) group: u32,
}

impl ConvParams {
    /// Symmetric padding that gives `ceil(n / stride)` outputs.
    pub(crate) fn pad(&self) -> u32 {
        (self.kernel - 1) / 2
    }
}

/// Builds one [`GraphProto`].
#[derive(Clone, Debug, Default)]
pub struct GraphBuilder {
    graph: GraphProto,
}

impl GraphBuilder {
    /// An empty graph called `name`.
    pub fn new(name: &str) -> Self {
        GraphBuilder {
            graph: GraphProto {
                name: name.to_string(),
                ..Default::default()
            },
        }
    }

    /// Declares a float32 graph input; returns its name.
    pub fn input(&mut self, name: &str, dims: &[i64]) -> String {
        self.input_type(name, float_tensor_type(dims))
    }

    /// Declares a float32 graph input whose axes may be symbolic; returns
    /// its name.
    pub(crate) fn input_dims(&mut self, name: &str, dims: &[Dim]) -> String {
        self.input_type(name, float_tensor_type_dims(dims))
    }

    fn input_type(&mut self, name: &str, ty: TypeProto) -> String {
        self.graph.input.push(ValueInfoProto {
            name: name.to_string(),
            r#type: Some(ty),
            ..Default::default()
        });
        name.to_string()
    }

    /// Declares the value `name` as a float32 graph output of shape `dims`.
    pub(crate) fn output(&mut self, name: &str, dims: &[i64]) {
        self.output_type(name, float_tensor_type(dims));
    }

    /// Declares the value `name` as a float32 graph output whose axes may be
    /// symbolic.
    pub(crate) fn output_dims(&mut self, name: &str, dims: &[Dim]) {
        self.output_type(name, float_tensor_type_dims(dims));
    }

    fn output_type(&mut self, name: &str, ty: TypeProto) {
        self.graph.output.push(ValueInfoProto {
            name: name.to_string(),
            r#type: Some(ty),
            ..Default::default()
        });
    }

    /// Adds a float32 initializer stored as raw little-endian bytes; returns
    /// its name. Panics when `data` does not hold `product(dims)` values (the
    /// callers check weight sources before getting here).
    pub(crate) fn initializer(&mut self, name: &str, dims: &[i64], data: &[f32]) -> String {
        let expected: i64 = dims.iter().product();
        assert_eq!(
            data.len() as i64,
            expected,
            "initializer '{name}' of shape {dims:?} needs {expected} values, got {}",
            data.len()
        );
        let mut raw = Vec::with_capacity(data.len() * 4);
        for v in data {
            raw.extend_from_slice(&v.to_le_bytes());
        }
        self.graph.initializer.push(TensorProto {
            dims: dims.to_vec(),
            data_type: DataType::Float as i32,
            name: name.to_string(),
            raw_data: raw,
            ..Default::default()
        });
        name.to_string()
    }

    /// Adds a node of the default domain producing the single value
    /// `output`; the node takes the same name. Returns `output`.
    pub(crate) fn node(
        &mut self,
        op_type: &str,
        inputs: &[&str],
        output: &str,
        attributes: Vec<AttributeProto>,
    ) -> String {
        self.graph.node.push(NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![output.to_string()],
            name: output.to_string(),
            op_type: op_type.to_string(),
            attribute: attributes,
            ..Default::default()
        });
        output.to_string()
    }

    /// `Conv` with "same" padding, NCHW, weight `[cout, cin/group, k, k]`
    /// and an optional bias `[cout]`.
    pub(crate) fn conv(
        &mut self,
        output: &str,
        x: &str,
        weight: &str,
        bias: Option<&str>,
        params: ConvParams,
    ) -> String {
        let (k, s, p) = (
            params.kernel as i64,
            params.stride as i64,
            params.pad() as i64,
        );
        let mut inputs = vec![x, weight];
        inputs.extend(bias);
        let mut attributes = vec![
            attr_ints("kernel_shape", &[k, k]),
            attr_ints("strides", &[s, s]),
            attr_ints("pads", &[p, p, p, p]),
            attr_ints("dilations", &[1, 1]),
        ];
        if params.group != 1 {
            attributes.push(attr_int("group", params.group as i64));
        }
        self.node("Conv", &inputs, output, attributes)
    }

    /// A one-input operator without attributes (`Relu`, `HardSwish`,
    /// `Sigmoid`, `GlobalAveragePool`, ...).
    pub(crate) fn unary(&mut self, op_type: &str, output: &str, x: &str) -> String {
        self.node(op_type, &[x], output, Vec::new())
    }

    /// Element-wise `Add`.
    pub(crate) fn add(&mut self, output: &str, a: &str, b: &str) -> String {
        self.node("Add", &[a, b], output, Vec::new())
    }

    /// Element-wise `Sub` (broadcasting): `a − b`.
    pub(crate) fn sub(&mut self, output: &str, a: &str, b: &str) -> String {
        self.node("Sub", &[a, b], output, Vec::new())
    }

    /// Element-wise `Div` (broadcasting): `a / b`.
    pub(crate) fn div(&mut self, output: &str, a: &str, b: &str) -> String {
        self.node("Div", &[a, b], output, Vec::new())
    }

    /// Element-wise `Mul` (broadcasting).
    pub(crate) fn mul(&mut self, output: &str, a: &str, b: &str) -> String {
        self.node("Mul", &[a, b], output, Vec::new())
    }

    /// `Flatten` to 2-D at `axis`.
    pub(crate) fn flatten(&mut self, output: &str, x: &str, axis: i64) -> String {
        self.node("Flatten", &[x], output, vec![attr_int("axis", axis)])
    }

    /// `Gemm` computing `x · weightᵀ + bias` with weight `[out, in]`.
    pub(crate) fn gemm(&mut self, output: &str, x: &str, weight: &str, bias: &str) -> String {
        self.node(
            "Gemm",
            &[x, weight, bias],
            output,
            vec![
                attr_float("alpha", 1.0),
                attr_float("beta", 1.0),
                attr_int("transA", 0),
                attr_int("transB", 1),
            ],
        )
    }

    /// Number of nodes so far.
    pub fn node_count(&self) -> usize {
        self.graph.node.len()
    }

    /// The finished graph.
    pub(crate) fn finish(self) -> GraphProto {
        self.graph
    }
}

/// Wraps a graph into a model: IR version [`IR_VERSION`], default-domain
/// opset [`OPSET_VERSION`], producer `tunas-rs`.
pub(crate) fn model(graph: GraphProto, doc: &str) -> ModelProto {
    ModelProto {
        ir_version: IR_VERSION,
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: OPSET_VERSION,
        }],
        producer_name: "tunas-rs".to_string(),
        producer_version: env!("CARGO_PKG_VERSION").to_string(),
        domain: "ai.tunas".to_string(),
        model_version: 1,
        doc_string: doc.to_string(),
        graph: Some(graph),
        metadata_props: Vec::new(),
    }
}

/// Serialises a model to the ONNX file format.
pub(crate) fn encode(model: &ModelProto) -> Vec<u8> {
    model.encode_to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_valued_int_attribute_is_written() {
        let a = attr_int("transA", 0);
        let bytes = a.encode_to_vec();
        let back = AttributeProto::decode(bytes.as_slice()).unwrap();
        assert_eq!(back.i, Some(0));
        assert_eq!(back.r#type, AttributeType::Int as i32);
    }

    #[test]
    fn same_padding_gives_ceil_division() {
        for kernel in [1, 3, 5, 7] {
            for stride in [1, 2] {
                for n in [1, 7, 14, 28, 224] {
                    let p = ConvParams {
                        kernel,
                        stride,
                        group: 1,
                    };
                    let out = (n + 2 * p.pad() - kernel) / stride + 1;
                    assert_eq!(out, n.div_ceil(stride), "k{kernel} s{stride} n{n}");
                }
            }
        }
    }

    #[test]
    fn initializer_is_little_endian_raw_data() {
        let mut g = GraphBuilder::new("g");
        g.initializer("w", &[2], &[1.0, -2.5]);
        let graph = g.finish();
        let t = &graph.initializer[0];
        assert_eq!(t.raw_data.len(), 8);
        assert_eq!(
            f32::from_le_bytes(t.raw_data[4..8].try_into().unwrap()),
            -2.5
        );
    }
}
