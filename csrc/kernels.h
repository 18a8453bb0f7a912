// The vectorised kernels of softmax.h as out-of-line functions (CPU-dispatched, see kernels.cc).
#pragma once

#include <cstdint>

namespace azero {

struct LegalScan {
  int32_t count;  // legal actions
  float max;      // largest legal logit (-inf if none, or all -inf)
  bool bad;       // a legal logit is NaN or +inf
};

LegalScan scan_legal_row(const float* logits, const uint8_t* mask, int32_t num_actions);
void exp_shifted_row(const float* logits, const uint8_t* mask, int32_t num_actions, float max,
                     float* out);
void normalise_row(float* values, int32_t n);
int32_t argmax_prior_row(const float* prior, const int32_t* action, int32_t n);

}  // namespace azero
