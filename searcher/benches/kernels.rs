//! Layer kernels at tiny28 largest-path shapes (batch 64), one group per op.
//!
//! Run with `cargo bench -p tunas-searcher --bench kernels`; add
//! `RAYON_NUM_THREADS=2` to match the search machine. Each group says which
//! slowdown it guards against. Numbers live in criterion's reports, never in
//! tests.
//!
//! On a shared machine wall time is noisy: `TUNAS_BENCH_CPU=1` runs every
//! kernel serially and measures the thread's own CPU time (from
//! `/proc/thread-self/schedstat`), which other processes barely disturb.

#![allow(missing_docs)]

use std::hint::black_box;
use std::time::Duration;

use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use criterion::{BatchSize, BenchmarkId, Criterion};
use ndarray::{Array1, Array4};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tunas_searcher::layers::activation::Activation;
use tunas_searcher::layers::batch_norm::{
    BatchNormParams, Statistics, batch_norm_activation_in_place, batch_norm_backward,
    batch_norm_train,
};
use tunas_searcher::layers::conv::{
    Conv2dParams, conv2d, conv2d_backward_input, conv2d_backward_weight,
};
use tunas_searcher::layers::squeeze_excite::{
    SqueezeExciteParams, squeeze_excite, squeeze_excite_backward,
};
use tunas_searcher::{BnMode, PathPlan, Supernet};
use tunas_shared::{Architecture, builtin_space};

const BATCH: usize = 64;

/// CPU time of the calling thread, in nanoseconds.
struct ThreadCpuTime;

fn thread_cpu_ns() -> u64 {
    tunas_searcher::bench::thread_cpu_ns().expect("/proc/thread-self/schedstat is readable (Linux)")
}

static WALL: WallTime = WallTime;

impl Measurement for ThreadCpuTime {
    type Intermediate = u64;
    type Value = u64;

    fn start(&self) -> u64 {
        thread_cpu_ns()
    }
    fn end(&self, start: u64) -> u64 {
        thread_cpu_ns() - start
    }
    fn add(&self, a: &u64, b: &u64) -> u64 {
        a + b
    }
    fn zero(&self) -> u64 {
        0
    }
    fn to_f64(&self, v: &u64) -> f64 {
        *v as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        WALL.formatter()
    }
}

fn random4(rng: &mut ChaCha8Rng, shape: (usize, usize, usize, usize)) -> Array4<f32> {
    Array4::from_shape_simple_fn(shape, || rng.random_range(-1.0..1.0))
}

/// Forward, input grad and weight grad of one convolution geometry.
fn bench_conv<M: Measurement>(c: &mut Criterion<M>, group: &str, name: &str, p: Conv2dParams) {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let x = random4(&mut rng, (BATCH, p.cin, p.in_h, p.in_w));
    let w = random4(&mut rng, p.weight_shape());
    let dy = random4(&mut rng, (BATCH, p.cout, p.out_h(), p.out_w()));
    let mut g = c.benchmark_group(group);
    g.sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    g.bench_function(BenchmarkId::new("forward", name), |b| {
        b.iter(|| conv2d(&p, black_box(x.view()), w.view(), None))
    });
    g.bench_function(BenchmarkId::new("backward_input", name), |b| {
        b.iter(|| conv2d_backward_input(&p, black_box(dy.view()), w.view()))
    });
    g.bench_function(BenchmarkId::new("backward_weight", name), |b| {
        b.iter(|| conv2d_backward_weight(&p, black_box(x.view()), dy.view()))
    });
    g.finish();
}

/// Guards the pointwise GEMM path: most of the network's FLOPs, so a slow
/// GEMM (bad packing, strided weight copies, lost parallelism) shows here.
fn conv1x1<M: Measurement>(c: &mut Criterion<M>) {
    for (name, cin, cout, hw) in [
        ("14x14_32to192", 32, 192, 14),
        ("14x14_192to32", 192, 32, 14),
        ("7x7_64to384", 64, 384, 7),
        ("7x7_384to96", 384, 96, 7),
        ("7x7_96to576", 96, 576, 7),
    ] {
        let p = Conv2dParams::pointwise(cin, cout, hw, hw).unwrap();
        bench_conv(c, "conv1x1", name, p);
    }
}

/// Why the 1×1 convs use faer: the same per-image products (64 images, one
/// thread) through ndarray's `general_mat_mul` (matrixmultiply, AVX2) and
/// through faer (AVX-512 where available). Guards the choice: if faer stops
/// winning, switch `layers/gemm.rs` back.
fn gemm_backend<M: Measurement>(c: &mut Criterion<M>) {
    use faer::{Accum, MatMut, MatRef, Par};
    use ndarray::{Array2, linalg::general_mat_mul};
    let mut g = c.benchmark_group("gemm_backend");
    g.sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for (name, cin, cout, hw) in [
        ("14x14_32to192", 32, 192, 196),
        ("7x7_96to576", 96, 576, 49),
        ("7x7_384to96", 384, 96, 49),
    ] {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let w = Array2::from_shape_simple_fn((cout, cin), || rng.random_range(-1.0f32..1.0));
        let xs: Vec<Array2<f32>> = (0..BATCH)
            .map(|_| Array2::from_shape_simple_fn((cin, hw), || rng.random_range(-1.0f32..1.0)))
            .collect();
        let mut y = Array2::<f32>::zeros((cout, hw));
        g.bench_function(BenchmarkId::new("matrixmultiply", name), |b| {
            b.iter(|| {
                for x in &xs {
                    general_mat_mul(1.0, &w, x, 0.0, &mut y);
                }
                black_box(&y);
            })
        });
        g.bench_function(BenchmarkId::new("faer", name), |b| {
            b.iter(|| {
                let wm = MatRef::from_row_major_slice(w.as_slice().unwrap(), cout, cin);
                for x in &xs {
                    let xm = MatRef::from_row_major_slice(x.as_slice().unwrap(), cin, hw);
                    let ym = MatMut::from_row_major_slice_mut(y.as_slice_mut().unwrap(), cout, hw);
                    faer::linalg::matmul::matmul(ym, Accum::Replace, wm, xm, 1.0f32, Par::Seq);
                }
                black_box(&y);
            })
        });
    }
    g.finish();
}

/// Guards the depthwise direct loops (phase-split planes, contiguous inner
/// loops) for every kernel size, at both strides. The stride-1 input grad
/// runs as a forward pass with the kernel turned, on the side-by-side
/// layout: a `backward_input/7x7x384_s1` well above its `forward` means it
/// lost that layout (it was 1.3× the forward before).
fn depthwise<M: Measurement>(c: &mut Criterion<M>) {
    for k in [3, 5, 7] {
        for (name, ch, hw, stride) in [
            ("14x14x96_s1", 96, 14, 1),
            ("14x14x192_s2", 192, 14, 2),
            ("7x7x384_s1", 384, 7, 1),
        ] {
            let p = Conv2dParams::depthwise(ch, k, stride, hw, hw).unwrap();
            bench_conv(c, &format!("depthwise_k{k}"), name, p);
        }
    }
}

/// Guards the im2col + GEMM path on the stem.
fn stem<M: Measurement>(c: &mut Criterion<M>) {
    let p = Conv2dParams {
        cin: 1,
        cout: 16,
        kernel: 3,
        stride: 1,
        padding: 1,
        groups: 1,
        in_h: 28,
        in_w: 28,
    }
    .checked()
    .unwrap();
    bench_conv(c, "stem", "28x28_1to16_k3", p);
}

/// Guards batch norm's per-channel passes (strided over the batch) against
/// falling back to slow indexing or losing parallelism.
fn batch_norm<M: Measurement>(c: &mut Criterion<M>) {
    let mut g = c.benchmark_group("batch_norm");
    g.sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for (name, ch, hw) in [("14x14x96", 96, 14), ("7x7x384", 384, 7)] {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let p = BatchNormParams::new(ch).unwrap();
        let x = random4(&mut rng, (BATCH, ch, hw, hw));
        let dy = random4(&mut rng, (BATCH, ch, hw, hw));
        let gamma = Array1::<f32>::ones(ch);
        let beta = Array1::<f32>::zeros(ch);
        g.bench_function(BenchmarkId::new("train_forward", name), |b| {
            b.iter(|| batch_norm_train(&p, black_box(x.view()), gamma.view(), beta.view()))
        });
        // The forward of a pass without tape (validation): one pass in
        // place, BN and activation together.
        g.bench_function(BenchmarkId::new("swish6_in_place", name), |b| {
            let mut y = x.clone();
            b.iter(|| {
                batch_norm_activation_in_place(
                    &p,
                    black_box(y.view_mut()),
                    gamma.view(),
                    beta.view(),
                    Statistics::Batch,
                    Activation::Swish6,
                )
            })
        });
        let (_, cache) = batch_norm_train(&p, x.view(), gamma.view(), beta.view());
        g.bench_function(BenchmarkId::new("backward", name), |b| {
            b.iter(|| batch_norm_backward(&p, black_box(x.view()), dy.view(), gamma.view(), &cache))
        });
    }
    g.finish();
}

/// Guards the element-wise activation passes (in place or into a new
/// array, parallel).
fn activation<M: Measurement>(c: &mut Criterion<M>) {
    let mut g = c.benchmark_group("activation");
    g.sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let x = random4(&mut rng, (BATCH, 384, 7, 7));
    let dy = random4(&mut rng, (BATCH, 384, 7, 7));
    for act in [Activation::Relu, Activation::Swish6] {
        let name = format!("{act:?}_7x7x384");
        // The in-place passes start from a fresh copy each time: applied
        // over and over, swish6 shrinks the values into denormals, which
        // timed the FPU's slow path instead of the pass.
        g.bench_function(BenchmarkId::new("forward_in_place", &name), |b| {
            b.iter_batched_ref(
                || x.clone(),
                |y| act.forward_in_place(black_box(y.view_mut())),
                BatchSize::LargeInput,
            )
        });
        // The unit's forward writes the activation once into a new array
        // and its backward over its own dy: each must stay one pass.
        g.bench_function(BenchmarkId::new("forward_new_array", &name), |b| {
            b.iter(|| act.forward(black_box(x.view())))
        });
        g.bench_function(BenchmarkId::new("backward", &name), |b| {
            b.iter(|| act.backward(black_box(x.view()), dy.view()))
        });
        g.bench_function(BenchmarkId::new("backward_in_place", &name), |b| {
            b.iter_batched_ref(
                || dy.clone(),
                |g| act.backward_in_place(black_box(x.view()), g.view_mut()),
                BatchSize::LargeInput,
            )
        });
    }
    g.finish();
}

/// Guards the squeeze-excite block: its tiny matrix products must not
/// dominate, and the two full-tensor passes must stay parallel.
fn se<M: Measurement>(c: &mut Criterion<M>) {
    let mut g = c.benchmark_group("squeeze_excite");
    g.sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    let (ch, s, hw) = (384, 96, 7);
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let p = SqueezeExciteParams::new(ch, s).unwrap();
    let x = random4(&mut rng, (BATCH, ch, hw, hw));
    let dy = random4(&mut rng, (BATCH, ch, hw, hw));
    let wr = random4(&mut rng, (s, ch, 1, 1));
    let we = random4(&mut rng, (ch, s, 1, 1));
    let br = Array1::<f32>::zeros(s);
    let be = Array1::<f32>::zeros(ch);
    g.bench_function(BenchmarkId::new("forward", "7x7x384_s96"), |b| {
        b.iter(|| {
            squeeze_excite(
                &p,
                black_box(x.view()),
                wr.view(),
                br.view(),
                we.view(),
                be.view(),
            )
        })
    });
    let (_, cache) = squeeze_excite(&p, x.view(), wr.view(), br.view(), we.view(), be.view());
    g.bench_function(BenchmarkId::new("backward", "7x7x384_s96"), |b| {
        b.iter(|| {
            squeeze_excite_backward(
                &p,
                black_box(x.view()),
                dy.view(),
                wr.view(),
                we.view(),
                &cache,
            )
        })
    });
    g.finish();
}

/// Guards the supernet's forward pass on the largest path (batch 128, the
/// validation batch): without a tape (Q) it must stay clearly cheaper than
/// with one, i.e. never copy again what only a backward pass needs.
fn supernet_forward<M: Measurement>(c: &mut Criterion<M>) {
    let mut g = c.benchmark_group("supernet_forward");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    let space = builtin_space("tiny28").expect("built-in space");
    let mut net = Supernet::new(&space, 1);
    let plan = PathPlan::single(Architecture::largest(&space));
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let x = random4(&mut rng, (2 * BATCH, 1, 28, 28));
    for (name, keep_tape) in [("without_tape", false), ("with_tape", true)] {
        g.bench_function(BenchmarkId::new("largest_b128", name), |b| {
            b.iter(|| net.forward(black_box(x.clone()), &plan, BnMode::Batch, keep_tape))
        });
    }
    g.finish();
}

fn run<M: Measurement>(mut c: Criterion<M>) {
    gemm_backend(&mut c);
    conv1x1(&mut c);
    depthwise(&mut c);
    stem(&mut c);
    batch_norm(&mut c);
    activation(&mut c);
    se(&mut c);
    supernet_forward(&mut c);
    c.final_summary();
}

fn main() {
    // As the binary does: freed buffers stay in the process, so a pass that
    // allocates its tape is not also timed faulting fresh pages in.
    tunas_searcher::heap::keep_freed_pages();
    if std::env::var_os("TUNAS_BENCH_CPU").is_some() {
        tunas_searcher::layers::set_serial(true);
        run(Criterion::default()
            .with_measurement(ThreadCpuTime)
            .configure_from_args());
    } else {
        run(Criterion::default().configure_from_args());
    }
}
