//! The geometry of a 2-D convolution and which kernel it runs on.

use ndarray::ArrayView4;
use serde::{Deserialize, Serialize};

use crate::layers::LayerError;

/// Geometry of a 2-D convolution, checked when built.
///
/// Square kernels, the same stride and zero padding on both axes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conv2dParams {
    /// Input channels.
    pub cin: usize,
    /// Output channels.
    pub cout: usize,
    /// Kernel size (k×k).
    pub kernel: usize,
    /// Stride on both axes.
    pub stride: usize,
    /// Zero padding on each side.
    pub padding: usize,
    /// Channel groups; `groups == cin == cout` is depthwise.
    pub groups: usize,
    /// Input height.
    pub in_h: usize,
    /// Input width.
    pub in_w: usize,
}

/// Which kernel a convolution runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ConvKind {
    /// 1×1, stride 1, no padding, one group: a GEMM per image.
    Pointwise,
    /// One input and one output channel per group.
    Depthwise,
    /// im2col + GEMM.
    General,
}

impl Conv2dParams {
    /// Checks the geometry: all sizes positive, `groups` divides both channel
    /// counts, the kernel fits the padded input.
    pub fn checked(self) -> Result<Self, LayerError> {
        for (what, v) in [
            ("cin", self.cin),
            ("cout", self.cout),
            ("kernel", self.kernel),
            ("stride", self.stride),
            ("groups", self.groups),
            ("in_h", self.in_h),
            ("in_w", self.in_w),
        ] {
            if v == 0 {
                return Err(LayerError::Zero {
                    layer: "conv2d",
                    what,
                });
            }
        }
        if !self.cin.is_multiple_of(self.groups) || !self.cout.is_multiple_of(self.groups) {
            return Err(LayerError::Groups {
                groups: self.groups,
                cin: self.cin,
                cout: self.cout,
            });
        }
        if self.in_h + 2 * self.padding < self.kernel || self.in_w + 2 * self.padding < self.kernel
        {
            return Err(LayerError::KernelTooLarge {
                kernel: self.kernel,
                in_h: self.in_h,
                in_w: self.in_w,
                padding: self.padding,
            });
        }
        Ok(self)
    }

    /// 1×1 convolution, stride 1, no padding, on an `h`×`w` input.
    pub fn pointwise(cin: usize, cout: usize, h: usize, w: usize) -> Result<Self, LayerError> {
        Self {
            cin,
            cout,
            kernel: 1,
            stride: 1,
            padding: 0,
            groups: 1,
            in_h: h,
            in_w: w,
        }
        .checked()
    }

    /// Depthwise `kernel`×`kernel` convolution with "same" padding
    /// (`kernel / 2`), on an `h`×`w` input.
    pub fn depthwise(
        channels: usize,
        kernel: usize,
        stride: usize,
        h: usize,
        w: usize,
    ) -> Result<Self, LayerError> {
        Self {
            cin: channels,
            cout: channels,
            kernel,
            stride,
            padding: kernel / 2,
            groups: channels,
            in_h: h,
            in_w: w,
        }
        .checked()
    }

    /// Output height.
    pub fn out_h(&self) -> usize {
        (self.in_h + 2 * self.padding - self.kernel) / self.stride + 1
    }

    /// Output width.
    pub fn out_w(&self) -> usize {
        (self.in_w + 2 * self.padding - self.kernel) / self.stride + 1
    }

    /// Weight shape `[cout, cin / groups, k, k]`.
    pub fn weight_shape(&self) -> (usize, usize, usize, usize) {
        (self.cout, self.cin / self.groups, self.kernel, self.kernel)
    }

    /// The kernel this geometry runs on.
    pub(crate) fn kind(&self) -> ConvKind {
        if self.kernel == 1 && self.stride == 1 && self.padding == 0 && self.groups == 1 {
            ConvKind::Pointwise
        } else if self.groups == self.cin && self.groups == self.cout {
            ConvKind::Depthwise
        } else {
            ConvKind::General
        }
    }

    pub(super) fn assert_input(&self, what: &str, x: &ArrayView4<'_, f32>) {
        let (_, c, h, w) = x.dim();
        assert!(
            c == self.cin && h == self.in_h && w == self.in_w,
            "conv2d {what}: input shape {:?} does not match params {self:?}",
            x.shape()
        );
    }

    pub(super) fn assert_output(&self, what: &str, dy: &ArrayView4<'_, f32>) {
        let (_, c, h, w) = dy.dim();
        assert!(
            c == self.cout && h == self.out_h() && w == self.out_w(),
            "conv2d {what}: output grad shape {:?} does not match params {self:?} (expected [_, {}, {}, {}])",
            dy.shape(),
            self.cout,
            self.out_h(),
            self.out_w()
        );
    }

    pub(super) fn assert_weight(&self, what: &str, w: &ArrayView4<'_, f32>) {
        assert!(
            w.dim() == self.weight_shape(),
            "conv2d {what}: weight shape {:?} does not match params {self:?} (expected {:?})",
            w.shape(),
            self.weight_shape()
        );
    }
}
