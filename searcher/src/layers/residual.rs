//! Residual connection `y = a + b`.
//!
//! Backward is the identity for both inputs: the output grad is the grad of
//! `a` and of `b` alike, so nothing is kept and there is no backward function.

use ndarray::{ArrayView4, ArrayViewMut4, Zip};

use super::{PAR_MIN_ELEMENTS, is_serial};

/// `a += b`, in place (also used to accumulate gradients).
///
/// # Shapes
/// `a, b: [n, c, h, w]`.
pub(crate) fn residual_add_assign(mut a: ArrayViewMut4<'_, f32>, b: ArrayView4<'_, f32>) {
    assert_eq!(a.shape(), b.shape(), "residual_add: shapes differ");
    let zip = Zip::from(&mut a).and(&b);
    if is_serial() || b.len() < PAR_MIN_ELEMENTS {
        zip.for_each(|o, &v| *o += v);
    } else {
        zip.par_for_each(|o, &v| *o += v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array;

    #[test]
    fn adds() {
        let a = Array::from_shape_fn((2, 3, 4, 5), |(n, c, h, w)| (n + c + h + w) as f32);
        let b = Array::from_shape_fn((2, 3, 4, 5), |(n, c, h, w)| (n * c * h * w) as f32);
        let mut y = a.clone();
        residual_add_assign(y.view_mut(), b.view());
        assert_eq!(y, &a + &b);
    }
}
