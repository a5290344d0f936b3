//! Op emitters: the nodes and initializers each op is made of. [`emit_op`]
//! is the only place that knows them; every model, from one op to a whole
//! network, is a chain of its calls.

use crate::onnx::builder::{ConvParams, GraphBuilder};
use crate::onnx::{OnnxError, WeightRequest, WeightSource};
use crate::opkey::{OpKey, OpKind};
use crate::space::Activation;

/// Input shape (NCHW) of an op.
pub fn input_dims(key: &OpKey) -> [i64; 4] {
    [
        key.batch as i64,
        key.cin as i64,
        key.in_h as i64,
        key.in_w as i64,
    ]
}

/// Output shape of an op: NCHW, or `[batch, classes]` for the classifier.
pub fn output_dims(key: &OpKey) -> Vec<i64> {
    let (oh, ow) = key.out_hw();
    match key.op {
        OpKind::Classifier => vec![key.batch as i64, key.cout as i64],
        _ => vec![key.batch as i64, key.cout as i64, oh as i64, ow as i64],
    }
}

/// Checks that a key describes an op the emitters can build.
pub(crate) fn check_key(key: &OpKey) -> Result<(), OnnxError> {
    let invalid = |what: &str| {
        Err(OnnxError::InvalidKey {
            key: key.to_string(),
            what: what.to_string(),
        })
    };
    if [
        key.in_h, key.in_w, key.cin, key.cout, key.mid, key.kernel, key.stride, key.batch,
    ]
    .contains(&0)
    {
        return invalid("sizes, kernel, stride and batch must all be at least 1");
    }
    if key.kernel.is_multiple_of(2) {
        return invalid("the kernel size must be odd for symmetric \"same\" padding");
    }
    if key.se && key.op != OpKind::Bottleneck {
        return invalid("only a bottleneck has squeeze-excite");
    }
    match key.op {
        OpKind::Stem | OpKind::Bottleneck | OpKind::Fused => {}
        OpKind::Separable => {
            if key.mid != key.cin {
                return invalid("a separable conv has mid = cin");
            }
        }
        OpKind::HeadConv => {
            if key.kernel != 1 || key.stride != 1 {
                return invalid("the head conv is 1x1 with stride 1");
            }
        }
        OpKind::HeadFc | OpKind::Classifier => {
            if key.kernel != 1 || key.stride != 1 || key.in_h != 1 || key.in_w != 1 {
                return invalid("head_fc and classifier take 1x1 inputs with kernel 1, stride 1");
            }
        }
    }
    if key.residual {
        if !matches!(
            key.op,
            OpKind::Separable | OpKind::Bottleneck | OpKind::Fused
        ) {
            return invalid("only separable, bottleneck and fused ops can be residual");
        }
        if key.cin != key.cout || key.stride != 1 {
            return invalid("a residual op needs cin = cout and stride 1");
        }
    }
    Ok(())
}

/// Emits the nodes and initializers of one op reading value `input`;
/// returns the name of its output value. This function is used for every
/// model: one-op, chain and network.
///
/// # Shapes
/// `input` is `[batch, cin, in_h, in_w]`; the output is [`output_dims`].
pub fn emit_op(
    graph: &mut GraphBuilder,
    scope: &str,
    key: &OpKey,
    input: &str,
    weights: &mut dyn WeightSource,
) -> Result<String, OnnxError> {
    check_key(key)?;
    let mut e = Emitter {
        g: graph,
        scope,
        key,
        weights,
    };
    match key.op {
        OpKind::Stem => e.stem(input),
        OpKind::Separable => e.separable(input),
        OpKind::Bottleneck => e.bottleneck(input),
        OpKind::Fused => e.fused(input),
        OpKind::HeadConv => e.head_conv(input),
        OpKind::HeadFc => e.head_fc(input),
        OpKind::Classifier => e.classifier(input),
    }
}

/// Initial gain of a conv followed by a ReLU-like activation.
const RELU_GAIN: f32 = std::f32::consts::SQRT_2;

/// A dense (group 1) conv.
fn full(kernel: u32, stride: u32) -> ConvParams {
    ConvParams {
        kernel,
        stride,
        group: 1,
    }
}

/// Emits the parts of one op; holds what every part needs.
struct Emitter<'g, 'w> {
    g: &'g mut GraphBuilder,
    scope: &'g str,
    key: &'g OpKey,
    weights: &'w mut dyn WeightSource,
}

/// The ops, one method per [`OpKind`].
impl Emitter<'_, '_> {
    fn cin(&self) -> usize {
        self.key.cin as usize
    }

    fn cout(&self) -> usize {
        self.key.cout as usize
    }

    fn mid(&self) -> usize {
        self.key.mid as usize
    }

    /// The gain of the last conv of a branch: a residual branch starts
    /// small so that activations stay of similar size through a deep stack
    /// of residual adds.
    fn branch_gain(&self) -> f32 {
        if self.key.residual { 0.5 } else { 1.0 }
    }

    /// The key's depthwise conv over `channels` channels.
    fn depthwise(&self, channels: u32) -> ConvParams {
        ConvParams {
            kernel: self.key.kernel,
            stride: self.key.stride,
            group: channels,
        }
    }

    fn stem(&mut self, input: &str) -> Result<String, OnnxError> {
        let params = full(self.key.kernel, self.key.stride);
        let conv = self.conv("conv", input, self.cout(), self.cin(), params, RELU_GAIN)?;
        Ok(self.act("act", &conv))
    }

    fn separable(&mut self, input: &str) -> Result<String, OnnxError> {
        let (cin, cout) = (self.cin(), self.cout());
        let dw = self.conv("dw", input, cin, 1, self.depthwise(self.key.cin), RELU_GAIN)?;
        let dw = self.act("dw_act", &dw);
        let pw = self.conv("pw", &dw, cout, cin, full(1, 1), self.branch_gain())?;
        Ok(self.residual(input, &pw))
    }

    fn bottleneck(&mut self, input: &str) -> Result<String, OnnxError> {
        let (cin, cout, mid) = (self.cin(), self.cout(), self.mid());
        let ex = self.conv("expand", input, mid, cin, full(1, 1), RELU_GAIN)?;
        let ex = self.act("expand_act", &ex);
        let dw = self.conv("dw", &ex, mid, 1, self.depthwise(self.key.mid), RELU_GAIN)?;
        let mut x = self.act("dw_act", &dw);
        if self.key.se {
            x = self.squeeze_excite(&x)?;
        }
        let pr = self.conv("project", &x, cout, mid, full(1, 1), self.branch_gain())?;
        Ok(self.residual(input, &pr))
    }

    /// The fused bottleneck: the k×k `expand` conv (dense, at the key's
    /// stride) replaces the 1×1 expand and the depthwise conv.
    fn fused(&mut self, input: &str) -> Result<String, OnnxError> {
        let (cin, cout, mid) = (self.cin(), self.cout(), self.mid());
        let params = full(self.key.kernel, self.key.stride);
        let ex = self.conv("expand", input, mid, cin, params, RELU_GAIN)?;
        let ex = self.act("expand_act", &ex);
        let pr = self.conv("project", &ex, cout, mid, full(1, 1), self.branch_gain())?;
        Ok(self.residual(input, &pr))
    }

    /// Squeeze-excite of the bottleneck's `mid` channels: pool, reduce,
    /// ReLU, expand, sigmoid gate, multiply.
    fn squeeze_excite(&mut self, x: &str) -> Result<String, OnnxError> {
        let (mid, s) = (self.mid(), self.key.se_width() as usize);
        let pool = self.name("se_pool");
        self.g.unary("GlobalAveragePool", &pool, x);
        let red = self.conv("se.reduce", &pool, s, mid, full(1, 1), RELU_GAIN)?;
        let relu = self.name("se_relu");
        self.g.unary("Relu", &relu, &red);
        let exp = self.conv("se.expand", &relu, mid, s, full(1, 1), 1.0)?;
        let gate = self.name("se_gate");
        self.g.unary("Sigmoid", &gate, &exp);
        let scaled = self.name("se_mul");
        Ok(self.g.mul(&scaled, x, &gate))
    }

    fn head_conv(&mut self, input: &str) -> Result<String, OnnxError> {
        let act = self.pointwise_act(input)?;
        let pool = self.name("pool");
        Ok(self.g.unary("GlobalAveragePool", &pool, &act))
    }

    fn head_fc(&mut self, input: &str) -> Result<String, OnnxError> {
        self.pointwise_act(input)
    }

    /// The head's 1x1 conv `conv` and its activation `act`.
    fn pointwise_act(&mut self, input: &str) -> Result<String, OnnxError> {
        let conv = self.conv(
            "conv",
            input,
            self.cout(),
            self.cin(),
            full(1, 1),
            RELU_GAIN,
        )?;
        Ok(self.act("act", &conv))
    }

    fn classifier(&mut self, input: &str) -> Result<String, OnnxError> {
        let (cin, cout) = (self.cin(), self.cout());
        let flat = self.name("flatten");
        self.g.flatten(&flat, input, 1);
        let w = self.weight("fc.weight", &[cout, cin], cin, 1.0)?;
        let b = self.weight("fc.bias", &[cout], 0, 0.0)?;
        let fc = self.name("fc");
        Ok(self.g.gemm(&fc, &flat, &w, &b))
    }
}

/// The parts every op is built from.
impl Emitter<'_, '_> {
    fn name(&self, part: &str) -> String {
        format!("{}/{part}", self.scope)
    }

    /// Asks the source for a tensor, checks its size, adds it as an
    /// initializer; returns the initializer name.
    fn weight(
        &mut self,
        tensor: &str,
        shape: &[usize],
        fan_in: usize,
        gain: f32,
    ) -> Result<String, OnnxError> {
        let request = WeightRequest {
            scope: self.scope,
            key: self.key,
            tensor,
            shape,
            fan_in,
            gain,
        };
        let values = self
            .weights
            .tensor(&request)
            .map_err(|message| OnnxError::Weights {
                scope: self.scope.to_string(),
                tensor: tensor.to_string(),
                message,
            })?;
        if values.len() != request.len() {
            return Err(OnnxError::WeightShape {
                scope: self.scope.to_string(),
                tensor: tensor.to_string(),
                shape: shape.to_vec(),
                expected: request.len(),
                found: values.len(),
            });
        }
        let dims: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
        Ok(self.g.initializer(&self.name(tensor), &dims, &values))
    }

    /// A conv with folded-BN weight `{part}.weight` `[cout, cin/group, k, k]`
    /// and bias `{part}.bias` `[cout]`; the output value is `{scope}/{part}`
    /// with dots in `part` turned into underscores.
    fn conv(
        &mut self,
        part: &str,
        x: &str,
        cout: usize,
        cin_per_group: usize,
        params: ConvParams,
        gain: f32,
    ) -> Result<String, OnnxError> {
        let k = params.kernel as usize;
        let fan_in = cin_per_group * k * k;
        let w = self.weight(
            &format!("{part}.weight"),
            &[cout, cin_per_group, k, k],
            fan_in,
            gain,
        )?;
        let b = self.weight(&format!("{part}.bias"), &[cout], 0, 0.0)?;
        let out = self.name(&part.replace('.', "_"));
        Ok(self.g.conv(&out, x, &w, Some(&b), params))
    }

    /// The key's activation.
    fn act(&mut self, part: &str, x: &str) -> String {
        let op = match self.key.act {
            Activation::Relu => "Relu",
            Activation::Swish6 => "HardSwish",
        };
        let out = self.name(part);
        self.g.unary(op, &out, x)
    }

    /// Adds the op's input when the key is residual.
    fn residual(&mut self, input: &str, branch: &str) -> String {
        if self.key.residual {
            let out = self.name("add");
            self.g.add(&out, input, branch)
        } else {
            branch.to_string()
        }
    }
}
