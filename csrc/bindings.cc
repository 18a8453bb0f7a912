// Python bindings of the batched search: one class, `azero._mcts.Search`. Arrays cross as numpy
// arrays of exact dtypes (TypeError otherwise) and shapes (ValueError otherwise); C++ errors become
// ValueError (bad values), IndexError (ids out of range) or RuntimeError (calls out of order).
// select / expand_backup / start / outputs / advance run without the GIL.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "search.h"

namespace py = pybind11;
using azero::Algorithm;
using azero::Leaf;
using azero::LeafEvaluations;
using azero::Search;
using azero::SearchParams;

namespace {

template <class T> const char* dtype_name();
template <> const char* dtype_name<float>() { return "float32"; }
template <> const char* dtype_name<int32_t>() { return "int32"; }
template <> const char* dtype_name<bool>() { return "bool"; }

template <class T>
using CArray = py::array_t<T, py::array::c_style>;

std::string shape_str(const std::vector<py::ssize_t>& shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += shape[i] < 0 ? std::string("*") : std::to_string(shape[i]);
  }
  return s + (shape.size() == 1 ? ",)" : ")");
}

// A C-contiguous array of exactly dtype T and the given shape (-1: any size), or TypeError /
// ValueError naming the argument.
template <class T>
CArray<T> input(py::handle obj, const char* name, const std::vector<py::ssize_t>& shape) {
  if (!py::isinstance<py::array>(obj)) {
    throw py::type_error(std::string(name) + " must be a numpy array of " + dtype_name<T>() + ", got " +
                         std::string(py::str(py::type::handle_of(obj).attr("__name__"))));
  }
  if (!py::array_t<T>::check_(obj)) {
    throw py::type_error(std::string(name) + " must have dtype " + dtype_name<T>() + ", got " +
                         std::string(py::str(py::reinterpret_borrow<py::array>(obj).dtype())));
  }
  auto arr = py::reinterpret_borrow<py::array>(obj);
  bool ok = arr.ndim() == static_cast<py::ssize_t>(shape.size());
  for (size_t i = 0; ok && i < shape.size(); ++i) ok = shape[i] < 0 || arr.shape(i) == shape[i];
  if (!ok) {
    std::vector<py::ssize_t> got(arr.shape(), arr.shape() + arr.ndim());
    throw py::value_error(std::string(name) + " must have shape " + shape_str(shape) + ", got " +
                          shape_str(got));
  }
  return CArray<T>::ensure(arr);
}

template <class T>
const T* ptr(const CArray<T>& a) {
  return a.size() ? a.data() : nullptr;
}

const uint8_t* bool_ptr(const CArray<bool>& a) {
  return reinterpret_cast<const uint8_t*>(a.data());
}

// Holds the converted arrays of one evaluation batch alive while C++ reads them.
struct Evaluations {
  CArray<float> values, logits, rewards, discounts;
  CArray<bool> terminal, legal;
  CArray<int32_t> legal_actions, legal_offsets;
  LeafEvaluations ev;

  Evaluations(int32_t count, int32_t A, py::object values_, py::object logits_, py::object legal_,
              py::object legal_actions_, py::object legal_offsets_, py::object terminal_,
              py::object rewards_, py::object discounts_) {
    values = input<float>(values_, "values", {count});
    ev.values = values.data();
    if (!terminal_.is_none()) {
      terminal = input<bool>(terminal_, "terminal", {count});
      ev.terminal = bool_ptr(terminal);
    }
    if (!rewards_.is_none()) {
      rewards = input<float>(rewards_, "rewards", {count});
      ev.rewards = rewards.data();
    }
    if (!discounts_.is_none()) {
      discounts = input<float>(discounts_, "discounts", {count});
      ev.discounts = discounts.data();
    }
    if (logits_.is_none()) {
      ev.rows = 0;
    } else {
      logits = input<float>(logits_, "logits", {-1, A});
      ev.rows = static_cast<int32_t>(logits.shape(0));
      ev.logits = ptr(logits);
    }
    if (!legal_.is_none() && !legal_actions_.is_none()) {
      throw py::value_error("pass legal (a mask) or legal_actions/legal_offsets, not both");
    }
    if (!legal_.is_none()) {
      legal = input<bool>(legal_, "legal", {ev.rows, A});
      ev.legal.mask = bool_ptr(legal);
    } else if (!legal_actions_.is_none() || !legal_offsets_.is_none()) {
      if (legal_actions_.is_none() || legal_offsets_.is_none()) {
        throw py::value_error("legal_actions and legal_offsets go together");
      }
      legal_actions = input<int32_t>(legal_actions_, "legal_actions", {-1});
      legal_offsets = input<int32_t>(legal_offsets_, "legal_offsets", {ev.rows + 1});
      ev.legal.actions = legal_actions.data();
      ev.legal.offsets = legal_offsets.data();
      ev.legal.num_listed = legal_actions.shape(0);
    }
  }
};

// The arguments of expand_roots / refresh_roots: rows int32 [K] and one evaluation per row;
// calls f(rows, K, evaluations) without the GIL.
template <class F>
void with_root_evaluations(Search& s, py::object rows, py::object values, py::object logits,
                           py::object legal, py::object legal_actions, py::object legal_offsets,
                           F&& f) {
  auto r = input<int32_t>(rows, "rows", {-1});
  const int32_t k = static_cast<int32_t>(r.shape(0));
  Evaluations ev(k, s.num_actions(), values, logits, legal, legal_actions, legal_offsets,
                 py::none(), py::none(), py::none());
  if (ev.ev.rows != k) throw py::value_error("logits must have one row per root");
  py::gil_scoped_release release;
  f(r.data(), k, ev.ev);
}

// (row, new id, old id) triples as int32 [3, K].
CArray<int32_t> mapping_array(const std::vector<int32_t>& mapping) {
  const py::ssize_t K = static_cast<py::ssize_t>(mapping.size() / 3);
  CArray<int32_t> out({py::ssize_t{3}, K});
  int32_t* o = out.mutable_data();
  for (py::ssize_t i = 0; i < K; ++i) {
    o[i] = mapping[3 * i];
    o[K + i] = mapping[3 * i + 1];
    o[2 * K + i] = mapping[3 * i + 2];
  }
  return out;
}

py::dict node_info(Search& s, int32_t row, int32_t node) {
  auto& trees = s.trees();
  if (row < 0 || row >= s.batch_size()) throw py::index_error("row out of range");
  if (node < 0 || node >= trees.num_nodes[row]) throw py::index_error("node id out of range");
  azero::TreeRow t = trees.row(row);
  static const char* names[] = {"?", "pending", "expanded", "terminal"};
  py::dict d;
  d["parent"] = t.parent[node];
  d["state"] = names[t.state[node] <= 3 ? t.state[node] : 0];
  d["visits"] = t.visits[node];
  d["value"] = t.visits[node] ? t.value_sum[node] / t.visits[node] : 0.0;
  d["raw_value"] = t.raw_value[node];
  d["reward"] = t.reward[node];
  d["discount"] = t.discount[node];
  d["num_edges"] = t.num_edges[node];
  d["num_visited"] = t.num_visited[node];
  d["action"] = node == 0 ? -1 : t.edge_action[t.parent_edge[node]];
  return d;
}

py::dict children(Search& s, int32_t row, int32_t node) {
  auto& trees = s.trees();
  if (row < 0 || row >= s.batch_size()) throw py::index_error("row out of range");
  if (node < 0 || node >= trees.num_nodes[row]) throw py::index_error("node id out of range");
  azero::TreeRow t = trees.row(row);
  const int32_t ne = t.num_edges[node], nv = t.num_visited[node], first = t.first_edge[node];
  std::vector<int32_t> order(ne);
  for (int32_t i = 0; i < ne; ++i) order[i] = i;
  std::sort(order.begin(), order.end(),
            [&](int32_t a, int32_t b) { return t.edge_action[first + a] < t.edge_action[first + b]; });
  CArray<int32_t> actions(ne), child(ne), visits(ne);
  CArray<float> prior(ne);
  CArray<double> q(ne);
  for (int32_t j = 0; j < ne; ++j) {
    const int32_t i = order[j], e = first + i;
    actions.mutable_data()[j] = t.edge_action[e];
    prior.mutable_data()[j] = t.edge_prior[e];
    const bool visited = i < nv;
    child.mutable_data()[j] = visited ? t.edge_child[e] : azero::kUnvisited;
    visits.mutable_data()[j] = visited ? t.edge_visits[e] : 0;
    q.mutable_data()[j] = visited && t.edge_visits[e] ? t.edge_q_sum[e] / t.edge_visits[e]
                                                      : std::numeric_limits<double>::quiet_NaN();
  }
  py::dict d;
  d["actions"] = actions;
  d["priors"] = prior;
  d["child"] = child;
  d["visits"] = visits;
  d["q"] = q;
  return d;
}

}  // namespace

PYBIND11_MODULE(_mcts, m) {
  m.doc() = "Batched MCTS (PUCT and Gumbel) over B struct-of-arrays trees; see azero/search.py.";
  m.attr("ROOT_INDEX") = azero::kRootIndex;
  m.attr("UNVISITED") = azero::kUnvisited;

  py::class_<Search>(m, "Search", R"doc(
B search trees side by side and the two GIL-free halves of a simulation step.

    core = Search(batch_size, num_actions, algorithm="gumbel", ...)
    core.expand_roots(rows, values, logits, legal)         # roots of empty trees
    core.start(num_simulations, active, gumbel=..., dirichlet=...)
    while True:
        leaves = core.select()                             # int32 [4, L]: row, parent, action, node
        if leaves.shape[1] == 0: break
        ... leaf states from (row, parent) states and action; evaluate them ...
        core.expand_backup(values, logits, legal, terminal=..., rewards=..., discounts=...)
    action, visit_counts, policy, root_value, root_q = core.outputs()
    mapping = core.advance(actions, active)               # int32 [3, K]: row, new id, old id
)doc")
      .def(py::init([](int32_t batch_size, int32_t num_actions, const std::string& algorithm,
                       double pb_c_base, double pb_c_init, py::object value_bounds,
                       int32_t max_num_considered_actions, double c_visit, double c_scale,
                       int32_t leaves_per_step, double virtual_loss, float discount,
                       bool tree_min_max, double forced_playouts_k) {
             SearchParams p;
             if (algorithm == "puct") p.algorithm = Algorithm::kPuct;
             else if (algorithm == "gumbel") p.algorithm = Algorithm::kGumbel;
             else throw py::value_error("algorithm must be 'puct' or 'gumbel', got '" + algorithm + "'");
             p.pb_c_base = pb_c_base;
             p.pb_c_init = pb_c_init;
             if (value_bounds.is_none()) {
               p.fixed_value_bounds = false;
             } else {
               auto bounds = value_bounds.cast<std::pair<double, double>>();
               p.fixed_value_bounds = true;
               p.value_min = bounds.first;
               p.value_max = bounds.second;
             }
             p.max_num_considered_actions = max_num_considered_actions;
             p.c_visit = c_visit;
             p.c_scale = c_scale;
             p.leaves_per_step = leaves_per_step;
             p.virtual_loss = virtual_loss;
             p.default_discount = discount;
             p.tree_min_max = tree_min_max;
             p.forced_playouts_k = forced_playouts_k;
             return new Search(batch_size, num_actions, p);
           }),
           py::arg("batch_size"), py::arg("num_actions"), py::kw_only(),
           py::arg("algorithm") = "gumbel", py::arg("pb_c_base") = 19652.0,
           py::arg("pb_c_init") = 1.25, py::arg("value_bounds") = py::make_tuple(-1.0, 1.0),
           py::arg("max_num_considered_actions") = 16, py::arg("c_visit") = 50.0,
           py::arg("c_scale") = 0.1, py::arg("leaves_per_step") = 1,
           py::arg("virtual_loss") = 1.0, py::arg("discount") = -1.0f,
           py::arg("tree_min_max") = false, py::arg("forced_playouts_k") = 0.0,
           "value_bounds: (min, max) normalises PUCT's Q by fixed bounds (AlphaZero); None by the "
           "parent's value and its children's Q (mctx qtransform_by_parent_and_siblings). "
           "tree_min_max: PUCT normalises Q by the running min/max of the Qs backed up in the "
           "whole tree during the search (MuZero pseudocode's MinMaxStats), starting from "
           "value_bounds if given. discount: per-edge discount when expand_backup gets none "
           "(-1: two players, sign flip). forced_playouts_k: PUCT, KataGo's forced playouts and "
           "policy target pruning in the rows start() is given as forced_rows (0: off).")
      .def_property_readonly("batch_size", &Search::batch_size)
      .def_property_readonly("num_actions", &Search::num_actions)
      .def_property_readonly("node_capacity", [](Search& s) { return s.trees().node_capacity; })
      .def_property_readonly("edge_capacity", [](Search& s) { return s.trees().edge_capacity; })
      .def_property_readonly("step_in_progress", &Search::step_in_progress)
      .def("num_nodes", [](Search& s) {
             CArray<int32_t> out(s.batch_size());
             std::copy(s.trees().num_nodes.begin(), s.trees().num_nodes.end(), out.mutable_data());
             return out;
           }, "int32 [B]: nodes in each tree (0: no root).")
      .def("reset", [](Search& s, py::object rows) {
             if (rows.is_none()) return s.reset(nullptr, 0);
             auto r = input<int32_t>(rows, "rows", {-1});
             s.reset(r.data(), static_cast<int32_t>(r.shape(0)));
           }, py::arg("rows") = py::none(), "Drop the trees of rows (int32 [K]; all if None).")
      .def("abort", &Search::abort, "Drop the leaves of an interrupted step (their trees are reset).")
      .def("expand_roots",
           [](Search& s, py::object rows, py::object values, py::object logits, py::object legal,
              py::object legal_actions, py::object legal_offsets) {
             with_root_evaluations(s, rows, values, logits, legal, legal_actions, legal_offsets,
                                   [&](const int32_t* r, int32_t k, const LeafEvaluations& ev) {
                                     s.expand_roots(r, k, ev);
                                   });
           },
           py::arg("rows"), py::arg("values"), py::arg("logits"), py::arg("legal") = py::none(),
           py::arg("legal_actions") = py::none(), py::arg("legal_offsets") = py::none(),
           "rows int32 [K], values float32 [K], logits float32 [K, A], legal bool [K, A] or "
           "legal_actions int32 [sum] + legal_offsets int32 [K + 1] (neither: all legal).")
      .def("refresh_roots",
           [](Search& s, py::object rows, py::object values, py::object logits, py::object legal,
              py::object legal_actions, py::object legal_offsets) {
             std::vector<int32_t> mapping;
             with_root_evaluations(s, rows, values, logits, legal, legal_actions, legal_offsets,
                                   [&](const int32_t* r, int32_t k, const LeafEvaluations& ev) {
                                     s.refresh_roots(r, k, ev, mapping);
                                   });
             return mapping_array(mapping);
           },
           py::arg("rows"), py::arg("values"), py::arg("logits"), py::arg("legal") = py::none(),
           py::arg("legal_actions") = py::none(), py::arg("legal_offsets") = py::none(),
           "MuZero: give each listed row's root this evaluation (arguments as expand_roots). A "
           "row without a tree gets a root; a kept tree gets the new root value and priors and "
           "keeps only the subtrees under legal root actions. Returns int32 [3, K]: (row, new id, "
           "old id) of every node of a kept tree, to move node data along.")
      .def("start",
           [](Search& s, int32_t num_simulations, py::object active, py::object gumbel,
              py::object dirichlet, double dirichlet_fraction, py::object simulations,
              py::object noise_rows, py::object forced_rows) {
             const int32_t B = s.batch_size(), A = s.num_actions();
             CArray<bool> act, noisy, forced;
             CArray<float> g, d;
             CArray<int32_t> sims;
             if (!active.is_none()) act = input<bool>(active, "active", {B});
             if (!gumbel.is_none()) g = input<float>(gumbel, "gumbel", {B, A});
             if (!dirichlet.is_none()) d = input<float>(dirichlet, "dirichlet", {B, A});
             if (!simulations.is_none()) sims = input<int32_t>(simulations, "simulations", {B});
             if (!noise_rows.is_none()) noisy = input<bool>(noise_rows, "noise_rows", {B});
             if (!forced_rows.is_none()) forced = input<bool>(forced_rows, "forced_rows", {B});
             py::gil_scoped_release release;
             s.start(num_simulations, active.is_none() ? nullptr : bool_ptr(act),
                     gumbel.is_none() ? nullptr : g.data(), dirichlet.is_none() ? nullptr : d.data(),
                     dirichlet_fraction, simulations.is_none() ? nullptr : sims.data(),
                     noise_rows.is_none() ? nullptr : bool_ptr(noisy),
                     forced_rows.is_none() ? nullptr : bool_ptr(forced));
           },
           py::arg("num_simulations"), py::arg("active") = py::none(), py::kw_only(),
           py::arg("gumbel") = py::none(), py::arg("dirichlet") = py::none(),
           py::arg("dirichlet_fraction") = 0.25, py::arg("simulations") = py::none(),
           py::arg("noise_rows") = py::none(), py::arg("forced_rows") = py::none(),
           "Begin a search on the active rows (bool [B]; all if None). gumbel float32 [B, A]: "
           "noise added to the root logits (Gumbel). dirichlet float32 [B, A]: Gamma(alpha) "
           "samples, normalised over each root's legal actions and mixed into its priors (PUCT). "
           "simulations int32 [B]: each row's own budget instead of num_simulations (playout cap "
           "randomisation). noise_rows bool [B]: the rows the noise applies to (None: all). "
           "forced_rows bool [B]: rows with forced playouts and a pruned policy target (PUCT, "
           "forced_playouts_k > 0; None: none).")
      .def("select",
           [](Search& s, bool flat) {
             const std::vector<Leaf>* leaves;
             {
               py::gil_scoped_release release;
               leaves = &s.select();
             }
             const py::ssize_t L = static_cast<py::ssize_t>(leaves->size());
             const int64_t N = s.trees().node_capacity;
             CArray<int32_t> out({py::ssize_t{flat ? 3 : 4}, L});
             int32_t* o = out.mutable_data();
             for (py::ssize_t i = 0; i < L; ++i) {
               const Leaf& leaf = (*leaves)[i];
               if (flat) {
                 o[i] = static_cast<int32_t>(leaf.row * N + leaf.parent);
                 o[L + i] = leaf.action;
                 o[2 * L + i] = static_cast<int32_t>(leaf.row * N + leaf.node);
               } else {
                 o[i] = leaf.row;
                 o[L + i] = leaf.parent;
                 o[2 * L + i] = leaf.action;
                 o[3 * L + i] = leaf.node;
               }
             }
             return out;
           },
           py::arg("flat") = false,
           "One simulation step: int32 [4, L] rows (batch row, parent node, action, new node) of "
           "the leaves to evaluate; L == 0 once every active tree has spent its budget. flat=True: "
           "int32 [3, L] (row * node_capacity + parent, action, row * node_capacity + node), "
           "indices into node data laid out as [B * node_capacity, ...].")
      .def("expand_backup",
           [](Search& s, py::object values, py::object logits, py::object legal, py::object terminal,
              py::object rewards, py::object discounts, py::object legal_actions,
              py::object legal_offsets) {
             if (!s.step_in_progress()) throw std::logic_error("expand_backup without a pending select");
             Evaluations ev(s.num_pending(), s.num_actions(), values, logits, legal, legal_actions,
                            legal_offsets, terminal, rewards, discounts);
             py::gil_scoped_release release;
             s.expand_backup(ev.ev);
           },
           py::arg("values"), py::arg("logits") = py::none(), py::arg("legal") = py::none(),
           py::kw_only(), py::arg("terminal") = py::none(), py::arg("rewards") = py::none(),
           py::arg("discounts") = py::none(), py::arg("legal_actions") = py::none(),
           py::arg("legal_offsets") = py::none(),
           "Evaluations of the L leaves of the last select, in its order. values float32 [L] (side "
           "to move's view; the result for terminal leaves); logits float32 [L or L', A] with L' the "
           "number of non-terminal leaves (row j then belongs to the j-th of them); legal bool "
           "[rows of logits, A], or legal_actions int32 + legal_offsets int32 [rows + 1], or neither "
           "(every action legal: MuZero); terminal bool [L]; rewards / discounts float32 [L] of the "
           "edge into each leaf (default 0 and the constructor's discount).")
      .def("outputs",
           [](Search& s) {
             const py::ssize_t B = s.batch_size(), A = s.num_actions();
             CArray<int32_t> action(B), visits({B, A});
             CArray<float> policy({B, A}), value(B), q({B, A});
             int32_t *pa = action.mutable_data(), *pv = visits.mutable_data();
             float *pp = policy.mutable_data(), *pval = value.mutable_data(), *pq = q.mutable_data();
             {
               py::gil_scoped_release release;
               s.outputs(pa, pv, pp, pval, pq);
             }
             return py::make_tuple(action, visits, policy, value, q);
           },
           "(action int32 [B] (Gumbel's choice; -1 for PUCT and inactive rows), visit_counts int32 "
           "[B, A], policy float32 [B, A] (improved policy for Gumbel, visit distribution for PUCT), "
           "root_value float32 [B] (NaN if inactive), root_q float32 [B, A] (NaN if unvisited)).")
      .def("advance",
           [](Search& s, py::object actions, py::object active) {
             const int32_t B = s.batch_size();
             auto a = input<int32_t>(actions, "actions", {B});
             CArray<bool> act;
             if (!active.is_none()) act = input<bool>(active, "active", {B});
             std::vector<int32_t> mapping;
             {
               py::gil_scoped_release release;
               s.advance(a.data(), active.is_none() ? nullptr : bool_ptr(act), mapping);
             }
             return mapping_array(mapping);
           },
           py::arg("actions"), py::arg("active") = py::none(),
           "After actions[b] (int32 [B]) was played in each active row: keep the child's subtree "
           "(renumbered 0..k-1, old order kept) or drop the tree if that child was never expanded. "
           "Returns int32 [3, K]: (row, new id, old id) of every kept node, to move node data along.")
      .def("check_invariants", &Search::check_invariants, py::arg("row"),
           "Raise RuntimeError naming the first broken tree invariant of a row.")
      .def("node", &node_info, py::arg("row"), py::arg("node"), "Debug: one node's fields.")
      .def("children", &children, py::arg("row"), py::arg("node"),
           "Debug: a node's edges in action order: actions, priors, child (-1 unvisited), visits, q.")
      .def_static("considered_visits", &Search::considered_visits,
                  py::arg("max_num_considered_actions"), py::arg("num_simulations"),
                  "Sequential Halving's visit schedule (mctx seq_halving).");
}
