/* The MinHash loop of _kernels.pyx, in C for one reason: target_clones.  GCC compiles it twice
   (AVX2 and the x86-64 baseline) and picks one at load time, so the extension runs on any x86-64
   machine and still gets 8 lanes where the CPU has them (measured on 400k section shingles x 128
   permutations: 44 ns a shingle at the baseline, 9 with AVX2; numpy's matrix: ~140).
   Integer arithmetic only: every clone gives the same bits. */
#include <stdint.h>

#if defined(__GNUC__) && defined(__x86_64__) && !defined(__clang__)
__attribute__((target_clones("avx2", "default")))
#endif
static void cp_minhash_rows(const uint64_t *restrict x, const int64_t *restrict starts, int64_t n_sets,
                            const uint32_t *restrict a, const uint32_t *restrict b, int64_t n_perm,
                            uint32_t *restrict acc, uint32_t *restrict out) {
    for (int64_t i = 0; i < n_sets; i++) {
        for (int64_t p = 0; p < n_perm; p++) acc[p] = 0xFFFFFFFFu;
        for (int64_t k = starts[i]; k < starts[i + 1]; k++) {
            uint32_t v = (uint32_t)x[k];
            for (int64_t p = 0; p < n_perm; p++) {
                uint32_t h = a[p] * v + b[p];
                acc[p] = h < acc[p] ? h : acc[p];
            }
        }
        for (int64_t p = 0; p < n_perm; p++) out[i * n_perm + p] = acc[p];
    }
}

/* Sort band rows (key, entity hash, group hash: three uint64 each) in place by (key, entity hash):
   quicksort (median-of-three, Hoare partition, recursion on the smaller side) down to insertion
   sort under 17 rows.  Rows equal in both keys are the same entity in one bucket (then the same
   group too), which the caller keeps once, so the order among them never shows.  Replaces two
   stable numpy argsorts of a partition (~0.46 s per 10^6 rows: the whole candidates phase). */
typedef struct { uint64_t key, eh, gh, loc; } cp_band_row;

static inline int cp_row_less(const cp_band_row *a, const cp_band_row *b) {
    return a->key < b->key || (a->key == b->key && a->eh < b->eh);
}

static void cp_sort_band_rows(cp_band_row *a, int64_t n) {
    while (n > 16) {
        cp_band_row x = a[0], y = a[n / 2], z = a[n - 1], p;
        if (cp_row_less(&x, &y)) p = cp_row_less(&y, &z) ? y : (cp_row_less(&x, &z) ? z : x);
        else p = cp_row_less(&x, &z) ? x : (cp_row_less(&y, &z) ? z : y);
        int64_t i = -1, j = n;
        for (;;) {
            do { i++; } while (cp_row_less(&a[i], &p));
            do { j--; } while (cp_row_less(&p, &a[j]));
            if (i >= j) break;
            cp_band_row t = a[i]; a[i] = a[j]; a[j] = t;
        }
        /* a[0..j] <= p <= a[j+1..n-1], both sides non-empty (p is the median of three rows) */
        if (j + 1 < n - j - 1) { cp_sort_band_rows(a, j + 1); a += j + 1; n -= j + 1; }
        else { cp_sort_band_rows(a + j + 1, n - j - 1); n = j + 1; }
    }
    for (int64_t i = 1; i < n; i++) {
        cp_band_row v = a[i];
        int64_t k = i - 1;
        while (k >= 0 && cp_row_less(&v, &a[k])) { a[k + 1] = a[k]; k--; }
        a[k + 1] = v;
    }
}

/* Character n-gram MinHash of many texts in one pass (the dedup collect's signatures): per text,
   its code points through `table` (0xFFFFFFFF = stripped), the kept values + 1 hashed as a
   polynomial (`base`) over every window of n (over the whole text when shorter), splitmix64-mixed
   after adding `seed_add` -- the shingle hashes of shingles.shingle_batch --, made unique by an
   open-addressing set (the hashes are already mixed: their low bits index it), and the unique
   ones MinHashed by cp_minhash_rows.  A text with fewer than max(min_len, 1) kept code points gets
   no shingles and the empty signature (all 0xFFFFFFFF).  The numbers are those of shingle_batch
   + the MinHash loop (a set's MinHash and size do not depend on its order); no sort is needed,
   which the numpy path spent one np.sort call per text on.
   Scratch: v and u hold max_len values, set holds set_cap (a power of two >= 2 * max_len, >= 16). */
static int64_t cp_char_minhash(const uint32_t *raw, const int64_t *raw_len, int64_t n_texts,
                               const uint32_t *table, int64_t n, uint64_t base, uint64_t seed_add,
                               int64_t min_len, const uint32_t *a, const uint32_t *b, int64_t n_perm,
                               uint64_t *v, uint64_t *u, uint64_t *set, uint32_t *acc,
                               uint32_t *sig, int64_t *counts, int64_t *lengths) {
    int64_t pos = 0, total = 0;
    for (int64_t t = 0; t < n_texts; t++) {
        int64_t L = 0;
        for (int64_t i = pos; i < pos + raw_len[t]; i++) {
            uint32_t c = raw[i];
            if (c < 0x110000u) {
                c = table[c];
                if (c != 0xFFFFFFFFu) v[L++] = (uint64_t)c + 1;
            }
        }
        pos += raw_len[t];
        lengths[t] = L;
        uint32_t *row = sig + t * n_perm;
        if (L == 0 || L < min_len) {
            counts[t] = 0;
            for (int64_t p = 0; p < n_perm; p++) row[p] = 0xFFFFFFFFu;
            continue;
        }
        int64_t m = L >= n ? L - n + 1 : 1, k = L >= n ? n : L;
        uint64_t cap = 16;
        while (cap < (uint64_t)(2 * m)) cap <<= 1;
        uint64_t mask = cap - 1;
        for (uint64_t i = 0; i < cap; i++) set[i] = 0;
        int64_t nu = 0;
        int has_zero = 0;
        for (int64_t i = 0; i < m; i++) {
            uint64_t h = v[i];
            for (int64_t j = 1; j < k; j++) h = h * base + v[i + j];
            uint64_t x = h + seed_add;
            x ^= x >> 30;
            x *= 0xBF58476D1CE4E5B9ull;
            x ^= x >> 27;
            x *= 0x94D049BB133111EBull;
            x ^= x >> 31;
            if (x == 0) {  /* 0 marks a free slot: the value 0 is kept apart */
                if (!has_zero) { has_zero = 1; u[nu++] = 0; }
                continue;
            }
            uint64_t at = x & mask;
            while (set[at] != 0 && set[at] != x) at = (at + 1) & mask;
            if (set[at] == 0) { set[at] = x; u[nu++] = x; }
        }
        counts[t] = nu;
        total += nu;
        int64_t starts[2] = {0, nu};
        cp_minhash_rows(u, starts, 1, a, b, n_perm, acc, row);
    }
    return total;
}

/* A stable LSD radix argsort of n uint64 keys (11-bit digits; a digit equal in every key is
   skipped): order[i] = the index of the i-th smallest key, sorted[i] = that key.  For the quality
   stage's n-gram keys (~32k per call): numpy's argsort took 1.4 ms for 32k such keys, this ~0.3.
   Scratch: k2 and i2 hold n values each. */
static void cp_argsort_u64(const uint64_t *keys, int64_t n, int64_t *order, uint64_t *sorted,
                           uint64_t *k2, int64_t *i2) {
    if (n <= 0) return;
    uint64_t diff = 0, k0 = keys[0];
    for (int64_t i = 0; i < n; i++) { diff |= keys[i] ^ k0; sorted[i] = keys[i]; order[i] = i; }
    uint64_t *ks = sorted, *kd = k2;
    int64_t *is = order, *id = i2;
    int64_t count[2048];
    for (int shift = 0; shift < 64; shift += 11) {
        if (((diff >> shift) & 0x7FF) == 0) continue;
        for (int d = 0; d < 2048; d++) count[d] = 0;
        for (int64_t i = 0; i < n; i++) count[(ks[i] >> shift) & 0x7FF]++;
        int64_t sum = 0;
        for (int d = 0; d < 2048; d++) { int64_t c = count[d]; count[d] = sum; sum += c; }
        for (int64_t i = 0; i < n; i++) {
            int64_t p = count[(ks[i] >> shift) & 0x7FF]++;
            kd[p] = ks[i];
            id[p] = is[i];
        }
        uint64_t *tk = ks; ks = kd; kd = tk;
        int64_t *ti = is; is = id; id = ti;
    }
    if (ks != sorted) for (int64_t i = 0; i < n; i++) { sorted[i] = ks[i]; order[i] = is[i]; }
}
