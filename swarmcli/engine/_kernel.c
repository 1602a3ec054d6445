/* swarm's native kernel: every epoch of a plain, full-batch MLP for a range of bees, in C,
 * compiled when the package is installed and called through ctypes (engine/native.py).
 *
 * Why: the torch path runs an epoch as a few dozen batched kernels; for the swarms this tool is
 * for (tens to thousands of bees, a few units, about a hundred points) their per-call overhead
 * is most of the time, and torch.compile costs more to compile than these runs take to train.
 * The arithmetic is the torch path's (gradients.hand_derived, optim), operation for operation
 * where order matters; sums over points are vectorised (`omp simd` reductions), so results
 * agree with torch to rounding (the tests hold float64 to 1e-10). No Python API is used: the
 * module object below only lets the file be found and imported like any extension. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* c[...]: constants in the run's dtype (native.constants writes them in this order) */
enum { C_ONE, C_HALF, C_ZERO, C_SLOPE, C_DELTA, C_TWENTY, C_SQRT1_2, C_INV_SQRT_2PI, C_L1, C_L2,
       C_S, C_2S, C_NTRAIN, C_NVAL };
/* hyp[row, ...]: each distinct hyper-parameter row's values in the run's dtype */
enum { H_MOM, H_WD, H_B1C, H_B2, H_B2C, H_EPS, H_COUNT };

/* What native.train passes (ctypes.Structure KernelSpec mirrors it field for field). */
typedef struct {
    int64_t n, n_ex, size, layers, epochs, frames, n_rows;
    int64_t n_real, n_rec;               /* points before padding: trained on, recorded */
    int64_t loss_kind, opt, use_mom, nesterov, use_wd, same_eval;
    const int64_t *fi, *fo, *off;        /* per layer: fan-in, fan-out, offset of W in a row */
    const int64_t *widths, *acts, *row;  /* per bee: own width, activation code, coef row */
    const int64_t *frame_of;             /* per epoch: frame index, or -1 */
    const int64_t *bees;                 /* the bees train_bees trains, in order */
    const int64_t *blocks;               /* [blocks, lanes]: the bees train_lanes trains */
    const void *x, *y, *tw, *ex;         /* x [in_dim, n], y [n], train weights [n], ex [in_dim, n_ex];
                                          * n and n_ex padded with zero inputs to whole vectors */
    const void *c, *hyp, *coef;          /* constants, hyp [rows, H_COUNT], coef [epochs, rows, 3] */
    void *flat;                          /* [bees, size] parameters, trained in place */
    void *rec_loss, *rec_val, *rec_ypred, *rec_flat;  /* NULL: not recorded */
} KernelSpec;

/* exp with no libm call, so loops that use it vectorise (libm's exp is a scalar call): reduction
 * by ln 2, a degree-13 Taylor polynomial on |r| <= 0.35, 2^(k-1) built from its bits (so k up to
 * 1024 stays a normal number) and doubled. Within 2 ulp of libm's exp over [-708, 709.78]; below
 * -708 it gives 0 (the true value is under 3.3e-308), above 709.78 inf, NaN stays NaN
 * (tests/test_native.py checks it). */
static inline __attribute__((always_inline)) double exp_v(double x) {
    const double xc = x < -708.0 ? -708.0 : (x > 709.78 ? 709.78 : x);
    const double kk = floor(xc * 1.4426950408889634 + 0.5);
    const double r = (xc - kk * 6.93147180369123816490e-01) - kk * 1.90821492927058770002e-10;
    double e = 1.0 / 6227020800.0;
    e = e * r + 1.0 / 479001600.0;
    e = e * r + 1.0 / 39916800.0;
    e = e * r + 1.0 / 3628800.0;
    e = e * r + 1.0 / 362880.0;
    e = e * r + 1.0 / 40320.0;
    e = e * r + 1.0 / 5040.0;
    e = e * r + 1.0 / 720.0;
    e = e * r + 1.0 / 120.0;
    e = e * r + 1.0 / 24.0;
    e = e * r + 1.0 / 6.0;
    e = e * r + 0.5;
    e = e * r + 1.0;
    e = e * r + 1.0;
    const union { int64_t i; double d; } two_k1 = {((int64_t)kk + 1022) << 52};
    const double out = e * two_k1.d * 2.0;
    return x != x ? x : (x > 709.78 ? INFINITY : (x < -708.0 ? 0.0 : out));
}

/* tanh with no libm call, so loops that use it vectorise (libm's tanh is a scalar call, several
 * times torch's cost per value): Cephes' rational form below 0.625, 1 - 2 / (exp(2|x|) + 1)
 * above (exp_v, its argument capped at 40, where tanh is 1 to the last bit). Within 2 ulp of
 * libm's tanh in float64 (tests/test_native.py checks it). */
static inline __attribute__((always_inline)) double tanh_v(double x) {
    const double a = fabs(x), z = a * a;
    const double e = exp_v(a < 20.0 ? a + a : 40.0);
    const int small = a < 0.625;  /* one division for both forms: base + num / den */
    const double base = small ? a : 1.0;
    const double num = small ? a * z * ((-9.64399179425052238628e-1 * z - 9.92877231001918586564e1) * z
                                        - 1.61468768441708447952e3) : -2.0;
    const double den = small ? ((z + 1.12811678491632931402e2) * z + 2.23548839060100448583e3) * z
                                   + 4.84406305325125486048e3 : e + 1.0;
    const double t = base + num / den;
    return x != x ? x : copysign(t, x);
}

/* Run BODY with K the activation code, a literal for the three common ones: after inlining,
 * their loops are branch-free and vectorise; the others take the generic switch. Each literal
 * case is another copy of every loop that uses it: the lane kernel (LANE_DISPATCH) takes only
 * the five activations with no libm call (sigmoid and silu too, through exp_v), and the
 * per-bee kernel has literals for three (its loops are many: sigmoid and silu there too took
 * the build's gcc from 70 s to 103 s here). */
#define DISPATCH(code, ...) \
    switch (code) { \
    case 0: { const int K = 0; __VA_ARGS__ } break; \
    case 1: { const int K = 1; __VA_ARGS__ } break; \
    case 2: { const int K = 2; __VA_ARGS__ } break; \
    default: { const int K = (code); __VA_ARGS__ } break; \
    }
#define LANE_DISPATCH(code, ...) \
    switch (code) { \
    case 0: { const int K = 0; __VA_ARGS__ } break; \
    case 1: { const int K = 1; __VA_ARGS__ } break; \
    case 2: { const int K = 2; __VA_ARGS__ } break; \
    case 3: { const int K = 3; __VA_ARGS__ } break; \
    case 8: { const int K = 8; __VA_ARGS__ } break; \
    default: break; /* never: native.lane_plan gives the lane kernel these five only */ \
    }
#define LANE_ACTIVATION(code) ((code) <= 3 || (code) == 8)
/* Whether an activation's derivative reads z (the others read only h = act(z)): where it does
 * not, the forward pass of a first layer need not store z at all. */
#define NEEDS_Z(K) ((K) == 2 || (K) >= 4)
#define LOSS_DISPATCH(kind, ...) \
    switch (kind) { \
    case 0: { const int L = 0; __VA_ARGS__ } break; \
    case 1: { const int L = 1; __VA_ARGS__ } break; \
    case 2: { const int L = 2; __VA_ARGS__ } break; \
    default: { const int L = 3; __VA_ARGS__ } break; \
    }

#define FN(name) CAT(name, SUFFIX)
#define CAT(a, b) CAT2(a, b)
#define CAT2(a, b) a##_##b

/* Each dtype's kernels: kernel_body.h, which ends by including kernel_lanes.h. */
#define REAL float
#define SUFFIX f32
#include "kernel_body.h"
#undef REAL
#undef SUFFIX

#define REAL double
#define SUFFIX f64
#include "kernel_body.h"
#undef REAL
#undef SUFFIX

/* tanh_v and exp_v themselves, for their accuracy tests. */
void tanh_array(const double *x, double *out, int64_t n) {
    for (int64_t i = 0; i < n; i++) out[i] = tanh_v(x[i]);
}

void exp_array(const double *x, double *out, int64_t n) {
    for (int64_t i = 0; i < n; i++) out[i] = exp_v(x[i]);
}

int64_t spec_size(void) { return (int64_t)sizeof(KernelSpec); }

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_kernel",
                                    "swarm's native kernel, called through ctypes.", -1, NULL};

PyMODINIT_FUNC PyInit__kernel(void) { return PyModule_Create(&module); }
