//! Matrix products for the convolutions, through `faer`.
//!
//! `faer` picks AVX2 or AVX-512 kernels at run time behind a safe API; on the
//! 1×1-conv shapes of tiny28 it is 2–2.7× faster than `matrixmultiply`
//! (ndarray's `general_mat_mul`), see `benches/kernels.rs`. (The `gemm`
//! crate, which faer builds on, only offers an `unsafe` raw-pointer API,
//! and `unsafe_code` is denied here.) Every product runs on the calling
//! thread (`Par::Seq`): the layers parallelise over images and channels
//! themselves, which keeps the results independent of the thread count.

use faer::{Accum, MatMut, MatRef, Par};

/// A row-major `[rows, cols]` matrix over `data`.
pub(crate) fn mat(data: &[f32], rows: usize, cols: usize) -> MatRef<'_, f32> {
    MatRef::from_row_major_slice(&data[..rows * cols], rows, cols)
}

/// A mutable row-major `[rows, cols]` matrix over `data`.
pub(crate) fn mat_mut(data: &mut [f32], rows: usize, cols: usize) -> MatMut<'_, f32> {
    MatMut::from_row_major_slice_mut(&mut data[..rows * cols], rows, cols)
}

/// `c = a · b` (`accumulate == false`) or `c += a · b`.
pub(crate) fn gemm(c: MatMut<'_, f32>, accumulate: bool, a: MatRef<'_, f32>, b: MatRef<'_, f32>) {
    let accum = if accumulate {
        Accum::Add
    } else {
        Accum::Replace
    };
    faer::linalg::matmul::matmul(c, accum, a, b, 1.0f32, Par::Seq);
}
