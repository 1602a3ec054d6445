/* One dtype's kernels: _kernel.c includes this file twice, with REAL float (suffix f32) and
 * double (f64). Bees train one after another; one bee's parameters, optimizer state and
 * activations ([units, points] rows) stay in L1/L2 cache through all its epochs, and every
 * inner loop runs over the points, contiguous, so the compiler vectorises it. */

/* act(z) of one value; c holds the constants (C_*) in this dtype. */
static inline __attribute__((always_inline)) REAL FN(act)(int code, REAL z, const REAL *c) {
    const REAL one = c[C_ONE], half = c[C_HALF], zero = c[C_ZERO];
    switch (code) {
    case 0: return z < zero ? zero : z;  /* clamp_min: NaN stays NaN */
    case 1: return (REAL)tanh_v((double)z);
    case 2: return z - (REAL)tanh_v((double)z);
    case 3: return one / (one + (REAL)exp_v(-(double)z));
    case 4: return z > zero ? z : z * c[C_SLOPE];
    case 5: return z;
    case 6: return z > zero ? z : (REAL)expm1((double)z);
    case 7: return z * half * (one + (REAL)erf((double)(z * c[C_SQRT1_2])));
    case 8: return z / (one + (REAL)exp_v(-(double)z));
    case 9: return z > c[C_TWENTY] ? z : (REAL)log1p(exp((double)z));
    default: return (REAL)sin((double)z);
    }
}

/* g * act'(z), from z and h = act(z), as nn.ACTIVATIONS writes each derivative. */
static inline __attribute__((always_inline)) REAL FN(dact)(int code, REAL g, REAL z, REAL h,
                                                         const REAL *c) {
    const REAL one = c[C_ONE], half = c[C_HALF], zero = c[C_ZERO];
    switch (code) {
    case 0: return h > zero ? g : zero;
    case 1: return g * (one - h * h);
    case 2: { REAL d = z - h; return g * (d * d); }
    case 3: return g * (h * (one - h));
    case 4: return g * (z > zero ? one : c[C_SLOPE]);
    case 5: return g;
    case 6: return g * (z > zero ? one : (REAL)exp_v((double)z));
    case 7: {
        REAL cdf = half * (one + (REAL)erf((double)(z * c[C_SQRT1_2])));
        return g * (cdf + z * ((REAL)exp((double)(-half * z * z)) * c[C_INV_SQRT_2PI]));
    }
    case 8: { REAL s = one / (one + (REAL)exp_v(-(double)z)); return g * (s * (one + z * (one - s))); }
    case 9: { REAL e = (REAL)exp_v((double)z); return g * (z > c[C_TWENTY] ? one : e / (e + one)); }
    default: return g * (REAL)cos((double)z);
    }
}

/* Per-point loss and its derivative times s (1/points), as gradients.LOSSES. */
static inline __attribute__((always_inline)) REAL FN(loss)(int kind, REAL q, REAL y, REAL *d,
                                                         const REAL *c) {
    const REAL one = c[C_ONE], half = c[C_HALF], zero = c[C_ZERO], delta = c[C_DELTA];
    REAL r = q - y;
    switch (kind) {
    case 0: *d = r * c[C_2S]; return r * r;
    case 1: *d = (r > zero ? one : (r < zero ? -one : r * zero)) * c[C_S]; return r < zero ? -r : r;
    case 2: {
        REAL a = r < zero ? -r : r;
        *d = (r > delta ? delta : (r < -delta ? -delta : r)) * c[C_S];
        return a < delta ? half * r * r : delta * (a - half * delta);
    }
    default: {  /* bce on a logit: (1 - y) q - logsigmoid(q) */
        REAL m = q < zero ? q : zero;
        REAL ls = m - (REAL)log1p(exp(-fabs((double)q)));
        *d = (one / (one + (REAL)exp(-(double)q)) - y) * c[C_S];
        return (one - y) * q - ls;
    }
    }
}

typedef struct {
    REAL *zs, *hs, *gz, *gh, *pred, *grad, *s1, *s2;
    int64_t pts;
} FN(Scratch);

#define Z(layer, j) (s->zs + ((layer) * width + (j)) * s->pts)
#define H(layer, j) (s->hs + ((layer) * width + (j)) * s->pts)
#define ROW(buf, j) (s->buf + (j) * s->pts)

/* z[:n] += sum over i < count of wt[i * wstride] * rows[i * stride + :n], four rows a pass:
 * a quarter of the loads and stores of z that one row a pass costs. */
static inline __attribute__((always_inline)) void FN(accumulate)(
        REAL *restrict z, const REAL *rows, int64_t stride, const REAL *wt, int64_t wstride,
        int64_t count, int64_t n) {
    int64_t i = 0;
    for (; i + 4 <= count; i += 4) {
        const REAL w0 = wt[i * wstride], w1 = wt[(i + 1) * wstride];
        const REAL w2 = wt[(i + 2) * wstride], w3 = wt[(i + 3) * wstride];
        const REAL *r0 = rows + i * stride, *r1 = r0 + stride, *r2 = r1 + stride, *r3 = r2 + stride;
        for (int64_t p = 0; p < n; p++) z[p] += (w0 * r0[p] + w1 * r1[p]) + (w2 * r2[p] + w3 * r3[p]);
    }
    for (; i < count; i++) {
        const REAL wi = wt[i * wstride], *r = rows + i * stride;
        for (int64_t p = 0; p < n; p++) z[p] += wi * r[p];
    }
}

/* pred[:n] at inputs x [in_dim, stride], keeping each hidden layer's z and h; `units` is the
 * bee's own width (the padding is never touched, so its parameters stay exactly 0). */
static inline __attribute__((always_inline)) void FN(forward)(const KernelSpec *k, const REAL *w, const REAL *x, int64_t stride,
                        int64_t n, int64_t units, int code, FN(Scratch) *s, const REAL *c) {
    const int64_t last = k->layers - 1, width = k->fo[0];
    REAL *pred = s->pred;
    for (int64_t p = 0; p < n; p++) pred[p] = 0;
    for (int64_t layer = 0; layer < last; layer++) {
        const int64_t o = k->off[layer], nin = k->fi[layer], nout = k->fo[layer];
        const int64_t ins = layer == 0 ? nin : units;
        const int fuse_out = layer == last - 1;  /* the output layer's sum in the same pass */
        const REAL *wout = w + k->off[last];
        int64_t j0 = 0;
        if (layer == 0 && nin == 1 && fuse_out) {  /* units two at a time: x and pred loaded once */
            for (; j0 + 1 < units; j0 += 2) {
                REAL *za = Z(0, j0), *zb = Z(0, j0 + 1), *ha = H(0, j0), *hb = H(0, j0 + 1);
                const REAL wa = w[o + j0], wb = w[o + j0 + 1], woa = wout[j0], wob = wout[j0 + 1];
                const REAL ba = w[o + nout + j0], bb = w[o + nout + j0 + 1];
                DISPATCH(code, {
                    for (int64_t p = 0; p < n; p++) {
                        REAL zza = wa * x[p] + ba, zzb = wb * x[p] + bb;
                        REAL hha = FN(act)(K, zza, c), hhb = FN(act)(K, zzb, c);
                        if (NEEDS_Z(K)) { za[p] = zza; zb[p] = zzb; }
                        ha[p] = hha; hb[p] = hhb;
                        pred[p] += woa * hha + wob * hhb;
                    }
                });
            }
        }
        for (int64_t j = j0; j < units; j++) {
            REAL *z = Z(layer, j), *h = H(layer, j);
            const REAL b = w[o + nin * nout + j], wo = fuse_out ? wout[j] : 0;
            if (layer == 0 && nin == 1) {
                const REAL w0 = w[o + j];
                if (fuse_out) {
                    DISPATCH(code, {
                        for (int64_t p = 0; p < n; p++) {
                            REAL zz = w0 * x[p] + b, hh = FN(act)(K, zz, c);
                            if (NEEDS_Z(K)) z[p] = zz;
                            h[p] = hh; pred[p] += wo * hh;
                        }
                    });
                } else {
                    DISPATCH(code, {
                        for (int64_t p = 0; p < n; p++) {
                            REAL zz = w0 * x[p] + b;
                            if (NEEDS_Z(K)) z[p] = zz;
                            h[p] = FN(act)(K, zz, c);
                        }
                    });
                }
                continue;
            }
            for (int64_t p = 0; p < n; p++) z[p] = 0;
            FN(accumulate)(z, layer == 0 ? x : H(layer - 1, 0), layer == 0 ? stride : s->pts,
                           w + o + j, nout, ins, n);
            if (fuse_out) {
                DISPATCH(code, {
                    for (int64_t p = 0; p < n; p++) {
                        REAL zz = z[p] + b, hh = FN(act)(K, zz, c);
                        z[p] = zz; h[p] = hh; pred[p] += wo * hh;
                    }
                });
            } else {
                DISPATCH(code, {
                    for (int64_t p = 0; p < n; p++) {
                        REAL zz = z[p] + b;
                        z[p] = zz; h[p] = FN(act)(K, zz, c);
                    }
                });
            }
        }
    }
    const REAL bout = w[k->off[last] + k->fi[last]];
    for (int64_t p = 0; p < n; p++) pred[p] += bout;
}

/* The gradient into s->grad from dloss/dpred in s->gz row 0, back through the kept layers. */
static inline __attribute__((always_inline)) void FN(backward)(const KernelSpec *k, const REAL *w, const REAL *x, int64_t stride,
                         int64_t n, int64_t units, int code, FN(Scratch) *s, const REAL *c) {
    const int64_t last = k->layers - 1, width = k->fo[0];
    REAL *grad = s->grad;
    const REAL *g0 = s->gz;
    const int64_t ol = k->off[last];
    REAL total = 0;
#pragma omp simd reduction(+:total)
    for (int64_t p = 0; p < n; p++) total += g0[p];
    grad[ol + k->fi[last]] = total;
    const int64_t o0 = k->off[last - 1], nin0 = k->fi[last - 1], nout0 = k->fo[last - 1];
    const int one_layer = last == 1 && nin0 == 1;
    int64_t i0 = 0;
    if (one_layer) {  /* one hidden layer on 1-D inputs, units two at a time: six sums in flight */
        for (; i0 + 1 < units; i0 += 2) {
            const REAL *ha = H(0, i0), *hb = H(0, i0 + 1), *za = Z(0, i0), *zb = Z(0, i0 + 1);
            const REAL wa = w[ol + i0], wb = w[ol + i0 + 1];
            REAL acca = 0, accb = 0, biasa = 0, biasb = 0, wta = 0, wtb = 0;
            DISPATCH(code, {
_Pragma("omp simd reduction(+:acca, accb, biasa, biasb, wta, wtb)")
                for (int64_t p = 0; p < n; p++) {
                    const REAL gp = g0[p], xp = x[p];
                    REAL ga = FN(dact)(K, wa * gp, za[p], ha[p], c);
                    REAL gb = FN(dact)(K, wb * gp, zb[p], hb[p], c);
                    acca += ha[p] * gp; accb += hb[p] * gp;
                    biasa += ga; biasb += gb; wta += ga * xp; wtb += gb * xp;
                }
            });
            grad[ol + i0] = acca;
            grad[ol + i0 + 1] = accb;
            grad[o0 + nout0 + i0] = biasa;
            grad[o0 + nout0 + i0 + 1] = biasb;
            grad[o0 + i0] = wta;
            grad[o0 + i0 + 1] = wtb;
        }
    }
    for (int64_t i = i0; i < units; i++) {  /* output layer (fan_out 1) and the last hidden one */
        const REAL *h = H(last - 1, i), *z = Z(last - 1, i);
        const REAL wi = w[ol + i];
        REAL *gi = ROW(gh, i);
        REAL acc = 0, accb = 0, accw = 0;
        if (one_layer) {  /* one hidden layer on 1-D inputs: its whole gradient in this pass */
            DISPATCH(code, {
_Pragma("omp simd reduction(+:acc, accb, accw)")
                for (int64_t p = 0; p < n; p++) {
                    REAL g = FN(dact)(K, wi * g0[p], z[p], h[p], c);
                    acc += h[p] * g0[p]; accb += g; accw += g * x[p];
                }
            });
            grad[ol + i] = acc;
            grad[o0 + nin0 * nout0 + i] = accb;
            grad[o0 + i] = accw;
            continue;
        }
        DISPATCH(code, {
_Pragma("omp simd reduction(+:acc)")
            for (int64_t p = 0; p < n; p++) {
                acc += h[p] * g0[p];
                gi[p] = FN(dact)(K, wi * g0[p], z[p], h[p], c);
            }
        });
        grad[ol + i] = acc;
    }
    if (one_layer) return;
    for (int64_t layer = last - 1; layer >= 0; layer--) {  /* gh: dloss/dz of this layer */
        const int64_t o = k->off[layer], nin = k->fi[layer], nout = k->fo[layer];
        for (int64_t j = 0; j < units; j++) {
            const REAL *gj = ROW(gh, j);
            REAL acc = 0;
#pragma omp simd reduction(+:acc)
            for (int64_t p = 0; p < n; p++) acc += gj[p];
            grad[o + nin * nout + j] = acc;
        }
        const int64_t ins = layer == 0 ? nin : units;
        for (int64_t i = 0; i < ins; i++) {
            const REAL *xi = layer == 0 ? x + i * stride : H(layer - 1, i);
            for (int64_t j = 0; j < units; j++) {
                const REAL *gj = ROW(gh, j);
                REAL acc = 0;
#pragma omp simd reduction(+:acc)
                for (int64_t p = 0; p < n; p++) acc += xi[p] * gj[p];
                grad[o + i * nout + j] = acc;
            }
        }
        if (layer == 0) break;
        for (int64_t i = 0; i < units; i++) {  /* dloss/dh below, then its dloss/dz */
            REAL *gi = ROW(gz, i);
            for (int64_t p = 0; p < n; p++) gi[p] = 0;
            FN(accumulate)(gi, s->gh, s->pts, w + o + i * nout, 1, units, n);
            const REAL *z = Z(layer - 1, i), *h = H(layer - 1, i);
            DISPATCH(code, {
                for (int64_t p = 0; p < n; p++) gi[p] = FN(dact)(K, gi[p], z[p], h[p], c);
            });
        }
        memcpy(s->gh, s->gz, (size_t)(units * s->pts) * sizeof(REAL));
    }
}

/* L1 and L2 penalties on the weights (not the biases), as hand_derived adds them. */
static inline __attribute__((always_inline)) void FN(penalties)(const KernelSpec *k, const REAL *w, REAL *grad, const REAL *c) {
    const REAL l1 = c[C_L1], l2 = c[C_L2], zero = c[C_ZERO], one = c[C_ONE];
    if (l1 == zero && l2 == zero) return;
    for (int64_t layer = 0; layer < k->layers; layer++) {
        const int64_t o = k->off[layer];
        for (int64_t i = o; i < o + k->fi[layer] * k->fo[layer]; i++) {
            if (l1 != zero) grad[i] += l1 * (w[i] > zero ? one : (w[i] < zero ? -one : w[i] * zero));
            if (l2 != zero) grad[i] += (l2 + l2) * w[i];
        }
    }
}

/* One step's optimizer factors for one bee, by value (so the update loop reloads nothing
 * through pointers that might alias the parameters, and vectorises): cf = the step's
 * coefficients for the bee's row (SGD: -lr, keep, take; Adam: -lr/bc1, sqrt(bc2), decay), hp =
 * the row's hyper-parameters, and the optimizer's flags. */
typedef struct {
    REAL cf0, cf1, cf2, mom, wd, b1c, b2, b2c, eps, half, one;
    int opt, use_wd, use_mom, nesterov;
} FN(Factors);

static inline __attribute__((always_inline)) FN(Factors) FN(factors)(
        const KernelSpec *k, const REAL *hp, const REAL *cf, const REAL *c) {
    FN(Factors) q = {cf[0], cf[1], cf[2], hp[H_MOM], hp[H_WD], hp[H_B1C], hp[H_B2], hp[H_B2C],
                     hp[H_EPS], c[C_HALF], c[C_ONE], (int)k->opt, (int)k->use_wd,
                     (int)k->use_mom, (int)k->nesterov};
    return q;
}

/* One parameter's optimizer update, as optim.SGD / Adam / AdamW update(): its new value, m and
 * v updated in place. Both kernels call it (through step), so they cannot drift apart. */
static inline __attribute__((always_inline)) REAL FN(update)(REAL w, REAL g, REAL *m, REAL *v,
                                                           const FN(Factors) q) {
    if (q.opt == 0) {
        REAL d = q.use_wd ? g + w * q.wd : g;
        if (q.use_mom) {
            *m = *m * q.cf1 + d * q.cf2;
            d = q.nesterov ? d + *m * q.mom : *m;
        }
        return w + d * q.cf0;
    }
    REAL d;
    if (q.opt == 2) {
        if (q.use_wd) w = w * q.cf2;
        d = g;
    } else {
        d = q.use_wd ? g + w * q.wd : g;
    }
    *m = q.b1c < q.half ? *m + q.b1c * (d - *m) : d - (d - *m) * (q.one - q.b1c);  /* lerp */
    *v = *v * q.b2 + d * (d * q.b2c);
    const REAL denom = (REAL)sqrt((double)*v) / q.cf1 + q.eps;
    return w + (*m * q.cf0) / denom;
}

/* One optimizer step of `count` parameters: one bee's, or a lane block's (all its lanes). The
 * flags become literals in one loop per combination, so each loop is branch-free and vectorises
 * (GCC does not unswitch four flags by itself). */
static inline __attribute__((always_inline)) void FN(step)(int64_t count, REAL *restrict w,
        const REAL *restrict g, REAL *restrict m, REAL *restrict v, const FN(Factors) q) {
    FN(Factors) r = q;
#define STEP_CASE(o, wd, mo, ne) \
    if (q.opt == o && q.use_wd == wd && q.use_mom == mo && q.nesterov == ne) { \
        r.opt = o; r.use_wd = wd; r.use_mom = mo; r.nesterov = ne; \
        for (int64_t i = 0; i < count; i++) w[i] = FN(update)(w[i], g[i], m + i, v + i, r); \
        return; \
    }
    STEP_CASE(0, 0, 0, 0) STEP_CASE(0, 0, 1, 0) STEP_CASE(0, 0, 1, 1) STEP_CASE(0, 1, 0, 0)
    STEP_CASE(0, 1, 1, 0) STEP_CASE(0, 1, 1, 1) STEP_CASE(1, 0, 0, 0) STEP_CASE(1, 1, 0, 0)
    STEP_CASE(2, 0, 0, 0) STEP_CASE(2, 1, 0, 0)
#undef STEP_CASE
    for (int64_t i = 0; i < count; i++) w[i] = FN(update)(w[i], g[i], m + i, v + i, q);
}

/* Train bees k->bees[lo..hi-1] through every epoch, recording as loop.ChunkTrainer.run does; a
 * bee whose loss is not finite is frozen from then on. Returns 0, or -1 when scratch memory ran out. */
int FN(train_bees)(const KernelSpec *k, int64_t lo, int64_t hi) {
    const int64_t width = k->fo[0], n = k->n, n_ex = k->n_ex, size = k->size;
    const int64_t n_real = k->n_real, n_rec = k->n_rec;
    const int64_t pts = n > n_ex ? n : n_ex, hidden = k->layers - 1;
    const REAL *c = (const REAL *)k->c, *x = (const REAL *)k->x, *y = (const REAL *)k->y;
    const REAL *tw = (const REAL *)k->tw, *ex = (const REAL *)k->ex;
    const REAL one = c[C_ONE], zero = c[C_ZERO];
    FN(Scratch) sc = {0}, *s = &sc;
    s->pts = pts;
    size_t rows = (size_t)(2 * hidden * width + 2 * width + 1) * (size_t)pts;
    REAL *mem = calloc(rows + 3 * (size_t)size, sizeof(REAL));
    if (!mem) return -1;
    s->zs = mem;
    s->hs = s->zs + hidden * width * pts;
    s->gz = s->hs + hidden * width * pts;
    s->gh = s->gz + width * pts;
    s->pred = s->gh + width * pts;
    s->grad = s->pred + pts;
    s->s1 = s->grad + size;
    s->s2 = s->s1 + size;
    REAL *flat = (REAL *)k->flat, *rec_loss = (REAL *)k->rec_loss, *rec_val = (REAL *)k->rec_val;
    REAL *rec_y = (REAL *)k->rec_ypred, *rec_flat = (REAL *)k->rec_flat;
    const REAL *hyp = (const REAL *)k->hyp, *coef = (const REAL *)k->coef;
    const int64_t epochs = k->epochs, frames = k->frames;
    for (int64_t i = lo; i < hi; i++) {
        const int64_t b = k->bees[i];
        REAL *w = flat + b * size;
        const int64_t units = k->widths[b];
        const int code = (int)k->acts[b];
        const REAL *hp = hyp + k->row[b] * H_COUNT;
        memset(s->grad, 0, 3 * (size_t)size * sizeof(REAL));
        int alive = 1;
        REAL loss = zero, val = zero;
        for (int64_t epoch = 0; epoch <= epochs; epoch++) {
            if (alive) {
                if (epoch > 0)
                    FN(step)(size, w, s->grad, s->s1, s->s2, FN(factors)(
                             k, hp, coef + ((epoch - 1) * k->n_rows + k->row[b]) * 3, c));
                FN(forward)(k, w, x, n, n, units, code, s, c);
                REAL train = 0, held = 0;
                REAL *g0 = s->gz;
                const REAL *pred = s->pred;
                for (int64_t p = n_real; p < n; p++) g0[p] = 0;  /* padding: no gradient */
                LOSS_DISPATCH(k->loss_kind, {
_Pragma("omp simd reduction(+:train, held)")
                    for (int64_t p = 0; p < n_real; p++) {
                        REAL d, pl = FN(loss)(L, pred[p], y[p], &d, c);
                        train += pl * tw[p];
                        held += pl * (one - tw[p]);
                        g0[p] = d * tw[p];
                    }
                });
                loss = train / c[C_NTRAIN];
                val = held / c[C_NVAL];
                alive = isfinite(loss);
                if (epoch < epochs && alive) {
                    FN(backward)(k, w, x, n, n, units, code, s, c);
                    FN(penalties)(k, w, s->grad, c);
                }
            }
            rec_loss[b * (epochs + 1) + epoch] = loss;
            if (rec_val) rec_val[b * (epochs + 1) + epoch] = val;
            const int64_t f = k->frame_of[epoch];
            if (f < 0) continue;
            if (rec_y) {
                if (!k->same_eval) FN(forward)(k, w, ex, n_ex, n_ex, units, code, s, c);
                memcpy(rec_y + (b * frames + f) * n_rec, s->pred, (size_t)n_rec * sizeof(REAL));
            }
            if (rec_flat) memcpy(rec_flat + (b * frames + f) * size, w, (size_t)size * sizeof(REAL));
        }
    }
    free(mem);
    return 0;
}

#undef Z
#undef H
#undef ROW

/* The lane kernel's loops are written one lane per element of a 64-byte vector: GCC would
 * otherwise split each into 32-byte halves on x86 (its default preference, which the per-bee
 * kernel's loops over points are faster with). */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#pragma GCC push_options
#pragma GCC target("prefer-vector-width=512")
#endif
#include "kernel_lanes.h"
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#pragma GCC pop_options
#endif
