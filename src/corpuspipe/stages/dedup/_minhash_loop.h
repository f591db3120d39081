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
