#include "tree.h"

#include <algorithm>
#include <cstdlib>
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
  compact(b, new_id, new_root, 0, mapping);
}

void Trees::replace_root_edges(int32_t b, const int32_t* actions, const float* priors,
                               int32_t count, std::vector<int32_t>& mapping) {
  const int32_t nodes = num_nodes[b];
  int32_t ne0, nv0;
  {
    TreeRow t = row(b);
    ne0 = t.num_edges[0];  // the root's block is [0, ne0): blocks come in node-id order
    nv0 = t.num_visited[0];
  }
  // listed[a]: position + 1 of action a in `actions`, 0 if not listed.
  std::vector<int32_t> listed(num_actions, 0);
  for (int32_t k = 0; k < count; ++k) listed[actions[k]] = k + 1;
  // The root grows a block longer than its old one: shift the other blocks right first, so that
  // every block still starts at or after the slot compact() moves it to.
  const int32_t shift = count - ne0;
  if (shift > 0) {
    reserve_edges(static_cast<int64_t>(num_edges_used[b]) + shift);
    TreeRow t = row(b);
    const int32_t used = num_edges_used[b];
    std::copy_backward(t.edge_action + ne0, t.edge_action + used, t.edge_action + used + shift);
    std::copy_backward(t.edge_child + ne0, t.edge_child + used, t.edge_child + used + shift);
    std::copy_backward(t.edge_visits + ne0, t.edge_visits + used, t.edge_visits + used + shift);
    std::copy_backward(t.edge_in_flight + ne0, t.edge_in_flight + used, t.edge_in_flight + used + shift);
    std::copy_backward(t.edge_prior + ne0, t.edge_prior + used, t.edge_prior + used + shift);
    std::copy_backward(t.edge_q_sum + ne0, t.edge_q_sum + used, t.edge_q_sum + used + shift);
    for (int32_t n = 1; n < nodes; ++n) {
      if (t.num_edges[n] == 0) continue;
      t.first_edge[n] += shift;
      if (t.best_unvisited[n] >= 0) t.best_unvisited[n] += shift;
    }
    num_edges_used[b] = used + shift;
  }
  TreeRow t = row(b);
  // Kept nodes: the root, the children of its listed visited edges, and their descendants.
  std::vector<int32_t> new_id(nodes, -1);
  int32_t kept = 0;
  new_id[0] = kept++;
  for (int32_t n = 1; n < nodes; ++n) {
    const int32_t p = t.parent[n];
    if (new_id[p] < 0) continue;
    if (p == 0 && listed[t.edge_action[t.parent_edge[n]]] == 0) continue;
    new_id[n] = kept++;
  }
  // The root's new block, built aside (it may overlap the old one) and written at [0, count).
  std::vector<int32_t> block_action, block_child, block_visits;
  std::vector<double> block_q_sum;
  block_action.reserve(count);
  int32_t visits = 1;
  double value_sum = t.raw_value[0];
  for (int32_t e = 0; e < nv0; ++e) {
    const int32_t a = t.edge_action[e];
    if (listed[a] == 0) continue;
    block_action.push_back(a);
    block_child.push_back(new_id[t.edge_child[e]]);
    block_visits.push_back(t.edge_visits[e]);
    block_q_sum.push_back(t.edge_q_sum[e]);
    visits += t.edge_visits[e];
    value_sum += t.edge_q_sum[e];
    listed[a] = -listed[a];  // has a child: not among the unvisited edges below
  }
  const int32_t num_visited = static_cast<int32_t>(block_action.size());
  for (int32_t k = 0; k < count; ++k) {
    if (listed[actions[k]] > 0) block_action.push_back(actions[k]);
  }
  for (int32_t e = 0; e < count; ++e) {
    const int32_t a = block_action[e];
    t.edge_action[e] = a;
    t.edge_prior[e] = priors[std::abs(listed[a]) - 1];
    if (e < num_visited) {
      t.edge_child[e] = block_child[e];
      t.edge_visits[e] = block_visits[e];
      t.edge_in_flight[e] = 0;
      t.edge_q_sum[e] = block_q_sum[e];
    } else {
      t.edge_child[e] = kUnvisited;
    }
  }
  t.first_edge[0] = 0;
  t.num_edges[0] = count;
  t.num_visited[0] = num_visited;
  t.best_unvisited[0] = -2;
  t.visits[0] = visits;
  t.value_sum[0] = value_sum;
  mapping.push_back(b);
  mapping.push_back(0);
  mapping.push_back(0);
  compact(b, new_id, 1, count, mapping);
}

void Trees::compact(int32_t b, const std::vector<int32_t>& new_id, int32_t first_node,
                    int32_t edge_cursor, std::vector<int32_t>& mapping) {
  TreeRow t = row(b);
  const int32_t count = num_nodes[b];
  // In place: new_id[n] <= n and edge blocks come in node-id order, so every write lands on a slot
  // already read.
  int32_t edges = edge_cursor;
  int32_t kept = 0;  // new ids are 0..k-1 in old order: those below first_node come first
  for (int32_t n = 0; n < first_node; ++n) kept += new_id[n] >= 0;
  for (int32_t n = first_node; n < count; ++n) {
    const int32_t m = new_id[n];
    if (m < 0) continue;
    ++kept;
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
    const int32_t p = t.parent[n];
    t.parent[m] = p >= 0 && new_id[p] >= 0 ? new_id[p] : kNoParent;
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
