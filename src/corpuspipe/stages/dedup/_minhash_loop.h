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
