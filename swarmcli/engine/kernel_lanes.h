/* One dtype's lane kernel, included at the end of kernel_body.h (once per dtype). A block of
 * LANES bees of one cell shape (one hidden layer, the same width and activation) trains side by
 * side, one bee per lane of a 64-byte vector: every operation is the per-bee kernel's, on LANES
 * bees at once. Why: the per-bee kernel vectorises over the points, so each gradient ends in a
 * sum across a vector and about a hundred points leave vectors part-filled; here nothing is
 * summed across lanes, each point is one step of a loop, and a unit's gradient sums stay in
 * registers through all the points. Sums run in another order than the per-bee kernel's, so the
 * two agree to rounding (the tests hold both to the torch loop). */

#define LANES ((int64_t)(64 / sizeof(REAL)))
#define VEC FN(vec)
typedef REAL VEC __attribute__((vector_size(64)));
typedef union { VEC v; REAL a[64 / sizeof(REAL)]; } FN(lanes);
#define EACH_LANE _Pragma("omp simd") for (int64_t l = 0; l < LANES; l++)

static inline __attribute__((always_inline)) VEC FN(act_lanes)(int K, VEC z, const REAL *c) {
    FN(lanes) in = {z}, out;
    EACH_LANE out.a[l] = FN(act)(K, in.a[l], c);
    return out.v;
}

static inline __attribute__((always_inline)) VEC FN(dact_lanes)(int K, VEC g, VEC z, VEC h,
                                                               const REAL *c) {
    FN(lanes) gg = {g}, zz = {z}, hh = {h}, out;
    EACH_LANE out.a[l] = FN(dact)(K, gg.a[l], zz.a[l], hh.a[l], c);
    return out.v;
}

typedef struct {
    VEC *p, *grad, *m, *v;   /* [size]: parameters, gradient, optimizer state */
    VEC *keep;               /* [size]: the parameters before a step, while a lane is frozen */
    VEC *hs, *zs, *gp, *pr;  /* [width, n] h and z, [n] dloss/dpred, [points] predictions */
    int64_t n;               /* points whose h and z are kept: the training points */
} FN(Block);

/* Unit j's z at point p (inputs x [nin, stride], weights w [nin, width], biases b). */
static inline __attribute__((always_inline)) VEC FN(z_lanes)(
        const VEC *w, const VEC *b, const REAL *x, int64_t width, int64_t stride, int64_t nin,
        int64_t j, int64_t p) {
    if (nin == 1) return w[j] * x[p] + b[j];
    VEC z = w[j] * x[p];
    for (int64_t i = 1; i < nin; i++) z += w[i * width + j] * x[i * stride + p];
    return z + b[j];
}

/* pr[:n] at inputs x [nin, stride], units two at a time (two sums in flight); with keep, also
 * each unit's h (and z where the activation's derivative reads it) for the backward pass. nin
 * is a literal where the caller can give one. */
static inline __attribute__((always_inline)) void FN(forward_lanes)(
        const KernelSpec *k, FN(Block) *s, const REAL *restrict x, int64_t stride, int64_t n,
        int64_t units, int K, int64_t nin, int keep, const REAL *restrict c) {
    const int64_t width = k->fo[0], o = k->off[0], ol = k->off[1], hn = s->n;
    const VEC *w = s->p + o, *b = w + nin * width, *wo = s->p + ol;
    VEC *restrict hs = s->hs, *restrict zs = s->zs, *restrict out = s->pr;
    const VEC bout = wo[width];
    for (int64_t p = 0; p < n; p++) {
        VEC pa = bout, pb = {0};
        for (int64_t j = 0; j < units; j += 2) {
            const int pair = j + 1 < units;
            const VEC za = FN(z_lanes)(w, b, x, width, stride, nin, j, p);
            const VEC zb = pair ? FN(z_lanes)(w, b, x, width, stride, nin, j + 1, p) : za;
            const VEC ha = FN(act_lanes)(K, za, c), hb = FN(act_lanes)(K, zb, c);
            pa += wo[j] * ha;
            if (pair) pb += wo[j + 1] * hb;
            if (!keep) continue;
            hs[j * hn + p] = ha;
            if (pair) hs[(j + 1) * hn + p] = hb;
            if (!NEEDS_Z(K)) continue;
            zs[j * hn + p] = za;
            if (pair) zs[(j + 1) * hn + p] = zb;
        }
        out[p] = pa + pb;
    }
}

/* The gradient into s->grad from dloss/dpred in s->gp, units two at a time; nin is a literal
 * where the caller can give one, so the input sums stay in registers. */
static inline __attribute__((always_inline)) void FN(backward_lanes)(
        const KernelSpec *k, FN(Block) *s, const REAL *x, int64_t stride, int64_t units, int K,
        int64_t nin, const REAL *c) {
    const int64_t width = k->fo[0], o = k->off[0], ol = k->off[1], n = s->n;
    const VEC *wo = s->p + ol, *gp = s->gp;
    VEC *g = s->grad, total = {0};
    for (int64_t p = 0; p < n; p++) total += gp[p];
    g[ol + width] = total;
    for (int64_t j = 0; j < units; j += 2) {
        const int64_t jb = j + 1 < units ? j + 1 : j;  /* an odd last unit pairs with itself */
        const VEC *ha = s->hs + j * n, *hb = s->hs + jb * n;
        const VEC *za = s->zs + j * n, *zb = s->zs + jb * n;
        const VEC wa = wo[j], wb = wo[jb], zero = {0};
        VEC acca = zero, accb = zero, biasa = zero, biasb = zero, wta[4], wtb[4];
        for (int64_t i = 0; i < nin; i++) wta[i] = wtb[i] = zero;
        for (int64_t p = 0; p < n; p++) {
            const VEC gq = gp[p];
            const VEC ga = FN(dact_lanes)(K, wa * gq, NEEDS_Z(K) ? za[p] : zero, ha[p], c);
            const VEC gb = FN(dact_lanes)(K, wb * gq, NEEDS_Z(K) ? zb[p] : zero, hb[p], c);
            acca += ha[p] * gq; accb += hb[p] * gq;
            biasa += ga; biasb += gb;
            for (int64_t i = 0; i < nin; i++) {
                wta[i] += ga * x[i * stride + p];
                wtb[i] += gb * x[i * stride + p];
            }
        }
        g[ol + j] = acca; g[o + nin * width + j] = biasa;
        for (int64_t i = 0; i < nin; i++) g[o + i * width + j] = wta[i];
        if (jb != j) {
            g[ol + jb] = accb; g[o + nin * width + jb] = biasb;
            for (int64_t i = 0; i < nin; i++) g[o + i * width + jb] = wtb[i];
        }
    }
}

/* Per-point losses into train/held sums and dloss/dpred into s->gp, as train_bees does. */
static inline __attribute__((always_inline)) void FN(loss_lanes)(
        const KernelSpec *k, FN(Block) *s, const REAL *y, const REAL *tw, REAL *train,
        REAL *held, const REAL *c) {
    const REAL one = c[C_ONE];
    FN(lanes) tr = {{0}}, he = {{0}};
    LOSS_DISPATCH(k->loss_kind, {
        for (int64_t p = 0; p < s->n; p++) {
            FN(lanes) q = {s->pr[p]}, d;
            const REAL yp = y[p], t = tw[p];
            EACH_LANE {
                REAL dd, pl = FN(loss)(L, q.a[l], yp, &dd, c);
                tr.a[l] += pl * t;
                he.a[l] += pl * (one - t);
                d.a[l] = dd * t;
            }
            s->gp[p] = d.v;
        }
    });
    for (int64_t l = 0; l < LANES; l++) {
        train[l] = tr.a[l];
        held[l] = he.a[l];
    }
}

/* One optimizer step of every lane, then the lanes no longer alive get their parameters back
 * (a frozen bee keeps them). The block's bees share one hyper-parameter row. */
static inline __attribute__((always_inline)) void FN(step_lanes)(
        const KernelSpec *k, FN(Block) *s, int64_t row, const int *alive, int64_t epoch,
        const REAL *c) {
    const FN(Factors) q = FN(factors)(k, (const REAL *)k->hyp + row * H_COUNT,
                                      (const REAL *)k->coef + ((epoch - 1) * k->n_rows + row) * 3,
                                      c);
    REAL *p = (REAL *)s->p, *keep = (REAL *)s->keep;
    int all = 1;
    for (int64_t l = 0; l < LANES; l++) all &= alive[l];
    if (!all) memcpy(keep, p, (size_t)k->size * sizeof(VEC));
    FN(step)(k->size * LANES, p, (REAL *)s->grad, (REAL *)s->m, (REAL *)s->v, q);
    if (all) return;
    for (int64_t i = 0; i < k->size * LANES; i++)
        if (!alive[i % LANES]) p[i] = keep[i];
}

static void FN(penalties_lanes)(const KernelSpec *k, FN(Block) *s, const REAL *c) {
    const REAL l1 = c[C_L1], l2 = c[C_L2], zero = c[C_ZERO], one = c[C_ONE];
    if (l1 == zero && l2 == zero) return;
    for (int64_t layer = 0; layer < k->layers; layer++) {
        const int64_t o = k->off[layer];
        for (int64_t i = o; i < o + k->fi[layer] * k->fo[layer]; i++) {
            FN(lanes) w = {s->p[i]}, g = {s->grad[i]};
            EACH_LANE {
                if (l1 != zero) g.a[l] += l1 * (w.a[l] > zero ? one : (w.a[l] < zero ? -one : w.a[l] * zero));
                if (l2 != zero) g.a[l] += (l2 + l2) * w.a[l];
            }
            s->grad[i] = g.v;
        }
    }
}

/* One epoch's forward, loss and (unless it is the last) backward pass of a block. */
static inline __attribute__((always_inline)) void FN(epoch_lanes)(
        const KernelSpec *k, FN(Block) *s, int64_t units, int K, int grad, REAL *train,
        REAL *held, const REAL *c) {
    const REAL *x = (const REAL *)k->x;
    if (k->fi[0] == 1) FN(forward_lanes)(k, s, x, k->n, s->n, units, K, 1, 1, c);
    else FN(forward_lanes)(k, s, x, k->n, s->n, units, K, k->fi[0], 1, c);
    FN(loss_lanes)(k, s, (const REAL *)k->y, (const REAL *)k->tw, train, held, c);
    if (!grad) return;
    if (k->fi[0] == 1) FN(backward_lanes)(k, s, x, k->n, units, K, 1, c);
    else FN(backward_lanes)(k, s, x, k->n, units, K, k->fi[0], c);
    FN(penalties_lanes)(k, s, c);
}

/* Train blocks lo..hi-1 of k->blocks ([blocks, LANES] bee indices; -1 marks an empty lane,
 * which trains a copy of lane 0 and is never written back), recording as train_bees does. */
int FN(train_lanes)(const KernelSpec *k, int64_t lo, int64_t hi) {
    const int64_t width = k->fo[0], n = k->n_real, size = k->size;
    const int64_t pts = n > k->n_ex ? n : k->n_ex, epochs = k->epochs, frames = k->frames;
    const REAL *c = (const REAL *)k->c;
    FN(Block) sc, *s = &sc;
    const size_t count = 5 * (size_t)size + (2 * (size_t)width + 1) * (size_t)n + (size_t)pts;
    VEC *mem = aligned_alloc(64, count * sizeof(VEC));
    if (!mem) return -1;
    s->p = mem; s->grad = s->p + size; s->m = s->grad + size; s->v = s->m + size;
    s->keep = s->v + size; s->hs = s->keep + size; s->zs = s->hs + width * n;
    s->gp = s->zs + width * n; s->pr = s->gp + n;
    s->n = n;
    REAL *flat = (REAL *)k->flat, *rec_loss = (REAL *)k->rec_loss, *rec_val = (REAL *)k->rec_val;
    REAL *rec_y = (REAL *)k->rec_ypred, *rec_flat = (REAL *)k->rec_flat;
    for (int64_t blk = lo; blk < hi; blk++) {
        const int64_t *bee = k->blocks + blk * LANES;
        const int64_t units = k->widths[bee[0]];
        const int code = (int)k->acts[bee[0]];
        if (!LANE_ACTIVATION(code)) {
            free(mem);
            return -2;
        }
        int alive[64 / sizeof(REAL)];
        REAL loss[64 / sizeof(REAL)], val[64 / sizeof(REAL)];
        for (int64_t l = 0; l < LANES; l++) {
            const REAL *w = flat + (bee[l] < 0 ? bee[0] : bee[l]) * size;
            for (int64_t i = 0; i < size; i++) ((REAL *)(s->p + i))[l] = w[i];
            alive[l] = bee[l] >= 0;
            loss[l] = val[l] = c[C_ZERO];
        }
        memset(s->grad, 0, 3 * (size_t)size * sizeof(VEC));
        for (int64_t epoch = 0; epoch <= epochs; epoch++) {
            int any = 0;
            for (int64_t l = 0; l < LANES; l++) any |= alive[l];
            if (any) {
                if (epoch > 0) FN(step_lanes)(k, s, k->row[bee[0]], alive, epoch, c);
                REAL train[64 / sizeof(REAL)] = {0}, held[64 / sizeof(REAL)] = {0};
                LANE_DISPATCH(code, FN(epoch_lanes)(k, s, units, K, epoch < epochs, train, held, c););
                for (int64_t l = 0; l < LANES; l++) {
                    if (!alive[l]) continue;
                    loss[l] = train[l] / c[C_NTRAIN];
                    val[l] = held[l] / c[C_NVAL];
                    alive[l] = isfinite(loss[l]);
                }
            }
            const int64_t f = k->frame_of[epoch];
            if (f >= 0 && rec_y && !k->same_eval)
                LANE_DISPATCH(code, FN(forward_lanes)(k, s, (const REAL *)k->ex, k->n_ex, k->n_rec,
                                                 units, K, k->fi[0], 0, c););
            for (int64_t l = 0; l < LANES && bee[l] >= 0; l++) {
                const int64_t b = bee[l];
                rec_loss[b * (epochs + 1) + epoch] = loss[l];
                if (rec_val) rec_val[b * (epochs + 1) + epoch] = val[l];
                if (f < 0) continue;
                if (rec_y)
                    for (int64_t p = 0; p < k->n_rec; p++)
                        rec_y[(b * frames + f) * k->n_rec + p] = ((REAL *)(s->pr + p))[l];
                if (rec_flat)
                    for (int64_t i = 0; i < size; i++)
                        rec_flat[(b * frames + f) * size + i] = ((REAL *)(s->p + i))[l];
            }
        }
        for (int64_t l = 0; l < LANES && bee[l] >= 0; l++)
            for (int64_t i = 0; i < size; i++) flat[bee[l] * size + i] = ((REAL *)(s->p + i))[l];
    }
    free(mem);
    return 0;
}

#undef EACH_LANE
#undef VEC
#undef LANES
