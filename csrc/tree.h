// B search trees side by side, stored as struct-of-arrays indexed by node id (mctx's `Tree`) with
// each node's children as one contiguous block of edges over its legal actions only (lc0's Edge[]).
//
// Layout: node n of tree b lives at b * node_capacity + n, edge e of tree b at b * edge_capacity + e.
// Capacities grow geometrically (all rows together); hot loops never allocate.
//
// Invariants (checked by tests through the debug accessors):
//   * Node ids are handed out in creation order and compaction keeps that order, so
//     parent[n] < n for every non-root node, and edge blocks appear in node-id order.
//   * A node's edge block [first_edge, first_edge + num_edges) is split into a visited prefix of
//     num_visited edges, each owning a child node (edge_child >= 0), and an unvisited rest where only
//     edge_action and edge_prior are meaningful (the other edge fields are written when an edge is
//     swapped into the prefix).
//   * For a visited edge e with child c: edge_visits[e] == visits[c], and edge_q_sum[e] is the sum
//     of the values backed up through e from the PARENT's point of view
//     (reward[c] + discount[c] * value backed up into c).  value_sum[n] is from the point of view of
//     the side to move at n.  Two-player AlphaZero uses reward 0 and discount -1.
#pragma once

#include <cstdint>
#include <vector>

namespace azero {

constexpr int32_t kRootIndex = 0;
constexpr int32_t kUnvisited = -1;  // edge_child of an edge without a node (mctx's Tree.UNVISITED)
constexpr int32_t kNoParent = -1;

enum NodeState : uint8_t {
  kPending = 1,   // handed out by select, waiting for its evaluation in expand_backup
  kExpanded = 2,  // evaluated, owns an edge block
  kTerminal = 3,  // evaluated, game over: raw_value is the final result, no edges
};

// Pointers to one tree's slices; edge indices are local to the tree.
struct TreeRow {
  int32_t* parent;
  int32_t* parent_edge;
  int32_t* first_edge;
  int32_t* num_edges;
  int32_t* num_visited;
  int32_t* best_unvisited;
  int32_t* visits;
  int32_t* in_flight;
  uint8_t* state;
  double* value_sum;
  float* raw_value;
  float* reward;
  float* discount;
  int32_t* edge_action;
  int32_t* edge_child;
  int32_t* edge_visits;
  int32_t* edge_in_flight;
  float* edge_prior;
  double* edge_q_sum;
};

struct Trees {
  Trees(int32_t batch_size, int32_t num_actions, int64_t node_capacity, int64_t edge_capacity);

  int32_t batch_size;
  int32_t num_actions;
  int64_t node_capacity;
  int64_t edge_capacity;

  // per tree                                   // [B]
  std::vector<int32_t> num_nodes;               // 0: empty tree (no root yet)
  std::vector<int32_t> num_edges_used;

  // nodes                                      // [B, N]
  std::vector<int32_t> parent;                  // kNoParent at the root
  std::vector<int32_t> parent_edge;             // the edge (tree-local index) leading here
  std::vector<int32_t> first_edge;
  std::vector<int32_t> num_edges;               // legal actions (0 unless expanded)
  std::vector<int32_t> num_visited;             // edges in the visited prefix of the block
  std::vector<int32_t> best_unvisited;          // cached edge with the highest prior in the
                                                // unvisited rest; -1 none, -2 unknown
  std::vector<int32_t> visits;
  std::vector<int32_t> in_flight;               // virtual visits of leaves waiting for evaluation
  std::vector<uint8_t> state;                   // NodeState
  std::vector<double> value_sum;                // side to move's view
  std::vector<float> raw_value;                 // the evaluator's value (or the terminal result)
  std::vector<float> reward;                    // reward of the edge leading here
  std::vector<float> discount;                  // discount of the edge leading here

  // edges                                      // [B, E]
  std::vector<int32_t> edge_action;
  std::vector<int32_t> edge_child;              // node id; kUnvisited outside the visited prefix
  std::vector<int32_t> edge_visits;
  std::vector<int32_t> edge_in_flight;
  std::vector<float> edge_prior;                // probability (softmax over the legal actions)
  std::vector<double> edge_q_sum;               // parent's view

  TreeRow row(int32_t b);

  // Grow capacities (geometrically) so that every tree can hold `nodes` nodes / `edges` edges.
  void reserve_nodes(int64_t nodes);
  void reserve_edges(int64_t edges);

  void clear(int32_t b) {
    num_nodes[b] = 0;
    num_edges_used[b] = 0;
  }

  // Allocates node `n == num_nodes[b]` as a fresh node (state `kPending`). Capacity must suffice.
  int32_t new_node(int32_t b, int32_t parent_id, int32_t parent_edge_id);

  // Makes `new_root` (a child of the root, expanded) the root of tree b, dropping everything
  // outside its subtree and renumbering the kept nodes 0..k-1 in their old order. Appends
  // (b, new id, old id) for every kept node to `mapping`.
  void reroot(int32_t b, int32_t new_root, std::vector<int32_t>& mapping);

  // Gives the (expanded) root of tree b a new edge block over `actions` [count] (increasing, no
  // repeats) with `priors` [count]. A visited root edge whose action is listed keeps its child and
  // that child's subtree; the subtrees under the other root edges are dropped and the kept nodes
  // renumbered in their old order. The root's block becomes: the kept visited edges (old order),
  // then the listed actions without a child (increasing). The root's visits and value sum become
  // 1 + the kept edges' visits and raw_value[root] + their backed-up values. Appends
  // (b, new id, old id) for every kept node (root included) to `mapping`.
  void replace_root_edges(int32_t b, const int32_t* actions, const float* priors, int32_t count,
                          std::vector<int32_t>& mapping);

 private:
  // Moves the kept nodes n >= first_node (new_id[n] >= 0; new_id increasing over them and
  // new_id[n] <= n) to new_id[n] and their edge blocks to consecutive slots from `edge_cursor`
  // (each old block must start at or after the slot it moves to), then points every kept child
  // at its parent's edge. Every visited edge of a moved block must lead to a kept node. Nodes
  // below first_node stay where they are with their blocks, whose edge_child must already hold
  // new ids. Sets num_nodes / num_edges_used.
  void compact(int32_t b, const std::vector<int32_t>& new_id, int32_t first_node,
               int32_t edge_cursor, std::vector<int32_t>& mapping);
};

}  // namespace azero
