#include "tree.h"

#include <algorithm>
#include <stdexcept>

namespace azero {

namespace {

// Re-lays out a [B, old_cap] array as [B, new_cap], keeping the first `used[b]` entries of row b.
template <class T>
void regrow(std::vector<T>& v, int32_t batch, int64_t old_cap, int64_t new_cap,
            const std::vector<int32_t>& used) {
  std::vector<T> grown(static_cast<size_t>(batch) * new_cap);
  for (int32_t b = 0; b < batch; ++b) {
    std::copy(v.begin() + b * old_cap, v.begin() + b * old_cap + used[b], grown.begin() + b * new_cap);
  }
  v.swap(grown);
}

template <class T>
void allocate(std::vector<T>& v, int32_t batch, int64_t cap) {
  v.assign(static_cast<size_t>(batch) * cap, T{});
}

}  // namespace

Trees::Trees(int32_t batch_size_, int32_t num_actions_, int64_t node_capacity_, int64_t edge_capacity_)
    : batch_size(batch_size_),
      num_actions(num_actions_),
      node_capacity(std::max<int64_t>(node_capacity_, 1)),
      edge_capacity(std::max<int64_t>(edge_capacity_, num_actions_)) {
  if (batch_size <= 0) throw std::invalid_argument("batch_size must be positive");
  if (num_actions <= 0) throw std::invalid_argument("num_actions must be positive");
  num_nodes.assign(batch_size, 0);
  num_edges_used.assign(batch_size, 0);
  for (auto* v : {&parent, &parent_edge, &first_edge, &num_edges, &num_visited, &best_unvisited,
                  &visits, &in_flight}) {
    allocate(*v, batch_size, node_capacity);
  }
  allocate(state, batch_size, node_capacity);
  allocate(value_sum, batch_size, node_capacity);
  for (auto* v : {&raw_value, &reward, &discount}) allocate(*v, batch_size, node_capacity);
  for (auto* v : {&edge_action, &edge_child, &edge_visits, &edge_in_flight}) {
    allocate(*v, batch_size, edge_capacity);
  }
  allocate(edge_prior, batch_size, edge_capacity);
  allocate(edge_q_sum, batch_size, edge_capacity);
}

TreeRow Trees::row(int32_t b) {
  const int64_t n = b * node_capacity;
  const int64_t e = b * edge_capacity;
  return TreeRow{parent.data() + n,      parent_edge.data() + n, first_edge.data() + n,
                 num_edges.data() + n,   num_visited.data() + n, best_unvisited.data() + n,
                 visits.data() + n,      in_flight.data() + n,   state.data() + n,
                 value_sum.data() + n,   raw_value.data() + n,   reward.data() + n,
                 discount.data() + n,    edge_action.data() + e, edge_child.data() + e,
                 edge_visits.data() + e, edge_in_flight.data() + e, edge_prior.data() + e,
                 edge_q_sum.data() + e};
}

void Trees::reserve_nodes(int64_t nodes) {
  if (nodes <= node_capacity) return;
  const int64_t cap = std::max(nodes, 2 * node_capacity);
  for (auto* v : {&parent, &parent_edge, &first_edge, &num_edges, &num_visited, &best_unvisited,
                  &visits, &in_flight}) {
    regrow(*v, batch_size, node_capacity, cap, num_nodes);
  }
  regrow(state, batch_size, node_capacity, cap, num_nodes);
  regrow(value_sum, batch_size, node_capacity, cap, num_nodes);
  for (auto* v : {&raw_value, &reward, &discount}) regrow(*v, batch_size, node_capacity, cap, num_nodes);
  node_capacity = cap;
}

void Trees::reserve_edges(int64_t edges) {
  if (edges <= edge_capacity) return;
  const int64_t cap = std::max(edges, 2 * edge_capacity);
  for (auto* v : {&edge_action, &edge_child, &edge_visits, &edge_in_flight}) {
    regrow(*v, batch_size, edge_capacity, cap, num_edges_used);
  }
  regrow(edge_prior, batch_size, edge_capacity, cap, num_edges_used);
  regrow(edge_q_sum, batch_size, edge_capacity, cap, num_edges_used);
  edge_capacity = cap;
}

int32_t Trees::new_node(int32_t b, int32_t parent_id, int32_t parent_edge_id) {
  TreeRow t = row(b);
  const int32_t n = num_nodes[b]++;
  t.parent[n] = parent_id;
  t.parent_edge[n] = parent_edge_id;
  t.first_edge[n] = 0;
  t.num_edges[n] = 0;
  t.num_visited[n] = 0;
  t.best_unvisited[n] = -2;
  t.visits[n] = 0;
  t.in_flight[n] = 0;
  t.state[n] = kPending;
  t.value_sum[n] = 0.0;
  t.raw_value[n] = 0.0f;
  t.reward[n] = 0.0f;
  t.discount[n] = 0.0f;
  return n;
}

void Trees::reroot(int32_t b, int32_t new_root, std::vector<int32_t>& mapping) {
  TreeRow t = row(b);
  const int32_t count = num_nodes[b];
  // new_id[n] for kept nodes, -1 for dropped ones. parent[n] < n, so one forward sweep suffices;
  // nodes below new_root in id order are never in its subtree.
  std::vector<int32_t> new_id(count, -1);
  int32_t kept = 0;
  new_id[new_root] = kept++;
  for (int32_t n = new_root + 1; n < count; ++n) {
    const int32_t p = t.parent[n];
    if (p >= new_root && new_id[p] >= 0) new_id[n] = kept++;
  }
  // In place: new_id[n] <= n and edge blocks come in node-id order, so every write lands on a slot
  // already read.
  int32_t edges = 0;
  for (int32_t n = new_root; n < count; ++n) {
    const int32_t m = new_id[n];
    if (m < 0) continue;
    mapping.push_back(b);
    mapping.push_back(m);
    mapping.push_back(n);
    const int32_t old_first = t.first_edge[n];
    const int32_t ne = t.num_edges[n];
    const int32_t nv = t.num_visited[n];
    for (int32_t i = 0; i < ne; ++i) {
      const int32_t from = old_first + i, to = edges + i;
      t.edge_action[to] = t.edge_action[from];
      t.edge_prior[to] = t.edge_prior[from];
      if (i < nv) {
        t.edge_child[to] = new_id[t.edge_child[from]];
        t.edge_visits[to] = t.edge_visits[from];
        t.edge_in_flight[to] = t.edge_in_flight[from];
        t.edge_q_sum[to] = t.edge_q_sum[from];
      }
    }
    int32_t best = t.best_unvisited[n];
    if (best >= 0) best = best - old_first + edges;
    t.parent[m] = (n == new_root) ? kNoParent : new_id[t.parent[n]];
    t.parent_edge[m] = -1;  // set from the parent's moved block below
    t.first_edge[m] = ne > 0 ? edges : 0;
    t.num_edges[m] = ne;
    t.num_visited[m] = nv;
    t.best_unvisited[m] = best;
    t.visits[m] = t.visits[n];
    t.in_flight[m] = t.in_flight[n];
    t.state[m] = t.state[n];
    t.value_sum[m] = t.value_sum[n];
    t.raw_value[m] = t.raw_value[n];
    t.reward[m] = t.reward[n];
    t.discount[m] = t.discount[n];
    edges += ne;
  }
  // Parent edges: every visited edge names its (new) child; point the child back at it.
  for (int32_t m = 0; m < kept; ++m) {
    const int32_t first = t.first_edge[m];
    for (int32_t i = 0; i < t.num_visited[m]; ++i) t.parent_edge[t.edge_child[first + i]] = first + i;
  }
  t.parent_edge[0] = -1;
  num_nodes[b] = kept;
  num_edges_used[b] = edges;
}

}  // namespace azero
