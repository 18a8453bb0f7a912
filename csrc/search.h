// Batched MCTS over `Trees`: PUCT (AlphaZero / MuZero) and Gumbel (Danihelka et al. 2022) selection,
// split in two halves so that the caller can step the rules (or a learned model) and run ONE
// network call for the whole batch in between:
//
//   expand_roots(rows, ...)        evaluate the roots of empty trees (once per new position)
//   start(num_simulations, ...)    begin a search on the active rows (root noise, budgets)
//   loop:
//     leaves = select()            walk every tree to a leaf: (row, parent, action, node) each
//     ... caller computes the leaf states, their logits, values, legal actions ...
//     expand_backup(...)           create the leaves' edge blocks and back the values up
//   outputs(...)                   visit counts, Q, improved policy, action
//   advance(actions)               keep the played child's subtree as the next root
//   refresh_roots(rows, ...)       (MuZero) give kept roots the real observation's evaluation
//
// All array arguments are raw pointers to C-contiguous data; shapes are validated by the bindings,
// values (ids, actions, finiteness) here. Errors throw std::invalid_argument (bad values),
// std::out_of_range (bad ids) or std::logic_error (calls out of order) before anything is modified.
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

#include "tree.h"

namespace azero {

enum class Algorithm : int32_t { kPuct = 0, kGumbel = 1 };

struct SearchParams {
  Algorithm algorithm = Algorithm::kGumbel;
  // PUCT, AlphaZero pseudocode: c(N) = pb_c_init + log((N + pb_c_base + 1) / pb_c_base)
  double pb_c_base = 19652.0;
  double pb_c_init = 1.25;
  // PUCT value normalisation of Q to [0, 1], unvisited children at 0, one of:
  //   fixed bounds (AlphaZero with values in [-1, 1]; mctx qtransform_by_min_max);
  //   per node: min/max over the node's value and its children's Q
  //   (mctx qtransform_by_parent_and_siblings): fixed_value_bounds false, tree_min_max false;
  //   tree-wide: the running min/max of every edge Q backed up in the row's tree during this
  //   search (the MuZero pseudocode's MinMaxStats, one per search), seeded by the Q of every
  //   visited edge of a kept tree and, with fixed_value_bounds, by [value_min, value_max] (its
  //   KnownBounds). While max <= min, Q is used unnormalised, as in the pseudocode. The
  //   pseudocode also feeds it the root's own value through an edge the root does not have;
  //   here only edge Qs, the values PUCT compares, enter.
  bool fixed_value_bounds = true;
  double value_min = -1.0;
  double value_max = 1.0;
  bool tree_min_max = false;
  // Gumbel (mctx gumbel_muzero_policy + qtransform_completed_by_mix_value)
  int32_t max_num_considered_actions = 16;
  double c_visit = 50.0;
  double c_scale = 0.1;
  // Several leaves per tree per select() with virtual loss.
  int32_t leaves_per_step = 1;
  double virtual_loss = 1.0;
  // Discount of an edge when expand_backup is given none: -1 flips the sign between the two
  // players (AlphaZero), +1 for one-player games.
  float default_discount = -1.0f;
  // PUCT: KataGo's forced playouts (Wu 2019, section 3.2; k = 2 there; 0 = off), in the rows a
  // search is started with `forced`: at the root, a visited child c with
  // N(c) < sqrt(k P(c) sum_c' N(c')) is selected before any other (the highest PUCT score among
  // such children); outputs() then prunes those rows' policy targets (see outputs).
  double forced_playouts_k = 0.0;
};

struct Leaf {
  int32_t row;     // batch row b
  int32_t parent;  // node id of the expanded parent
  int32_t action;  // action taken from the parent
  int32_t node;    // id of the new node waiting for its evaluation
};

// Where the legal actions of a batch of evaluated states come from: a bool mask [rows, A], or
// lists (CSR: the actions of row i are actions[offsets[i] .. offsets[i + 1])), or neither: every
// action is legal (MuZero's interior nodes).
struct LegalInput {
  const uint8_t* mask = nullptr;
  const int32_t* actions = nullptr;
  const int32_t* offsets = nullptr;
  int64_t num_listed = 0;  // length of `actions`
};

// The evaluations of the L leaves of the last select(), in its order.
struct LeafEvaluations {
  int32_t rows = 0;                  // rows of logits / legal: L, or the number of non-terminal
                                     // leaves (then row j belongs to the j-th non-terminal leaf)
  const float* logits = nullptr;     // [rows, A] raw logits; masked to the legal actions here
  LegalInput legal;
  const float* values = nullptr;     // [L] side to move's view; the result for terminal leaves
  const uint8_t* terminal = nullptr; // [L] or null (no terminal leaves)
  const float* rewards = nullptr;    // [L] reward of the edge into the leaf, or null (0)
  const float* discounts = nullptr;  // [L] discount of that edge, or null (default_discount)
};

class Search {
 public:
  Search(int32_t batch_size, int32_t num_actions, const SearchParams& params);

  Trees& trees() { return trees_; }
  const SearchParams& params() const { return params_; }
  int32_t batch_size() const { return trees_.batch_size; }
  int32_t num_actions() const { return trees_.num_actions; }
  bool step_in_progress() const { return !pending_.empty(); }
  int32_t num_pending() const { return static_cast<int32_t>(pending_.size()); }

  // Drops the trees of `rows` (all if rows == nullptr).
  void reset(const int32_t* rows, int32_t count);
  // Drops the leaves of an interrupted step (their trees are reset) and ends the search.
  void abort();

  // Expands node 0 of each listed row (its tree is replaced): evals.rows == count,
  // evals.terminal must be null (roots are never terminal).
  void expand_roots(const int32_t* rows, int32_t count, const LeafEvaluations& evals);

  // MuZero: the root's evaluation comes from the real observation at every move, also where
  // `advance` kept a tree (whose root was a model prediction). Each listed row without a tree
  // gets a root as in expand_roots; a row with one keeps it, with the new root value as
  // raw_value, the new priors over the new legal actions, and only the subtrees under still-legal
  // root actions (the others are dropped; see Trees::replace_root_edges). Appends (row, new id,
  // old id) of every node of a kept tree to `mapping`. Same arguments as expand_roots.
  void refresh_roots(const int32_t* rows, int32_t count, const LeafEvaluations& evals,
                     std::vector<int32_t>& mapping);

  // Begins a search of `num_simulations` on the active rows (all if active == nullptr).
  // gumbel [B, A] (Gumbel only, may be null = 0): noise added to the root logits.
  // dirichlet [B, A] (PUCT only, may be null): Gamma(alpha, 1) samples, normalised here over each
  // root's legal actions and mixed into its priors with weight dirichlet_fraction. Noise of an
  // earlier search on the same root is removed first.
  // simulations [B] (may be null): each row's own budget instead of num_simulations (KataGo's
  // playout cap randomisation: full and cheap searches in one batch; a row whose budget is spent
  // adds no leaf, so the batch needs max(budget) select() steps). Gumbel's Sequential Halving
  // follows each row's own budget.
  // noise_rows [B] (may be null = all): the rows the gumbel / dirichlet noise applies to.
  // forced_rows [B] (may be null = none): rows with forced playouts and a pruned policy target
  // (needs params.forced_playouts_k > 0).
  void start(int32_t num_simulations, const uint8_t* active, const float* gumbel,
             const float* dirichlet, double dirichlet_fraction,
             const int32_t* simulations = nullptr, const uint8_t* noise_rows = nullptr,
             const uint8_t* forced_rows = nullptr);

  // One step: up to leaves_per_step leaves per unfinished tree. Re-visits of terminal nodes are
  // backed up on the spot. Empty once every tree has spent its budget.
  const std::vector<Leaf>& select();

  void expand_backup(const LeafEvaluations& evals);

  // Per row: action [B] (Gumbel's choice, -1 for PUCT and inactive rows), visit_counts [B, A],
  // policy [B, A] (completed-Q improved policy for Gumbel, normalised visits for PUCT; in rows
  // started with forced playouts, the visits after KataGo's policy target pruning: with c* the
  // most visited child (ties: lowest action) and PUCT(c, n) its selection score with n visits
  // at the root's final N, every other child c loses up to n_forced(c) = sqrt(k P(c) sum N)
  // visits as long as PUCT(c, remaining) < PUCT(c*, N(c*)); a child left with <= 1 visit gets
  // 0; visit_counts stay the raw counts),
  // root_value [B], root_q [B, A] (parent's view, NaN if unvisited). Any pointer may be null.
  void outputs(int32_t* action, int32_t* visit_counts, float* policy, float* root_value,
               float* root_q);

  // After actions[b] was played in active row b: the child's subtree becomes the tree (or the
  // tree is dropped if that child was never expanded). Appends (row, new id, old id) of every
  // kept node to `mapping`.
  void advance(const int32_t* actions, const uint8_t* active, std::vector<int32_t>& mapping);

  // Checks the tree invariants of row b; throws std::logic_error naming the first violation.
  void check_invariants(int32_t b);

  // The considered-visit sequence of Sequential Halving (mctx seq_halving).
  static std::vector<int32_t> considered_visits(int32_t max_num_considered, int32_t num_simulations);

 private:
  enum DescentResult { kNewLeaf, kTerminalRevisit, kCollision };

  // Completed-Q transform of a node's children (mctx qtransform_completed_by_mix_value); fills
  // q_scratch_ for the visited prefix. As in mctx the rescaling min/max run over all A actions,
  // each action without a visit (illegal ones too: mctx sees them as unvisited actions with a
  // masked prior) completed by the mixed value.
  struct CompletedQ {
    double lo, denom, scale, mixed;
    int32_t sum_visits;
    bool has_unvisited;  // a legal action without a visit
    double sigma(double q) const { return scale * ((q - lo) / denom); }
  };

  // kVL: virtual loss in use (leaves_per_step > 1); without it in-flight counts are all 0.
  template <bool kVL> DescentResult descend(int32_t b, TreeRow& t);
  template <bool kVL> int32_t select_puct(int32_t b, TreeRow& t, int32_t n);
  // PUCT's normalisation of the Qs q[0..nv) of node n's visited children: (q - lo) / denom.
  void puct_q_bounds(int32_t b, const TreeRow& t, int32_t n, int32_t nv, const double* q,
                     double* lo, double* denom) const;
  // PUCT's exploration factor sqrt(N) c(N) at a node of N visits (in flight included).
  double puct_exploration(double N) const {
    return std::sqrt(N) * (params_.pb_c_init + std::log((N + params_.pb_c_base + 1.0) / params_.pb_c_base));
  }
  // Writes row b's pruned root visits (policy target pruning, see outputs) to w_scratch_[e] for
  // its visited edges e (relative to the root's block); returns their sum.
  double pruned_root_visits(int32_t b, TreeRow& t);
  template <bool kVL> int32_t select_gumbel_interior(TreeRow& t, int32_t n);
  template <bool kVL> int32_t select_gumbel_root(int32_t b, TreeRow& t);
  int32_t best_unvisited(TreeRow& t, int32_t n);
  void prefetch_root(int32_t b);
  static constexpr int32_t kPrefetchAhead = 4;
  template <bool kVL> CompletedQ completed_q(TreeRow& t, int32_t n);
  void backup(int32_t b, TreeRow& t, int32_t n, double value, bool remove_in_flight);
  void validate_evaluations(const LeafEvaluations& evals, int32_t count, const uint8_t* terminal,
                            std::vector<int32_t>& logit_row);
  void check_root_rows(const int32_t* rows, int32_t count, const LeafEvaluations& evals);
  void expand_root(int32_t b, const LeafEvaluations& evals, int32_t i);
  void fill_block(const LeafEvaluations& evals, int32_t i, int32_t* action, float* prior);
  void write_edges(int32_t b, TreeRow& t, int32_t n, const LeafEvaluations& evals, int32_t r);
  void seed_tree_min_max(int32_t b);
  template <bool kVL>
  static int32_t visits_of(const TreeRow& t, int32_t e) {
    return kVL ? t.edge_visits[e] + t.edge_in_flight[e] : t.edge_visits[e];
  }
  // Q of a visited edge (parent's view); each in-flight visit counts as a loss of virtual_loss.
  template <bool kVL>
  double edge_q(const TreeRow& t, int32_t e) const {
    if (!kVL || t.edge_in_flight[e] == 0) return t.edge_q_sum[e] / t.edge_visits[e];
    const int32_t f = t.edge_in_flight[e];
    return (t.edge_q_sum[e] - f * params_.virtual_loss) / (t.edge_visits[e] + f);
  }

  Trees trees_;
  SearchParams params_;
  bool use_virtual_loss_;
  std::vector<Leaf> pending_;

  // The search in progress.                  // [B]
  std::vector<uint8_t> run_active_;
  std::vector<int32_t> sims_target_;
  std::vector<int32_t> sims_started_;           // this search's simulations, in flight included
  std::vector<int32_t> num_considered_;         // Gumbel: min(max considered, root's legal count)
  std::vector<uint8_t> root_noisy_;             // root priors carry Dirichlet noise
  std::vector<uint8_t> forced_;                 // forced playouts + pruned target this search
  // Gumbel: one table [max_considered + 1, budget] per distinct budget of this search, one after
  // the other; considered_offset_[b] is where row b's budget's table starts.
  std::vector<int32_t> considered_table_;
  std::vector<int64_t> considered_offset_;      // [B]
  //                                            // [B, A], read for the root's legal actions only
  std::vector<int32_t> root_base_visits_;       // child visits before this search (tree reuse)
  std::vector<double> root_score_;              // Gumbel: gumbel + log prior
  std::vector<float> root_clean_prior_;         // priors before Dirichlet noise
  std::vector<double> tree_q_min_;              // [B] tree-wide running min / max of edge Q
  std::vector<double> tree_q_max_;              //     (params_.tree_min_max)

  // Scratch, sized once.
  std::vector<double> q_scratch_;               // [A]
  std::vector<double> w_scratch_;               // [A]
  std::vector<int32_t> legal_count_;            // [L]
  std::vector<float> max_logit_;                // [L]
  std::vector<int32_t> logit_row_;              // [L]
  std::vector<int64_t> edges_needed_;           // [B]
  std::vector<uint32_t> seen_stamp_;            // [A], duplicate check of legal lists
  std::vector<int32_t> sort_scratch_;           // [A], unsorted legal lists
  std::vector<float> exp_scratch_;              // [A]
  std::vector<int32_t> block_action_;           // [A + 1] a root's new edge block
  std::vector<float> block_prior_;              // [A + 1]
  uint32_t stamp_ = 0;
};

}  // namespace azero
