// Masked softmax kernels for expanding nodes: written as plain loops without branches so that the
// compiler vectorises them at -O3 on any target (no intrinsics, no -ffast-math).
//
// exp_nonpositive is a Cephes-style expf (Cody-Waite reduction + degree-5 polynomial, max error
// ~2 ulp) for the arguments a softmax needs, -87 <= x <= 0; elsewhere (and for NaN) it returns 0.
// tests/reference_mcts.py reproduces it bit for bit in float32 numpy arithmetic.
#pragma once

#include <cstdint>
#include <algorithm>
#include <cstring>

#include "kernels.h"

namespace azero {

inline float exp_nonpositive(float x) {
  // Outside [-87, 0] (or NaN) the result is 0. Selections are integer bit masks: a float ternary
  // (which may trap on NaN under the default -ftrapping-math) would keep the loops scalar.
  const uint32_t inside = 0u - static_cast<uint32_t>((x >= -87.0f) & (x <= 0.0f));
  uint32_t x_bits;
  std::memcpy(&x_bits, &x, sizeof x_bits);
  const uint32_t clamped_bits = (x_bits & inside) | (0xc2ae0000u & ~inside);  // else -87.0f
  float xc;
  std::memcpy(&xc, &clamped_bits, sizeof xc);
  const float t = xc * 1.44269504088896341f;              // log2(e)
  const float n = (t + 12582912.0f) - 12582912.0f;        // round to nearest (1.5 * 2^23 trick)
  float r = xc - n * 0.693359375f;                        // xc - n * ln2, in two parts
  r = r - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = (p * (r * r) + r) + 1.0f;
  const uint32_t scale_bits = (static_cast<uint32_t>(static_cast<int32_t>(n) + 127) << 23) & inside;
  float scale;                                            // 2^n, n in [-126, 0], or 0
  std::memcpy(&scale, &scale_bits, sizeof scale);
  return p * scale;
}

// Order-preserving map of a float's bits to int32 (an involution), so max reductions over floats
// can run as integer max reductions, which vectorise without -ffast-math.
inline int32_t float_order_key(uint32_t bits) {
  return static_cast<int32_t>(bits ^ (static_cast<uint32_t>(static_cast<int32_t>(bits) >> 31) & 0x7fffffffu));
}

inline float key_to_float(int32_t key) {
  const uint32_t bits = static_cast<uint32_t>(float_order_key(static_cast<uint32_t>(key)));
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

// Over a dense row: mask[a] != 0 marks legal actions (mask == nullptr: all legal).
template <bool kMasked>
inline LegalScan scan_legal_impl(const float* logits, const uint8_t* mask, int32_t num_actions) {
  int32_t key_max = INT32_MIN, count = 0;
  uint32_t bad = 0;
  for (int32_t a = 0; a < num_actions; ++a) {
    uint32_t bits;
    std::memcpy(&bits, logits + a, sizeof bits);
    const int32_t legal = kMasked ? (mask[a] != 0) : 1;
    const uint32_t select = 0u - static_cast<uint32_t>(legal);  // all ones where legal
    const int32_t key = static_cast<int32_t>((static_cast<uint32_t>(float_order_key(bits)) & select) |
                                             (0x80000000u & ~select));  // else INT32_MIN
    key_max = key > key_max ? key : key_max;
    const uint32_t magnitude = bits & 0x7fffffffu;
    bad |= static_cast<uint32_t>(legal) & (static_cast<uint32_t>(magnitude > 0x7f800000u) |
                                           static_cast<uint32_t>(bits == 0x7f800000u));
    count += legal;
  }
  return LegalScan{count, count ? key_to_float(key_max) : -__builtin_huge_valf(), bad != 0};
}

inline LegalScan scan_legal(const float* logits, const uint8_t* mask, int32_t num_actions) {
  return mask ? scan_legal_impl<true>(logits, mask, num_actions)
              : scan_legal_impl<false>(logits, nullptr, num_actions);
}

// exp(logits[a] - max) for every a of a dense row into out[a] (0 where mask[a] == 0; mask ==
// nullptr: all legal). Every operation runs unconditionally and the mask only selects between
// computed values: a conditional float op would keep the loop scalar (-ftrapping-math).
inline void exp_shifted(const float* logits, const uint8_t* mask, int32_t num_actions, float max,
                        float* out) {
  if (mask == nullptr) {
    for (int32_t a = 0; a < num_actions; ++a) out[a] = exp_nonpositive(logits[a] - max);
    return;
  }
  for (int32_t a = 0; a < num_actions; ++a) {
    const float e = exp_nonpositive(logits[a] - max);
    uint32_t bits;
    std::memcpy(&bits, &e, sizeof bits);
    bits &= 0u - static_cast<uint32_t>(mask[a] != 0);
    std::memcpy(out + a, &bits, sizeof bits);
  }
}

// Sum in four interleaved double lanes (breaks the add latency chain), then normalise in place.
inline void normalise(float* values, int32_t n) {
  double lane[4] = {0.0, 0.0, 0.0, 0.0};
  int32_t i = 0;
  for (; i + 4 <= n; i += 4) {
    lane[0] += values[i];
    lane[1] += values[i + 1];
    lane[2] += values[i + 2];
    lane[3] += values[i + 3];
  }
  for (int32_t j = 0; i < n; ++i, ++j) lane[j] += values[i];
  const float inv = static_cast<float>(1.0 / ((lane[0] + lane[1]) + (lane[2] + lane[3])));
  for (int32_t k = 0; k < n; ++k) values[k] *= inv;
}

// Index of the highest prior (>= 0) among n edges, the lowest action on ties. Non-negative floats
// order like their bit patterns, so all three passes are integer reductions (vectorised).
inline int32_t argmax_prior(const float* prior, const int32_t* action, int32_t n) {
  int32_t top = INT32_MIN;
  for (int32_t i = 0; i < n; ++i) {
    int32_t bits;
    std::memcpy(&bits, prior + i, sizeof bits);
    top = bits > top ? bits : top;
  }
  int32_t lowest = INT32_MAX;
  for (int32_t i = 0; i < n; ++i) {
    int32_t bits;
    std::memcpy(&bits, prior + i, sizeof bits);
    const uint32_t hit = 0u - static_cast<uint32_t>(bits == top);
    const int32_t a = static_cast<int32_t>((static_cast<uint32_t>(action[i]) & hit) | (0x7fffffffu & ~hit));
    lowest = a < lowest ? a : lowest;
  }
  int32_t i = 0;
  while (action[i] != lowest) ++i;
  return i;
}

}  // namespace azero
