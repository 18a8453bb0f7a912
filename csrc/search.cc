#include "search.h"

#include "kernels.h"
#include "softmax.h"

#include <algorithm>
#include <cfloat>
#include <climits>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

namespace azero {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kLowLogit = -1e9;        // mctx seq_halving.score_considered
constexpr double kMinDenominator = 1e-8;  // mctx qtransforms epsilon

std::string row_msg(int32_t b) { return "row " + std::to_string(b); }

// Keeps the highest score; ties go to the lowest action (an argmax over actions in order).
struct ArgMax {
  double score = -kInf;
  int32_t action = INT_MAX;
  int32_t edge = -1;
  void offer(double s, int32_t a, int32_t e) {
    if (edge < 0 || s > score || (s == score && a < action)) {
      score = s;
      action = a;
      edge = e;
    }
  }
};

}  // namespace

Search::Search(int32_t batch_size, int32_t num_actions, const SearchParams& params)
    : trees_(batch_size, num_actions, 64, 64 * static_cast<int64_t>(std::min(num_actions, 64))),
      params_(params) {
  if (params_.algorithm != Algorithm::kPuct && params_.algorithm != Algorithm::kGumbel) {
    throw std::invalid_argument("unknown algorithm");
  }
  if (!(params_.pb_c_base > 0)) throw std::invalid_argument("pb_c_base must be positive");
  if (!(params_.pb_c_init >= 0)) throw std::invalid_argument("pb_c_init must be >= 0");
  if (params_.fixed_value_bounds && !(params_.value_max > params_.value_min)) {
    throw std::invalid_argument("value bounds must satisfy min < max");
  }
  if (params_.tree_min_max && params_.algorithm != Algorithm::kPuct) {
    throw std::invalid_argument("tree_min_max normalises PUCT's Q; Gumbel rescales its completed Q "
                                "per node (mctx)");
  }
  if (params_.max_num_considered_actions < 1) {
    throw std::invalid_argument("max_num_considered_actions must be >= 1");
  }
  if (!(params_.c_visit >= 0) || !(params_.c_scale >= 0)) {
    throw std::invalid_argument("c_visit and c_scale must be >= 0");
  }
  if (!(params_.forced_playouts_k >= 0)) throw std::invalid_argument("forced_playouts_k must be >= 0");
  if (params_.forced_playouts_k > 0 && params_.algorithm != Algorithm::kPuct) {
    throw std::invalid_argument("forced playouts are for PUCT; Gumbel's improved policy target "
                                "needs no pruning");
  }
  if (params_.leaves_per_step < 1) throw std::invalid_argument("leaves_per_step must be >= 1");
  if (!std::isfinite(params_.virtual_loss)) throw std::invalid_argument("virtual_loss must be finite");
  if (!std::isfinite(params_.default_discount)) throw std::invalid_argument("discount must be finite");
  use_virtual_loss_ = params_.leaves_per_step > 1;
  const size_t B = batch_size, A = num_actions;
  run_active_.assign(B, 0);
  sims_target_.assign(B, 0);
  sims_started_.assign(B, 0);
  num_considered_.assign(B, 0);
  root_noisy_.assign(B, 0);
  forced_.assign(B, 0);
  considered_offset_.assign(B, 0);
  root_base_visits_.assign(B * A, 0);
  root_score_.assign(B * A, 0.0);
  root_clean_prior_.assign(B * A, 0.0f);
  q_scratch_.assign(A, 0.0);
  w_scratch_.assign(A, 0.0);
  edges_needed_.assign(B, 0);
  seen_stamp_.assign(A, 0);
  sort_scratch_.reserve(A);
  exp_scratch_.assign(A, 0.0f);
  block_action_.assign(A + 1, 0);
  block_prior_.assign(A + 1, 0.0f);
  tree_q_min_.assign(B, 0.0);
  tree_q_max_.assign(B, 0.0);
  pending_.reserve(B * params_.leaves_per_step);
}

// ---------------------------------------------------------------------------------------------
// Tree lifetime

void Search::reset(const int32_t* rows, int32_t count) {
  if (step_in_progress()) throw std::logic_error("reset during a simulation step (call abort first)");
  const int32_t B = batch_size();
  if (rows == nullptr) {
    for (int32_t b = 0; b < B; ++b) {
      trees_.clear(b);
      run_active_[b] = 0;
      root_noisy_[b] = 0;
    }
    return;
  }
  for (int32_t i = 0; i < count; ++i) {
    if (rows[i] < 0 || rows[i] >= B) throw std::out_of_range(row_msg(rows[i]) + " out of range");
  }
  for (int32_t i = 0; i < count; ++i) {
    trees_.clear(rows[i]);
    run_active_[rows[i]] = 0;
    root_noisy_[rows[i]] = 0;
  }
}

void Search::abort() {
  for (const Leaf& leaf : pending_) {
    trees_.clear(leaf.row);
    root_noisy_[leaf.row] = 0;
  }
  pending_.clear();
  std::fill(run_active_.begin(), run_active_.end(), 0);
}

// ---------------------------------------------------------------------------------------------
// Expansion

void Search::validate_evaluations(const LeafEvaluations& ev, int32_t count, const uint8_t* terminal,
                                  std::vector<int32_t>& logit_row) {
  const int32_t A = num_actions();
  if (ev.values == nullptr) throw std::invalid_argument("values are required");
  int32_t live = 0;
  logit_row.assign(count, -1);
  for (int32_t i = 0; i < count; ++i) {
    if (!std::isfinite(ev.values[i])) {
      throw std::invalid_argument("value " + std::to_string(i) + " is not finite");
    }
    if (ev.rewards && !std::isfinite(ev.rewards[i])) {
      throw std::invalid_argument("reward " + std::to_string(i) + " is not finite");
    }
    if (ev.discounts && !std::isfinite(ev.discounts[i])) {
      throw std::invalid_argument("discount " + std::to_string(i) + " is not finite");
    }
    if (terminal == nullptr || !terminal[i]) logit_row[i] = live++;
  }
  if (ev.rows != count && ev.rows != live) {
    throw std::invalid_argument("logits have " + std::to_string(ev.rows) + " rows; expected " +
                                std::to_string(count) + " (one per leaf) or " +
                                std::to_string(live) + " (one per non-terminal leaf)");
  }
  if (ev.rows == count) {
    for (int32_t i = 0; i < count; ++i) logit_row[i] = i;
  }
  if (live > 0 && ev.logits == nullptr) throw std::invalid_argument("logits are required");
  if (ev.legal.actions != nullptr) {
    const int32_t* off = ev.legal.offsets;
    if (off[0] != 0) throw std::invalid_argument("legal offsets must start at 0");
    for (int32_t r = 0; r < ev.rows; ++r) {
      if (off[r + 1] < off[r]) throw std::invalid_argument("legal offsets must not decrease");
    }
    if (off[ev.rows] != ev.legal.num_listed) {
      throw std::invalid_argument("legal offsets must end at the number of listed actions");
    }
  }
  legal_count_.assign(count, 0);
  max_logit_.assign(count, 0.0f);
  for (int32_t i = 0; i < count; ++i) {
    if (terminal != nullptr && terminal[i]) continue;
    const int32_t r = logit_row[i];
    const float* logits = ev.logits + static_cast<int64_t>(r) * A;
    LegalScan scan;
    if (ev.legal.actions != nullptr) {
      ++stamp_;
      if (stamp_ == 0) {
        std::fill(seen_stamp_.begin(), seen_stamp_.end(), 0);
        stamp_ = 1;
      }
      scan = LegalScan{0, -std::numeric_limits<float>::infinity(), false};
      for (int32_t j = ev.legal.offsets[r]; j < ev.legal.offsets[r + 1]; ++j) {
        const int32_t a = ev.legal.actions[j];
        if (a < 0 || a >= A) {
          throw std::out_of_range("legal action " + std::to_string(a) + " out of range [0, " +
                                  std::to_string(A) + ")");
        }
        if (seen_stamp_[a] == stamp_) {
          throw std::invalid_argument("legal action " + std::to_string(a) + " listed twice in row " +
                                      std::to_string(r));
        }
        seen_stamp_[a] = stamp_;
        const float l = logits[a];
        scan.bad |= std::isnan(l) || l == std::numeric_limits<float>::infinity();
        scan.max = std::max(scan.max, l);
        ++scan.count;
      }
    } else {
      const uint8_t* mask = ev.legal.mask ? ev.legal.mask + static_cast<int64_t>(r) * A : nullptr;
      scan = scan_legal_row(logits, mask, A);
    }
    if (scan.count == 0) {
      throw std::invalid_argument("a non-terminal state (row " + std::to_string(r) +
                                  ") has no legal action");
    }
    if (scan.bad) {
      throw std::invalid_argument("a legal action's logit in row " + std::to_string(r) +
                                  " is NaN or +inf");
    }
    if (!std::isfinite(scan.max)) {
      throw std::invalid_argument("all legal logits of row " + std::to_string(r) + " are -inf");
    }
    legal_count_[i] = scan.count;
    max_logit_[i] = scan.max;
  }
}

// Writes the legal actions of evaluation i (validated) in increasing order to action
// [legal_count_[i] + 1] and their priors, softmax over the legal actions, to prior (same size: the
// branch-free compaction may write one slot past the end).
void Search::fill_block(const LeafEvaluations& ev, int32_t i, int32_t* action, float* prior) {
  const int32_t A = num_actions();
  const int32_t r = logit_row_[i];
  const float* logits = ev.logits + static_cast<int64_t>(r) * A;
  const float m = max_logit_[i];
  const int32_t count = legal_count_[i];
  if (ev.legal.actions != nullptr) {
    // Lists may come in any order; the block is kept in action order.
    const int32_t lo = ev.legal.offsets[r], hi = ev.legal.offsets[r + 1];
    sort_scratch_.assign(ev.legal.actions + lo, ev.legal.actions + hi);
    std::sort(sort_scratch_.begin(), sort_scratch_.end());
    for (int32_t k = 0; k < count; ++k) {
      const int32_t a = sort_scratch_[k];
      action[k] = a;
      prior[k] = exp_nonpositive(logits[a] - m);
    }
  } else if (ev.legal.mask == nullptr || count == A) {
    exp_shifted_row(logits, nullptr, A, m, prior);
    for (int32_t a = 0; a < A; ++a) action[a] = a;
  } else {
    const uint8_t* mask = ev.legal.mask + static_cast<int64_t>(r) * A;
    float* e = exp_scratch_.data();
    exp_shifted_row(logits, mask, A, m, e);
    int32_t k = 0;
    for (int32_t a = 0; a < A; ++a) {  // branch-free compaction: may write one slot past the end
      action[k] = a;
      prior[k] = e[a];
      k += mask[a] != 0;
    }
  }
  normalise_row(prior, count);
}

// Writes node n's edge block from the evaluation of leaf i (validated; capacity reserved, plus one
// slack edge for the branch-free compaction).
void Search::write_edges(int32_t b, TreeRow& t, int32_t n, const LeafEvaluations& ev, int32_t i) {
  const int32_t first = trees_.num_edges_used[b];
  const int32_t count = legal_count_[i];
  fill_block(ev, i, t.edge_action + first, t.edge_prior + first);
  t.first_edge[n] = first;
  t.num_edges[n] = count;
  t.num_visited[n] = 0;
  t.best_unvisited[n] = -2;
  t.state[n] = kExpanded;
  trees_.num_edges_used[b] = first + count;
}

void Search::check_root_rows(const int32_t* rows, int32_t count, const LeafEvaluations& ev) {
  if (step_in_progress()) throw std::logic_error("roots set during a simulation step");
  const int32_t B = batch_size();
  if (ev.terminal != nullptr) throw std::invalid_argument("roots cannot be terminal");
  for (int32_t i = 0; i < count; ++i) {
    if (rows[i] < 0 || rows[i] >= B) throw std::out_of_range(row_msg(rows[i]) + " out of range");
    for (int32_t j = 0; j < i; ++j) {
      if (rows[j] == rows[i]) throw std::invalid_argument(row_msg(rows[i]) + " listed twice");
    }
  }
  validate_evaluations(ev, count, nullptr, logit_row_);
}

// Replaces the tree of row b by a root from evaluation i (validated; edge capacity reserved).
void Search::expand_root(int32_t b, const LeafEvaluations& ev, int32_t i) {
  trees_.clear(b);
  run_active_[b] = 0;
  root_noisy_[b] = 0;
  TreeRow t = trees_.row(b);
  const int32_t n = trees_.new_node(b, kNoParent, -1);
  write_edges(b, t, n, ev, i);
  t.raw_value[n] = ev.values[i];
  t.visits[n] = 1;
  t.value_sum[n] = ev.values[i];
}

void Search::expand_roots(const int32_t* rows, int32_t count, const LeafEvaluations& ev) {
  check_root_rows(rows, count, ev);
  int64_t need = 0;
  for (int32_t i = 0; i < count; ++i) need = std::max<int64_t>(need, legal_count_[i]);
  trees_.reserve_edges(need + 1);
  for (int32_t i = 0; i < count; ++i) expand_root(rows[i], ev, i);
}

void Search::refresh_roots(const int32_t* rows, int32_t count, const LeafEvaluations& ev,
                           std::vector<int32_t>& mapping) {
  check_root_rows(rows, count, ev);
  int64_t need = 0;
  for (int32_t i = 0; i < count; ++i) {
    need = std::max<int64_t>(need, trees_.num_edges_used[rows[i]] + legal_count_[i]);
  }
  trees_.reserve_edges(need + 1);
  for (int32_t i = 0; i < count; ++i) {
    const int32_t b = rows[i];
    if (trees_.num_nodes[b] == 0) {
      expand_root(b, ev, i);
      continue;
    }
    run_active_[b] = 0;
    root_noisy_[b] = 0;  // the priors written below are clean
    fill_block(ev, i, block_action_.data(), block_prior_.data());
    trees_.row(b).raw_value[kRootIndex] = ev.values[i];
    trees_.replace_root_edges(b, block_action_.data(), block_prior_.data(), legal_count_[i], mapping);
  }
}

// ---------------------------------------------------------------------------------------------
// Search set-up

std::vector<int32_t> Search::considered_visits(int32_t max_num_considered, int32_t num_simulations) {
  std::vector<int32_t> sequence;
  sequence.reserve(num_simulations);
  if (max_num_considered <= 1) {
    for (int32_t i = 0; i < num_simulations; ++i) sequence.push_back(i);
    return sequence;
  }
  const int32_t log2max = static_cast<int32_t>(std::ceil(std::log2(max_num_considered)));
  std::vector<int32_t> visits(max_num_considered, 0);
  int32_t num_considered = max_num_considered;
  while (static_cast<int32_t>(sequence.size()) < num_simulations) {
    const int32_t extra = std::max<int32_t>(
        1, static_cast<int32_t>(num_simulations / static_cast<double>(log2max * num_considered)));
    for (int32_t r = 0; r < extra; ++r) {
      sequence.insert(sequence.end(), visits.begin(), visits.begin() + num_considered);
      for (int32_t i = 0; i < num_considered; ++i) ++visits[i];
    }
    num_considered = std::max(2, num_considered / 2);
  }
  sequence.resize(num_simulations);
  return sequence;
}

void Search::start(int32_t num_simulations, const uint8_t* active, const float* gumbel,
                   const float* dirichlet, double dirichlet_fraction, const int32_t* simulations,
                   const uint8_t* noise_rows, const uint8_t* forced_rows) {
  if (step_in_progress()) throw std::logic_error("start during a simulation step");
  if (num_simulations < 0) throw std::invalid_argument("num_simulations must be >= 0");
  const bool is_gumbel = params_.algorithm == Algorithm::kGumbel;
  if (dirichlet != nullptr && is_gumbel) {
    throw std::invalid_argument("Dirichlet noise is for PUCT; Gumbel takes gumbel noise");
  }
  if (gumbel != nullptr && !is_gumbel) throw std::invalid_argument("gumbel noise is for Gumbel search");
  if (!(dirichlet_fraction >= 0.0 && dirichlet_fraction <= 1.0)) {
    throw std::invalid_argument("dirichlet_fraction must be in [0, 1]");
  }
  if (forced_rows != nullptr && !(params_.forced_playouts_k > 0)) {
    throw std::invalid_argument("forced rows given but forced_playouts_k is 0");
  }
  const int32_t B = batch_size(), A = num_actions();
  int64_t most_nodes = 0;
  int32_t most_simulations = simulations == nullptr ? num_simulations : 0;
  for (int32_t b = 0; b < B; ++b) {
    const bool on = active == nullptr || active[b];
    if (!on) continue;
    if (trees_.num_nodes[b] == 0) {
      throw std::invalid_argument(row_msg(b) + " has no root: call expand_roots first");
    }
    if (simulations != nullptr) {
      if (simulations[b] < 0) {
        throw std::invalid_argument("simulations of " + row_msg(b) + " must be >= 0");
      }
      most_simulations = std::max(most_simulations, simulations[b]);
    }
    most_nodes = std::max<int64_t>(most_nodes, trees_.num_nodes[b]);
    if (gumbel != nullptr || dirichlet != nullptr) {
      TreeRow t = trees_.row(b);
      const float* noise = (gumbel ? gumbel : dirichlet) + static_cast<int64_t>(b) * A;
      double sum = 0.0;
      for (int32_t e = 0; e < t.num_edges[0]; ++e) {
        const float x = noise[t.edge_action[e]];
        if (!std::isfinite(x) || (dirichlet != nullptr && x < 0)) {
          throw std::invalid_argument("root noise of " + row_msg(b) + " is not finite" +
                                      (dirichlet ? " and >= 0" : ""));
        }
        sum += x;
      }
    }
  }
  trees_.reserve_nodes(most_nodes + most_simulations);
  if (static_cast<int64_t>(B) * trees_.node_capacity > INT32_MAX) {
    throw std::length_error("batch_size * node capacity exceeds int32 node indices");
  }
  if (is_gumbel) {
    // One Sequential Halving table per distinct budget (self-play has one or two).
    const int32_t m = params_.max_num_considered_actions;
    considered_table_.clear();
    std::vector<std::pair<int32_t, int64_t>> tables;  // (budget, offset)
    for (int32_t b = 0; b < B; ++b) {
      if (!(active == nullptr || active[b])) continue;
      const int32_t n = simulations == nullptr ? num_simulations : simulations[b];
      auto it = std::find_if(tables.begin(), tables.end(),
                             [n](const std::pair<int32_t, int64_t>& x) { return x.first == n; });
      if (it == tables.end()) {
        tables.emplace_back(n, static_cast<int64_t>(considered_table_.size()));
        considered_table_.resize(considered_table_.size() + static_cast<size_t>(m + 1) * std::max(n, 1), 0);
        for (int32_t k = 0; k <= m; ++k) {
          const std::vector<int32_t> seq = considered_visits(k, n);
          std::copy(seq.begin(), seq.end(),
                    considered_table_.begin() + tables.back().second + static_cast<int64_t>(k) * n);
        }
        it = tables.end() - 1;
      }
      considered_offset_[b] = it->second;
    }
  }
  for (int32_t b = 0; b < B; ++b) {
    const bool on = active == nullptr || active[b];
    run_active_[b] = on;
    if (!on) continue;
    sims_started_[b] = 0;
    sims_target_[b] = simulations == nullptr ? num_simulations : simulations[b];
    forced_[b] = forced_rows != nullptr && forced_rows[b];
    const bool noisy_row = noise_rows == nullptr || noise_rows[b];
    if (params_.tree_min_max) seed_tree_min_max(b);
    TreeRow t = trees_.row(b);
    const int32_t ne = t.num_edges[0], nv = t.num_visited[0];
    int32_t* base = root_base_visits_.data() + static_cast<int64_t>(b) * A;
    float* clean = root_clean_prior_.data() + static_cast<int64_t>(b) * A;
    for (int32_t e = 0; e < ne; ++e) base[t.edge_action[e]] = e < nv ? t.edge_visits[e] : 0;
    if (root_noisy_[b]) {
      for (int32_t e = 0; e < ne; ++e) t.edge_prior[e] = clean[t.edge_action[e]];
      root_noisy_[b] = 0;
      t.best_unvisited[0] = -2;
    }
    if (dirichlet != nullptr && dirichlet_fraction > 0 && noisy_row) {
      const float* noise = dirichlet + static_cast<int64_t>(b) * A;
      double sum = 0.0;
      for (int32_t e = 0; e < ne; ++e) sum += noise[t.edge_action[e]];
      for (int32_t e = 0; e < ne; ++e) {
        const int32_t a = t.edge_action[e];
        // All-zero samples (underflow at tiny alpha) fall back to uniform noise.
        const double eta = sum > 0 ? noise[a] / sum : 1.0 / ne;
        clean[a] = t.edge_prior[e];
        t.edge_prior[e] = static_cast<float>((1.0 - dirichlet_fraction) * t.edge_prior[e] +
                                             dirichlet_fraction * eta);
      }
      root_noisy_[b] = 1;
      t.best_unvisited[0] = -2;
    }
    if (is_gumbel) {
      num_considered_[b] = std::min(params_.max_num_considered_actions, ne);
      double* score = root_score_.data() + static_cast<int64_t>(b) * A;
      const float* g = gumbel && noisy_row ? gumbel + static_cast<int64_t>(b) * A : nullptr;
      for (int32_t e = 0; e < ne; ++e) {
        const int32_t a = t.edge_action[e];
        const double logit = std::log(static_cast<double>(std::max(t.edge_prior[e], FLT_MIN)));
        score[a] = (g ? static_cast<double>(g[a]) : 0.0) + logit;
      }
    }
  }
}

// The tree-wide min/max at the start of a search: [value_min, value_max] with fixed bounds (else
// empty), widened by the Q of every visited edge of the tree kept from earlier searches.
void Search::seed_tree_min_max(int32_t b) {
  double lo = params_.fixed_value_bounds ? params_.value_min : kInf;
  double hi = params_.fixed_value_bounds ? params_.value_max : -kInf;
  TreeRow t = trees_.row(b);
  for (int32_t n = 0; n < trees_.num_nodes[b]; ++n) {
    const int32_t first = t.first_edge[n];
    for (int32_t e = first; e < first + t.num_visited[n]; ++e) {
      if (t.edge_visits[e] == 0) continue;
      const double q = t.edge_q_sum[e] / t.edge_visits[e];
      lo = std::min(lo, q);
      hi = std::max(hi, q);
    }
  }
  tree_q_min_[b] = lo;
  tree_q_max_[b] = hi;
}

// ---------------------------------------------------------------------------------------------
// Selection

int32_t Search::best_unvisited(TreeRow& t, int32_t n) {
  const int32_t cached = t.best_unvisited[n];
  if (cached >= -1) return cached;
  const int32_t begin = t.first_edge[n] + t.num_visited[n];
  const int32_t count = t.first_edge[n] + t.num_edges[n] - begin;
  const int32_t best = count > 0 ? begin + argmax_prior_row(t.edge_prior + begin, t.edge_action + begin, count) : -1;
  t.best_unvisited[n] = best;
  return best;
}

void Search::puct_q_bounds(int32_t b, const TreeRow& t, int32_t n, int32_t nv, const double* q,
                           double* lo_out, double* denom_out) const {
  double lo, denom;
  if (params_.tree_min_max) {
    const bool spread = tree_q_max_[b] > tree_q_min_[b];
    lo = spread ? tree_q_min_[b] : 0.0;  // no spread yet: Q unnormalised (MuZero pseudocode)
    denom = spread ? tree_q_max_[b] - tree_q_min_[b] : 1.0;
  } else if (params_.fixed_value_bounds) {
    lo = params_.value_min;
    denom = params_.value_max - params_.value_min;
  } else {
    const double v = t.value_sum[n] / t.visits[n];
    double hi = v;
    lo = v;
    for (int32_t i = 0; i < nv; ++i) {
      lo = std::min(lo, q[i]);
      hi = std::max(hi, q[i]);
    }
    denom = std::max(hi - lo, kMinDenominator);
  }
  *lo_out = lo;
  *denom_out = denom;
}

template <bool kVL>
int32_t Search::select_puct(int32_t b, TreeRow& t, int32_t n) {
  const int32_t first = t.first_edge[n];
  const int32_t nv = t.num_visited[n];
  const double N = static_cast<double>(t.visits[n] + (kVL ? t.in_flight[n] : 0));
  const double c = puct_exploration(N);
  double* q = q_scratch_.data();
  for (int32_t i = 0; i < nv; ++i) q[i] = edge_q<kVL>(t, first + i);
  double lo, denom;
  puct_q_bounds(b, t, n, nv, q, &lo, &denom);
  // Forced playouts (root of a forced row): k * sum of the children's visits (N counts the
  // node's own first visit).
  const bool force = n == kRootIndex && forced_[b];
  const double forced_scale = force ? params_.forced_playouts_k * (N - 1.0) : 0.0;
  ArgMax best, forced;
  for (int32_t i = 0; i < nv; ++i) {
    const int32_t e = first + i;
    const int32_t visits = visits_of<kVL>(t, e);
    const double score = (q[i] - lo) / denom + c * t.edge_prior[e] / (visits + 1);
    best.offer(score, t.edge_action[e], e);
    if (force && visits < std::sqrt(forced_scale * t.edge_prior[e])) {
      forced.offer(score, t.edge_action[e], e);
    }
  }
  if (forced.edge >= 0) return forced.edge;
  const int32_t u = best_unvisited(t, n);
  if (u >= 0) best.offer(0.0 + c * t.edge_prior[u] / 1.0, t.edge_action[u], u);
  return best.edge;
}

double Search::pruned_root_visits(int32_t b, TreeRow& t) {
  const int32_t nv = t.num_visited[0];
  double* q = q_scratch_.data();
  double* kept = w_scratch_.data();
  int32_t best = -1;
  double total = 0.0;
  for (int32_t e = 0; e < nv; ++e) {
    const int32_t n = t.edge_visits[e];
    q[e] = n > 0 ? t.edge_q_sum[e] / n : 0.0;
    total += n;
    if (best < 0 || n > t.edge_visits[best] ||
        (n == t.edge_visits[best] && t.edge_action[e] < t.edge_action[best])) {
      best = e;
    }
  }
  if (best < 0 || total <= 0) return 0.0;
  double lo, denom;
  puct_q_bounds(b, t, 0, nv, q, &lo, &denom);
  const double c = puct_exploration(static_cast<double>(t.visits[0]));
  const double best_score =
      (q[best] - lo) / denom + c * t.edge_prior[best] / (t.edge_visits[best] + 1.0);
  double sum = 0.0;
  for (int32_t e = 0; e < nv; ++e) {
    const double n = t.edge_visits[e];
    double keep = n;
    if (e != best) {
      const double gap = best_score - (q[e] - lo) / denom;  // room left for the exploration term
      if (gap > 0) {
        // PUCT(c, m) < best_score  <=>  1 + m > c P / gap: the fewest visits m that keep it
        // below is floor(c P / gap); KataGo removes at most n_forced visits.
        const double n_forced = std::sqrt(params_.forced_playouts_k * t.edge_prior[e] * total);
        keep = std::min(n, std::max(std::ceil(n - n_forced), std::floor(c * t.edge_prior[e] / gap)));
      }
      if (keep <= 1.0) keep = 0.0;
    }
    kept[e] = keep;
    sum += keep;
  }
  return sum;
}

template <bool kVL>
Search::CompletedQ Search::completed_q(TreeRow& t, int32_t n) {
  const int32_t first = t.first_edge[n];
  const int32_t nv = t.num_visited[n];
  CompletedQ c;
  c.has_unvisited = nv < t.num_edges[n];
  int32_t sum_visits = 0, max_visits = 0;
  double sum_probs = 0.0, sum_pq = 0.0;
  for (int32_t i = 0; i < nv; ++i) {
    const int32_t e = first + i;
    const int32_t visits = visits_of<kVL>(t, e);
    const double q = edge_q<kVL>(t, e);
    const double p = std::max(t.edge_prior[e], FLT_MIN);
    q_scratch_[i] = q;
    sum_visits += visits;
    max_visits = std::max(max_visits, visits);
    sum_probs += p;
    sum_pq += p * q;
  }
  const double raw = t.raw_value[n];
  c.mixed = nv == 0 ? raw : (raw + sum_visits * (sum_pq / sum_probs)) / (sum_visits + 1);
  // The min/max run over all A actions (mctx): the mixed value joins them while any action, legal
  // or not, has no visit.
  const bool completed_by_mixed = nv < num_actions();
  double lo = completed_by_mixed ? c.mixed : kInf;
  double hi = completed_by_mixed ? c.mixed : -kInf;
  for (int32_t i = 0; i < nv; ++i) {
    lo = std::min(lo, q_scratch_[i]);
    hi = std::max(hi, q_scratch_[i]);
  }
  c.lo = lo;
  c.denom = std::max(hi - lo, kMinDenominator);
  c.scale = (params_.c_visit + max_visits) * params_.c_scale;
  c.sum_visits = sum_visits;
  return c;
}

template <bool kVL>
int32_t Search::select_gumbel_interior(TreeRow& t, int32_t n) {
  const CompletedQ c = completed_q<kVL>(t, n);
  const int32_t first = t.first_edge[n];
  const int32_t nv = t.num_visited[n];
  // softmax(log prior + sigma(completed q)) - visits / (1 + sum visits), mctx's deterministic
  // interior selection; the unvisited children share sigma(mixed value).
  const double sigma_unvisited = c.sigma(c.mixed);
  double top = c.has_unvisited ? sigma_unvisited : -kInf;
  for (int32_t i = 0; i < nv; ++i) {
    w_scratch_[i] = c.sigma(q_scratch_[i]);
    top = std::max(top, w_scratch_[i]);
  }
  double z = 0.0, visited_mass = 0.0;
  for (int32_t i = 0; i < nv; ++i) {
    const double p = t.edge_prior[first + i];
    visited_mass += p;
    w_scratch_[i] = p * std::exp(w_scratch_[i] - top);
    z += w_scratch_[i];
  }
  const double unvisited_weight = c.has_unvisited ? std::exp(sigma_unvisited - top) : 0.0;
  if (c.has_unvisited) z += std::max(0.0, 1.0 - visited_mass) * unvisited_weight;
  if (!(z > 0)) z = 1.0;
  const double denom = 1.0 + c.sum_visits;
  ArgMax best;
  for (int32_t i = 0; i < nv; ++i) {
    const int32_t e = first + i;
    const int32_t visits = visits_of<kVL>(t, e);
    best.offer(w_scratch_[i] / z - visits / denom, t.edge_action[e], e);
  }
  const int32_t u = best_unvisited(t, n);
  if (u >= 0) best.offer(t.edge_prior[u] * unvisited_weight / z, t.edge_action[u], u);
  return best.edge;
}

template <bool kVL>
int32_t Search::select_gumbel_root(int32_t b, TreeRow& t) {
  const CompletedQ c = completed_q<kVL>(t, 0);
  const int32_t A = num_actions();
  const int32_t nv = t.num_visited[0], ne = t.num_edges[0];
  const int32_t* base = root_base_visits_.data() + static_cast<int64_t>(b) * A;
  const double* score = root_score_.data() + static_cast<int64_t>(b) * A;
  const int32_t budget = sims_target_[b];
  const int32_t sim = std::min(sims_started_[b], std::max(budget - 1, 0));
  const int32_t considered =
      considered_table_[considered_offset_[b] + static_cast<int64_t>(num_considered_[b]) * budget + sim];
  const double sigma_unvisited = c.sigma(c.mixed);
  ArgMax best, fallback;
  for (int32_t e = 0; e < nv; ++e) {
    const int32_t a = t.edge_action[e];
    const int32_t visits = visits_of<kVL>(t, e) - base[a];
    const double s = std::max(kLowLogit, score[a] + c.sigma(q_scratch_[e]));
    if (visits == considered) best.offer(s, a, e);
    fallback.offer(s, a, e);
  }
  if (nv < ne && (considered == 0 || best.edge < 0)) {
    // Unvisited children share sigma(mixed): the best of them has the highest gumbel + logit.
    ArgMax u;
    for (int32_t e = nv; e < ne; ++e) u.offer(score[t.edge_action[e]], t.edge_action[e], e);
    const double s = std::max(kLowLogit, u.score + sigma_unvisited);
    if (considered == 0) best.offer(s, u.action, u.edge);
    fallback.offer(s, u.action, u.edge);
  }
  return best.edge >= 0 ? best.edge : fallback.edge;
}

template <bool kVL>
Search::DescentResult Search::descend(int32_t b, TreeRow& t) {
  int32_t n = kRootIndex;
  const bool gumbel = params_.algorithm == Algorithm::kGumbel;
  for (;;) {
    const uint8_t st = t.state[n];
    if (st == kTerminal) {
      backup(b, t, n, t.raw_value[n], false);
      return kTerminalRevisit;
    }
    if (st == kPending) return kCollision;
    const int32_t e = !gumbel ? select_puct<kVL>(b, t, n)
                      : n == kRootIndex ? select_gumbel_root<kVL>(b, t)
                                        : select_gumbel_interior<kVL>(t, n);
    const int32_t first = t.first_edge[n];
    const int32_t slot = first + t.num_visited[n];
    if (e < slot) {
      n = t.edge_child[e];
      continue;
    }
    // A new child: move its edge into the visited prefix.
    if (e != slot) {
      std::swap(t.edge_action[e], t.edge_action[slot]);
      std::swap(t.edge_prior[e], t.edge_prior[slot]);
    }
    int32_t& cached = t.best_unvisited[n];
    if (cached == e) cached = -2;
    else if (cached == slot) cached = e;
    t.num_visited[n] += 1;
    const int32_t child = trees_.new_node(b, n, slot);
    t.edge_child[slot] = child;
    t.edge_visits[slot] = 0;
    t.edge_in_flight[slot] = 0;
    t.edge_q_sum[slot] = 0.0;
    if (kVL) {
      for (int32_t m = child;;) {
        t.in_flight[m] += 1;
        if (m == kRootIndex) break;
        t.edge_in_flight[t.parent_edge[m]] += 1;
        m = t.parent[m];
      }
    }
    pending_.push_back(Leaf{b, n, t.edge_action[slot], child});
    return kNewLeaf;
  }
}

// Every descent starts at node 0 whose edge block starts at edge 0: their cache lines can be
// requested a few trees ahead (the trees are independent, their rows far apart in memory).
void Search::prefetch_root(int32_t b) {
  const int64_t n = static_cast<int64_t>(b) * trees_.node_capacity;
  const int64_t e = static_cast<int64_t>(b) * trees_.edge_capacity;
  __builtin_prefetch(trees_.state.data() + n);
  __builtin_prefetch(trees_.first_edge.data() + n);
  __builtin_prefetch(trees_.num_edges.data() + n);
  __builtin_prefetch(trees_.num_visited.data() + n);
  __builtin_prefetch(trees_.best_unvisited.data() + n);
  __builtin_prefetch(trees_.visits.data() + n);
  __builtin_prefetch(trees_.value_sum.data() + n);
  __builtin_prefetch(trees_.raw_value.data() + n);
  __builtin_prefetch(trees_.edge_prior.data() + e);
  __builtin_prefetch(trees_.edge_action.data() + e);
  __builtin_prefetch(trees_.edge_visits.data() + e);
  __builtin_prefetch(trees_.edge_q_sum.data() + e);
  __builtin_prefetch(trees_.edge_child.data() + e);
}

const std::vector<Leaf>& Search::select() {
  if (step_in_progress()) throw std::logic_error("select called again before expand_backup");
  const int32_t B = batch_size();
  const int32_t per_step = params_.leaves_per_step;
  for (int32_t b = 0; b < B; ++b) {
    if (b + kPrefetchAhead < B) prefetch_root(b + kPrefetchAhead);
    if (!run_active_[b]) continue;
    TreeRow t = trees_.row(b);
    int32_t got = 0;
    while (got < per_step && sims_started_[b] < sims_target_[b]) {
      const DescentResult r = use_virtual_loss_ ? descend<true>(b, t) : descend<false>(b, t);
      if (r == kCollision) break;
      ++sims_started_[b];
      if (r == kNewLeaf) ++got;
    }
  }
  return pending_;
}

void Search::backup(int32_t b, TreeRow& t, int32_t n, double value, bool remove_in_flight) {
  t.visits[n] += 1;
  t.value_sum[n] += value;
  if (remove_in_flight) t.in_flight[n] -= 1;
  const bool track = params_.tree_min_max;
  while (n != kRootIndex) {
    const int32_t e = t.parent_edge[n];
    value = t.reward[n] + t.discount[n] * value;
    t.edge_visits[e] += 1;
    t.edge_q_sum[e] += value;
    if (track) {
      const double q = t.edge_q_sum[e] / t.edge_visits[e];
      tree_q_min_[b] = std::min(tree_q_min_[b], q);
      tree_q_max_[b] = std::max(tree_q_max_[b], q);
    }
    n = t.parent[n];
    t.visits[n] += 1;
    t.value_sum[n] += value;
    if (remove_in_flight) {
      t.edge_in_flight[e] -= 1;
      t.in_flight[n] -= 1;
    }
  }
}

void Search::expand_backup(const LeafEvaluations& ev) {
  if (!step_in_progress()) throw std::logic_error("expand_backup without a pending select");
  const int32_t L = static_cast<int32_t>(pending_.size());
  validate_evaluations(ev, L, ev.terminal, logit_row_);
  // Edge capacity for the new blocks.
  std::fill(edges_needed_.begin(), edges_needed_.end(), 0);
  for (int32_t i = 0; i < L; ++i) edges_needed_[pending_[i].row] += legal_count_[i];
  int64_t need = 0;
  for (int32_t b = 0; b < batch_size(); ++b) {
    if (edges_needed_[b]) need = std::max<int64_t>(need, trees_.num_edges_used[b] + edges_needed_[b]);
  }
  trees_.reserve_edges(need + 1);  // + 1: slack for the branch-free compaction
  for (int32_t i = 0; i < L; ++i) {
    if (i + kPrefetchAhead < L) {  // the next leaves' new edge blocks and nodes
      const Leaf& next = pending_[i + kPrefetchAhead];
      const int64_t e = next.row * trees_.edge_capacity + trees_.num_edges_used[next.row];
      const int64_t n = next.row * trees_.node_capacity + next.node;
      __builtin_prefetch(trees_.edge_prior.data() + e, 1);
      __builtin_prefetch(trees_.edge_action.data() + e, 1);
      __builtin_prefetch(trees_.parent.data() + n);
      __builtin_prefetch(trees_.parent_edge.data() + n);
      __builtin_prefetch(trees_.state.data() + n, 1);
      __builtin_prefetch(trees_.visits.data() + n, 1);
    }
    const Leaf& leaf = pending_[i];
    TreeRow t = trees_.row(leaf.row);
    const int32_t n = leaf.node;
    const float value = ev.values[i];
    t.raw_value[n] = value;
    t.reward[n] = ev.rewards ? ev.rewards[i] : 0.0f;
    t.discount[n] = ev.discounts ? ev.discounts[i] : params_.default_discount;
    if (ev.terminal != nullptr && ev.terminal[i]) {
      t.state[n] = kTerminal;
    } else {
      write_edges(leaf.row, t, n, ev, i);
    }
    backup(leaf.row, t, n, value, use_virtual_loss_);
  }
  pending_.clear();
}

// ---------------------------------------------------------------------------------------------
// Results and tree reuse

void Search::outputs(int32_t* action, int32_t* visit_counts, float* policy, float* root_value,
                     float* root_q) {
  if (step_in_progress()) throw std::logic_error("outputs during a simulation step");
  const int32_t B = batch_size(), A = num_actions();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const bool gumbel = params_.algorithm == Algorithm::kGumbel;
  for (int32_t b = 0; b < B; ++b) {
    const int64_t row = static_cast<int64_t>(b) * A;
    if (visit_counts) std::fill(visit_counts + row, visit_counts + row + A, 0);
    if (policy) std::fill(policy + row, policy + row + A, 0.0f);
    if (root_q) std::fill(root_q + row, root_q + row + A, nan);
    if (action) action[b] = -1;
    if (root_value) root_value[b] = nan;
    if (!run_active_[b] || trees_.num_nodes[b] == 0) continue;
    TreeRow t = trees_.row(b);
    const int32_t nv = t.num_visited[0], ne = t.num_edges[0];
    if (root_value) root_value[b] = static_cast<float>(t.value_sum[0] / t.visits[0]);
    int64_t total = 0;
    for (int32_t e = 0; e < nv; ++e) {
      const int32_t a = t.edge_action[e];
      if (visit_counts) visit_counts[row + a] = t.edge_visits[e];
      if (root_q && t.edge_visits[e] > 0) {
        root_q[row + a] = static_cast<float>(t.edge_q_sum[e] / t.edge_visits[e]);
      }
      total += t.edge_visits[e];
    }
    if (!gumbel) {
      if (policy && forced_[b] && total > 0) {
        const double kept = pruned_root_visits(b, t);
        for (int32_t e = 0; e < nv; ++e) {
          policy[row + t.edge_action[e]] = static_cast<float>(w_scratch_[e] / kept);
        }
      } else if (policy) {
        if (total > 0) {
          for (int32_t e = 0; e < nv; ++e) {
            policy[row + t.edge_action[e]] = static_cast<float>(t.edge_visits[e] / double(total));
          }
        } else {
          for (int32_t e = 0; e < ne; ++e) policy[row + t.edge_action[e]] = t.edge_prior[e];
        }
      }
      continue;
    }
    const CompletedQ c = completed_q<false>(t, 0);
    const double sigma_unvisited = c.sigma(c.mixed);
    // Improved policy: softmax(log prior + sigma(completed q)) over the legal actions.
    double top = -kInf;
    for (int32_t e = 0; e < ne; ++e) {
      w_scratch_[e] = e < nv ? c.sigma(q_scratch_[e]) : sigma_unvisited;
      top = std::max(top, w_scratch_[e]);
    }
    double z = 0.0;
    for (int32_t e = 0; e < ne; ++e) {
      w_scratch_[e] = t.edge_prior[e] * std::exp(w_scratch_[e] - top);
      z += w_scratch_[e];
    }
    if (policy) {
      for (int32_t e = 0; e < ne; ++e) {
        policy[row + t.edge_action[e]] = static_cast<float>(w_scratch_[e] / z);
      }
    }
    // Action: the best gumbel + logit + sigma(q) among the most visited (this search) children.
    if (action) {
      const int32_t* base = root_base_visits_.data() + row;
      const double* score = root_score_.data() + row;
      int32_t most = 0;
      for (int32_t e = 0; e < nv; ++e) {
        most = std::max(most, t.edge_visits[e] - base[t.edge_action[e]]);
      }
      ArgMax best;
      for (int32_t e = 0; e < ne; ++e) {
        const int32_t a = t.edge_action[e];
        const int32_t visits = e < nv ? t.edge_visits[e] - base[a] : 0;
        if (visits != most) continue;
        const double sigma = e < nv ? c.sigma(q_scratch_[e]) : sigma_unvisited;
        best.offer(std::max(kLowLogit, score[a] + sigma), a, e);
      }
      action[b] = best.action;
    }
  }
}

void Search::advance(const int32_t* actions, const uint8_t* active, std::vector<int32_t>& mapping) {
  if (step_in_progress()) throw std::logic_error("advance during a simulation step");
  const int32_t B = batch_size(), A = num_actions();
  std::vector<int32_t> edge_of(B, -1);
  for (int32_t b = 0; b < B; ++b) {
    if (active != nullptr && !active[b]) continue;
    const int32_t a = actions[b];
    if (a < 0 || a >= A) {
      throw std::out_of_range("action " + std::to_string(a) + " of " + row_msg(b) +
                              " out of range [0, " + std::to_string(A) + ")");
    }
    if (trees_.num_nodes[b] == 0) continue;
    TreeRow t = trees_.row(b);
    for (int32_t e = 0; e < t.num_edges[0]; ++e) {
      if (t.edge_action[e] == a) edge_of[b] = e;
    }
    if (edge_of[b] < 0) {
      throw std::invalid_argument("action " + std::to_string(a) + " is not legal at the root of " +
                                  row_msg(b) + " (a tree of another position? reset the row when "
                                  "a new game starts there)");
    }
  }
  for (int32_t b = 0; b < B; ++b) {
    if (active != nullptr && !active[b]) continue;
    run_active_[b] = 0;
    root_noisy_[b] = 0;
    if (trees_.num_nodes[b] == 0) continue;
    TreeRow t = trees_.row(b);
    const int32_t e = edge_of[b];
    const int32_t child = e < t.num_visited[0] ? t.edge_child[e] : kUnvisited;
    if (child == kUnvisited || t.state[child] != kExpanded) {
      trees_.clear(b);
    } else {
      trees_.reroot(b, child, mapping);
    }
  }
}

void Search::check_invariants(int32_t b) {
  if (b < 0 || b >= batch_size()) throw std::out_of_range(row_msg(b) + " out of range");
  TreeRow t = trees_.row(b);
  const int32_t count = trees_.num_nodes[b];
  auto fail = [&](int32_t n, const std::string& what) {
    throw std::logic_error(row_msg(b) + " node " + std::to_string(n) + ": " + what);
  };
  std::vector<uint8_t> seen(num_actions());
  int32_t next_block = 0;
  for (int32_t n = 0; n < count; ++n) {
    if (n > 0) {
      const int32_t p = t.parent[n];
      if (p < 0 || p >= n) fail(n, "parent id not below the node's");
      const int32_t e = t.parent_edge[n];
      if (e < t.first_edge[p] || e >= t.first_edge[p] + t.num_visited[p]) fail(n, "parent edge outside the parent's visited prefix");
      if (t.edge_child[e] != n) fail(n, "parent edge does not lead here");
      if (t.edge_visits[e] != t.visits[n]) fail(n, "edge visits differ from node visits");
    } else if (t.parent[n] != kNoParent) {
      fail(n, "root has a parent");
    }
    const uint8_t st = t.state[n];
    if (st == kPending) {
      if (!step_in_progress()) fail(n, "pending node outside a simulation step");
      continue;
    }
    if (st == kTerminal) {
      if (t.num_edges[n] != 0) fail(n, "terminal node with edges");
      continue;
    }
    if (st != kExpanded) fail(n, "unknown state");
    const int32_t first = t.first_edge[n], ne = t.num_edges[n], nv = t.num_visited[n];
    if (ne <= 0 || nv < 0 || nv > ne) fail(n, "bad edge counts");
    if (first != next_block) fail(n, "edge blocks not contiguous in node order");
    next_block = first + ne;
    std::fill(seen.begin(), seen.end(), 0);
    int64_t child_visits = 0, in_flight = 0;
    double child_values = 0.0, prior_sum = 0.0;
    for (int32_t e = first; e < first + ne; ++e) {
      const int32_t a = t.edge_action[e];
      if (a < 0 || a >= num_actions() || seen[a]) fail(n, "bad or repeated edge action");
      seen[a] = 1;
      if (!(t.edge_prior[e] >= 0)) fail(n, "negative prior");
      prior_sum += t.edge_prior[e];
      if (e < first + nv) {
        const int32_t c = t.edge_child[e];
        if (c <= n || c >= count || t.parent[c] != n) fail(n, "visited edge with a bad child");
        child_visits += t.edge_visits[e];
        in_flight += t.edge_in_flight[e];
        child_values += t.edge_q_sum[e];
      }
    }
    if (std::fabs(prior_sum - 1.0) > 1e-3) fail(n, "priors do not sum to 1");
    if (t.visits[n] != 1 + child_visits) fail(n, "visits != 1 + children's visits");
    if (t.in_flight[n] != in_flight) fail(n, "in-flight count differs from the children's");
    const double expect = t.raw_value[n] + child_values;
    if (std::fabs(t.value_sum[n] - expect) > 1e-6 * (1.0 + std::fabs(expect))) {
      fail(n, "value sum != raw value + children's backed-up values");
    }
  }
  if (next_block > trees_.num_edges_used[b]) fail(-1, "edge blocks beyond the used edges");
}

}  // namespace azero
