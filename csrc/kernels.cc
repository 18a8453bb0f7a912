// Out-of-line entry points of the softmax.h kernels, compiled twice on x86-64 Linux (AVX2 and
// baseline SSE2) and picked at load time by the CPU (GCC target_clones). AVX2 here does not
// enable FMA, so both clones give the same bits.
#include "kernels.h"

#include "softmax.h"

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define AZERO_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define AZERO_CLONES
#endif

namespace azero {

AZERO_CLONES LegalScan scan_legal_row(const float* logits, const uint8_t* mask, int32_t num_actions) {
  return scan_legal(logits, mask, num_actions);
}

AZERO_CLONES void exp_shifted_row(const float* logits, const uint8_t* mask, int32_t num_actions,
                                  float max, float* out) {
  exp_shifted(logits, mask, num_actions, max, out);
}

AZERO_CLONES void normalise_row(float* values, int32_t n) { normalise(values, n); }

AZERO_CLONES int32_t argmax_prior_row(const float* prior, const int32_t* action, int32_t n) {
  return argmax_prior(prior, action, n);
}

}  // namespace azero
