"""The search over a learned model (MuZero, issue 13 item 2) and its tests of item 7: a perfect
model gives the AlphaZero search's visits, reward and value signs for the side to move, the torch
latent store equals the numpy one, and the MuZero player (root from the real position, model below,
tree kept across moves) in arena matches."""
from dataclasses import replace

import numpy as np
import pytest
import torch

from azero import arena, checkpoint
from azero.config import ModelConfig
from azero.games import make
from azero.nets import make_evaluator, make_net
from azero.nets.muzero import MuZeroNet
from azero.nets.muzero_evaluator import MuZeroEvaluator, MuZeroSearch
from azero.players import MuZeroPlayer, RandomPlayer, make_player, random_legal_actions
from azero.search import BatchedSearch, ModelSearch, SearchConfig, step_leaves
from fake_games import TurnTree

CONNECT4 = make("connect4")
# The logit a perfect model gives an action its rules forbid: exp(-1e9 - max) is exactly 0 in
# the core's softmax, so the prior is exactly 0 and the priors of the legal actions are those
# the AlphaZero tree computes over its legal edges (the core sums them exactly, in double).
FORBIDDEN = np.float32(-1e9)


# one torch thread (conftest.one_torch_thread): tiny nets on a shared 2-core box
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def per_state(evaluate):
    """The evaluator one state at a time, memoised: the same state gets the same bits whatever
    batch it comes in (a network's convolutions may round differently per batch size, and the
    two searches batch their leaves differently)."""
    memo = {}

    def evaluator(states):
        out = []
        for s in states:
            key = s.tobytes()
            if key not in memo:
                logits, values = evaluate(s[None])
                memo[key] = (np.asarray(logits, np.float32)[0], np.float32(values[0]))
            out.append(memo[key])
        A = CONNECT4.spec.num_actions if not out else len(out[0][0])
        return (np.array([o[0] for o in out], np.float32).reshape(len(out), A),
                np.array([o[1] for o in out], np.float32))
    return evaluator


def perfect_model(game, evaluate):
    """recurrent_fn with the real rules as dynamics: latent = the state row itself (numpy, or a
    torch tensor for a torch store). Reward: the game's result for the player who moved (nonzero
    only on a move that ends the game); prediction: `evaluate` at live states, its logits at the
    actions the rules forbid set to FORBIDDEN; discount: step_leaves' sign from to_play (+1 where
    the mover moves again). A terminal state is absorbing, as in the paper: every action leaves it
    where it is with reward 0, and its value is 0."""
    A = game.spec.num_actions

    def recurrent_fn(latents, actions):
        as_torch = isinstance(latents, torch.Tensor)
        states = latents.cpu().numpy() if as_torch else latents
        n = len(actions)
        nxt = states.copy()
        rewards, values = np.zeros(n, np.float32), np.zeros(n, np.float32)
        discounts = np.full(n, -1.0, np.float32)
        logits = np.zeros((n, A), np.float32)
        live = np.flatnonzero(~game.terminal(states))      # the others are absorbing
        if len(live):
            step = step_leaves(game, states[live], actions[live])
            nxt[live] = step.children
            discounts[live] = step.discounts
            rewards[live] = step.discounts * step.result     # the result, from the mover's view
            going = ~step.terminal
            if going.any():
                lg, v = evaluate(step.children[going])
                logits[live[going]] = np.where(step.legal[going], lg, FORBIDDEN)
                values[live[going]] = v
        return (torch.from_numpy(nxt) if as_torch else nxt), rewards, discounts, logits, values
    return recurrent_fn


def positions(game, count, plies, seed):
    """`count` live positions after `plies` uniformly random moves from the start."""
    rng = np.random.default_rng(seed)
    found = []
    while len(found) < count:
        s = game.initial_states(1)
        for _ in range(plies):
            s = game.step(s, random_legal_actions(game.legal_mask(s), rng))
            if game.terminal(s)[0]:
                break
        else:
            found.append(s[0])
    return np.array(found)


def tiny_resnet_evaluator(game, seed=0):
    torch.manual_seed(seed)
    net = make_net(game.spec, ModelConfig(blocks=1, channels=8, value_hidden=8)).eval()
    return per_state(make_evaluator(net, game, "cpu"))


def model_search(game, evaluate, roots, config, device=None):
    """ModelSearch with the perfect model over `roots`: (output, search)."""
    B = len(roots)
    dtype = torch.int64 if device is not None else np.int64
    search = ModelSearch(game.spec.num_actions, (game.spec.state_size,), config, B,
                         latent_dtype=dtype, device=device)
    logits, values = evaluate(roots)
    latents = torch.from_numpy(roots) if device is not None else roots
    out = search.run(latents, logits, values, perfect_model(game, evaluate),
                     root_legal=game.legal_mask(roots), add_noise=False, temperature=0)
    return out, search


def terminal_nodes(core, B):
    return sum(core.node(b, n)["state"] == "terminal" for b in range(B)
               for n in range(core.num_nodes()[b]))


def assert_same_search(out, expected):
    np.testing.assert_array_equal(out.visit_counts, expected.visit_counts)
    np.testing.assert_array_equal(out.actions, expected.actions)
    np.testing.assert_array_equal(out.policy_target, expected.policy_target)
    np.testing.assert_array_equal(out.root_value, expected.root_value)
    np.testing.assert_array_equal(out.root_q, expected.root_q)


CONFIGS = {
    "puct": SearchConfig(algorithm="puct", num_simulations=60),
    "puct-per-node": SearchConfig(algorithm="puct", num_simulations=60, value_bounds=None),
    "puct-tree-min-max": SearchConfig(algorithm="puct", num_simulations=60, tree_min_max=True),
    "gumbel": SearchConfig(algorithm="gumbel", num_simulations=60),
}


@pytest.mark.parametrize("name", CONFIGS)
@pytest.mark.parametrize("game_name", ["connect4", "turntree"])
def test_a_perfect_model_gives_the_alphazero_search(game_name, name):
    """ModelSearch over the real rules as its model (perfect_model) and BatchedSearch over the
    rules give the same visits, policy, root value and Q, bit for bit, on positions where the
    trees reach terminal states (asserted): Connect Four mid-game with a random-weight ResNet as
    the prediction, and TurnTree (a player may move twice: discounts +1 and -1, illegal actions
    everywhere) with its hash evaluator.

    Exact by construction: (1) a forbidden action's prior is exactly 0 (FORBIDDEN), so PUCT never
    prefers it (its score is 0, a legal child's is > 0) and Gumbel's interior choice never does
    either (the legal scores softmax - n / (1 + N) sum to 1 / (1 + N) > 0, so one is > 0);
    (2) a move that ends the game backs up reward + discount * 0 = discount * result, the Q the
    AlphaZero tree backs up from the terminal leaf's result; (3) the AlphaZero tree backs a terminal
    revisit up on the spot, the model expands an absorbing child with reward 0 and value 0 below
    it, so the terminal edge's Q and every visit count above it are the same; the absorbing
    edges' Q (0) also enters the tree-wide min/max, which here starts from the known bounds
    [-1, 1] and so already holds 0 (without known bounds see the next test)."""
    if game_name == "connect4":
        game, evaluate = CONNECT4, tiny_resnet_evaluator(CONNECT4)
        roots = positions(game, 6, 16, seed=3)
    else:
        game = TurnTree(6, 8, terminal_rate=0.2, legal_rate=0.6)
        evaluate = per_state(game.evaluate)
        roots = game.roots(np.arange(40) + 900)
        roots = roots[~game.terminal(roots)][:6]
    config = CONFIGS[name]
    search = BatchedSearch(game, config, len(roots))
    expected = search.run(roots, evaluate, add_noise=False, temperature=0)
    assert terminal_nodes(search.core, len(roots)) >= 3      # the case under test happens
    out, model = model_search(game, evaluate, roots, config)
    assert_same_search(out, expected)
    for b in range(len(roots)):
        model.core.check_invariants(b)


def test_tree_min_max_without_known_bounds_equals_the_alphazero_search():
    """Tree-wide min/max normalisation with no known bounds (MuZero's MinMaxStats alone): the
    same search as AlphaZero's on opening positions where the model never expanded an absorbing
    state (asserted: a terminal state reached once backs up the same Q in both trees; only a
    revisit adds the model's absorbing edges, whose Q of 0 would widen the min/max)."""
    evaluate = tiny_resnet_evaluator(CONNECT4, seed=1)
    roots = positions(CONNECT4, 6, 4, seed=8)
    config = SearchConfig(algorithm="puct", num_simulations=40, value_bounds=None,
                          tree_min_max=True)
    expected = BatchedSearch(CONNECT4, config, len(roots)).run(roots, evaluate, add_noise=False,
                                                               temperature=0)
    out, model = model_search(CONNECT4, evaluate, roots, config)
    for b in range(len(roots)):
        used = model.core.num_nodes()[b]
        for n in np.flatnonzero(CONNECT4.terminal(model.nodes[b, :used])):
            assert model.core.node(b, int(n))["num_visited"] == 0
    assert_same_search(out, expected)
    plain = BatchedSearch(CONNECT4, replace(config, tree_min_max=False), len(roots)).run(
        roots, evaluate, add_noise=False, temperature=0)
    assert (plain.visit_counts != out.visit_counts).any()   # the normalisation mattered


def uninformed(game):
    """Zero logits and zero values: only the model's rewards know who wins."""
    A = game.spec.num_actions
    return lambda states: (np.zeros((len(states), A), np.float32),
                           np.zeros(len(states), np.float32))


WIN_IN_ONE = [0, 0, 1, 1, 2, 6]   # X: a1 b1 c1, O: a2 b2 g1 -> X wins with d1 (action 3) only


@pytest.mark.parametrize("algorithm", ["puct", "gumbel"])
def test_the_model_search_plays_the_winning_move(algorithm):
    """Reward for the mover: with an uninformed prediction (zero logits, zero values) the only
    signal is the reward of the move that wins, +1 for the player who makes it. The search picks
    it with Q exactly 1; with the reward's sign flipped (a model that gives rewards from the
    other side's view) it avoids it, its Q exactly -1."""
    game = CONNECT4
    s = game.initial_states(1)
    for a in WIN_IN_ONE:
        s = game.step(s, np.array([a]))
    win = 3
    ends = [game.terminal(game.step(s, np.array([a])))[0] for a in range(7)]
    assert ends == [a == win for a in range(7)] and not game.terminal(s)[0]
    config = SearchConfig(algorithm=algorithm, num_simulations=64)
    out, _ = model_search(game, uninformed(game), s, config)
    assert out.actions[0] == win
    assert out.root_q[0, win] == 1.0
    assert out.visit_counts[0, win] == out.visit_counts[0].max()

    model = perfect_model(game, uninformed(game))

    def wrong_side(latents, actions):
        nxt, rewards, discounts, logits, values = model(latents, actions)
        return nxt, -rewards, discounts, logits, values
    search = ModelSearch(7, (game.spec.state_size,), config, 1, latent_dtype=np.int64)
    wrong = search.run(s, np.zeros((1, 7), np.float32), np.zeros(1, np.float32), wrong_side,
                       root_legal=game.legal_mask(s), add_noise=False, temperature=0)
    assert wrong.actions[0] != win and wrong.root_q[0, win] == -1.0


@pytest.mark.parametrize("algorithm", ["puct", "gumbel"])
def test_values_are_from_the_side_to_move_at_the_child(algorithm):
    """A one-ply model: action a leads to a latent whose value, for the side to move THERE (the
    opponent), is v[a]; the mover's Q is -v[a] (discount -1), so the search picks argmin v."""
    A = 5
    v = np.array([0.5, -0.2, 0.9, -0.7, 0.1], np.float32)

    def recurrent_fn(latents, actions):
        n = len(actions)
        depth = latents[:, 0] + 1
        values = np.where(depth == 1, v[actions], 0.0).astype(np.float32)
        return (depth[:, None].astype(np.float32), np.zeros(n, np.float32), None,
                np.zeros((n, A), np.float32), values)

    search = ModelSearch(A, (1,), SearchConfig(algorithm=algorithm, num_simulations=40), 1)
    out = search.run(np.zeros((1, 1), np.float32), np.zeros((1, A), np.float32),
                     np.zeros(1, np.float32), recurrent_fn, add_noise=False, temperature=0)
    assert out.actions[0] == 3
    visited = out.visit_counts[0] == 1        # children visited once: Q is exactly -v
    np.testing.assert_allclose(out.root_q[0][visited], -v[visited], rtol=1e-6)


@pytest.mark.parametrize("algorithm", ["puct", "gumbel"])
def test_the_torch_store_equals_the_numpy_store(algorithm):
    """Latents in a torch tensor (TorchNodeStore, here on the CPU) or a numpy array: the same
    search, the same latents at every node, also after advance (tree reuse) and a second search
    whose roots take the real positions again."""
    game, evaluate = CONNECT4, tiny_resnet_evaluator(CONNECT4, seed=2)
    roots = positions(game, 5, 10, seed=11)
    config = SearchConfig(algorithm=algorithm, num_simulations=40)
    out_np, s_np = model_search(game, evaluate, roots, config)
    out_t, s_t = model_search(game, evaluate, roots, config, device="cpu")
    assert isinstance(s_t.nodes, torch.Tensor) and s_t.nodes.dtype == torch.int64
    assert_same_search(out_t, out_np)
    used = s_np.core.num_nodes()
    for b in range(len(roots)):
        np.testing.assert_array_equal(s_t.nodes[b, :used[b]].numpy(), s_np.nodes[b, :used[b]])
    actions = out_np.actions
    s_np.advance(actions)
    s_t.advance(actions)
    kept = s_np.core.num_nodes()
    assert (kept > 1).sum() >= 3                  # subtrees are reused
    np.testing.assert_array_equal(s_t.core.num_nodes(), kept)
    states = game.step(roots, actions)
    live = ~game.terminal(states)
    outs = []
    for search, latents in ((s_np, states), (s_t, torch.from_numpy(states))):
        logits, values = evaluate(states)
        outs.append(search.run(latents, logits, values, perfect_model(game, evaluate),
                               root_legal=game.legal_mask(states), add_noise=False,
                               temperature=0, active=live))
    assert_same_search(outs[1], outs[0])
    used = s_np.core.num_nodes()
    for b in np.flatnonzero(live):
        s_np.core.check_invariants(b)
        nodes = s_t.nodes[b, :used[b]].numpy()
        np.testing.assert_array_equal(nodes, s_np.nodes[b, :used[b]])
        for n in range(1, used[b]):      # each latent is its parent stepped by its action
            info = s_np.core.node(b, n)
            parent = nodes[info["parent"]][None]
            if not game.terminal(parent)[0]:
                np.testing.assert_array_equal(
                    nodes[n], game.step(parent, np.array([info["action"]]))[0])


# ------------------------------------------------------------------ MuZeroNet, evaluator, player

def tiny_muzero(game, seed=0):
    torch.manual_seed(seed)
    return MuZeroNet(game.spec.observation_shape, game.spec.num_actions, latent_channels=4,
                     representation_blocks=1, dynamics_blocks=1, prediction_blocks=0,
                     value_hidden=8, reward_hidden=8).eval()


def full_column_position():
    """Connect Four with column 0 full (6 pieces, no four), X to move."""
    s = CONNECT4.initial_states(1)
    for a in [0, 0, 0, 0, 0, 0, 1]:
        s = CONNECT4.step(s, np.array([a]))
    s = CONNECT4.step(s, np.array([2]))
    assert not CONNECT4.legal_mask(s)[0, 0] and not CONNECT4.terminal(s)[0]
    return s[0]


@pytest.mark.parametrize("algorithm", ["puct", "gumbel"])
def test_muzero_search_keeps_latents_on_the_device_and_masks_only_the_root(algorithm):
    """MuZeroSearch over a random-weight MuZeroNet: the dynamics receives torch latents from the
    store (never numpy), the root's illegal action (a full column) gets no visit, while below the
    root every action is expanded (that column included: no rules inside the tree)."""
    game = CONNECT4
    ev = MuZeroEvaluator(tiny_muzero(game), game)
    seen = []
    recurrent = ev.recurrent

    def spy(latents, actions):
        seen.append((type(latents), latents.device, latents.dtype, tuple(latents.shape[1:])))
        return recurrent(latents, actions)
    ev.recurrent = spy
    states = np.stack([full_column_position(), CONNECT4.initial_states(1)[0],
                       positions(game, 1, 9, seed=4)[0]])
    active = np.array([True, False, True])       # row 1 sits this move out
    search = MuZeroSearch(ev, SearchConfig(algorithm=algorithm, num_simulations=30), 3)
    out = search.run(states, ev, add_noise=False, temperature=0, active=active)
    assert seen and all(t == (torch.Tensor, torch.device("cpu"), torch.float32, ev.latent_shape)
                        for t in seen)
    assert isinstance(search.model.nodes, torch.Tensor)
    assert out.visit_counts[0, 0] == 0
    assert out.visit_counts.sum(axis=1).tolist() == [30, 0, 30] and out.actions[1] == -1
    assert game.legal_mask(states)[[0, 2], out.actions[[0, 2]]].all()
    core = search.model.core
    inner = [core.children(0, n)["actions"] for n in range(1, core.num_nodes()[0])
             if core.node(0, n)["num_edges"]]
    assert inner and all(len(a) == 7 for a in inner)   # column 0 is an edge inside the model
    # each root is the representation of its own row's real observation, its value the
    # prediction there
    for b in (0, 2):
        with torch.inference_mode():
            root = ev.net.initial_inference(torch.from_numpy(game.observation(states[b:b + 1])))
        torch.testing.assert_close(search.model.nodes[b, 0], root.latent[0])
        assert core.node(b, 0)["raw_value"] == pytest.approx(float(root.value[0]), abs=1e-6)


def test_a_bf16_snapshot_stores_bf16_latents_and_stays_close_to_fp32():
    """A CPU snapshot in bf16 (precision="bf16"): weights, inputs and the latents the search
    stores are bf16; roots' logits and values stay within bf16's rounding of the fp32 ones, and a
    search over it plays legal moves. amp=False keeps a snapshot in fp32."""
    game = CONNECT4
    net = tiny_muzero(game, seed=6)
    states = positions(game, 8, 9, seed=7)
    exact = MuZeroEvaluator(net, game, snapshot=True, precision="fp32")
    half = MuZeroEvaluator(net, game, snapshot=True, precision="bf16")
    assert exact.latent_dtype == torch.float32 and half.latent_dtype == torch.bfloat16
    assert MuZeroEvaluator(net, game, snapshot=True, precision="bf16",
                           amp=False).latent_dtype == torch.float32
    assert all(p.dtype == torch.bfloat16 for p in half.net.parameters())
    assert all(p.dtype == torch.float32 for p in net.parameters())        # the original intact
    (la, ga, va), (lb, gb, vb) = exact.initial(states), half.initial(states)
    assert lb.dtype == torch.bfloat16 and not np.array_equal(ga, gb)
    np.testing.assert_allclose(ga, gb, atol=0.05)
    np.testing.assert_allclose(va, vb, atol=0.05)
    search = MuZeroSearch(half, SearchConfig(algorithm="gumbel", num_simulations=16), 8)
    assert search.model.nodes.dtype == torch.bfloat16
    out = search.run(states, half, add_noise=False, temperature=0)
    assert game.legal_mask(states)[np.arange(8), out.actions].all()


def test_muzero_player_plays_legal_moves_against_random_in_the_arena():
    """A MuZeroPlayer with a random-weight net in azero.arena against random, both colours: every
    game ends and its moves replay legally (the root mask from the real game is the only
    legality the search knows)."""
    game = CONNECT4
    ev = MuZeroEvaluator(tiny_muzero(game, seed=4), game)
    player = MuZeroPlayer(game, ev, SearchConfig(algorithm="gumbel", num_simulations=16), seed=1)
    result = arena.play_match(game, player, RandomPlayer(game, seed=2),
                              arena.MatchConfig(games=4, in_flight=4, sprt=None, seed=3))
    assert result.stats.games == 4 and len(result.records) == 4
    for record in result.records:
        s = game.initial_states(1)
        for a in record.moves:
            assert game.legal_mask(s)[0, a]
            s = game.step(s, np.array([a]))
        assert game.terminal(s)[0]


@pytest.mark.parametrize("algorithm", ["puct", "gumbel"])
def test_muzero_player_reuses_its_tree_between_moves(algorithm):
    """After its move and the opponent's reply (one the tree had expanded), the player's next
    search starts from the kept subtree: its root visits are the kept ones plus this search's,
    and the kept root's value is the prediction on the real position."""
    game, sims = CONNECT4, 24
    ev = MuZeroEvaluator(tiny_muzero(game, seed=5), game)
    player = MuZeroPlayer(game, ev, SearchConfig(algorithm=algorithm, num_simulations=sims))
    player.begin(1)
    s, active = game.initial_states(1), np.array([True])
    own = player.act(s, active).actions
    player.observe(own, active)
    s = game.step(s, own)
    core = player._search.model.core
    ch = core.children(0, 0)
    reply = int(ch["actions"][np.argmax(ch["visits"])])
    assert ch["child"][reply] >= 0
    kept_visits = int(core.node(0, int(ch["child"][reply]))["visits"])
    player.observe(np.array([reply]), active)
    s = game.step(s, np.array([reply]))
    assert core.num_nodes()[0] > 1
    out = player.act(s, active).search
    assert int(out.visit_counts.sum()) == kept_visits - 1 + sims   # the root's own visit aside
    assert core.node(0, 0)["raw_value"] == pytest.approx(float(ev(s)[1][0]), abs=1e-6)


def test_a_muzero_checkpoint_gives_the_muzero_player(tmp_path):
    """make_player on a checkpoint of a MuZeroNet builds a MuZeroPlayer (and on a ResNet the
    AlphaZero SearchPlayer), whose moves under a time budget are legal."""
    game = CONNECT4
    path = checkpoint.save(tmp_path / "mz.pt", tiny_muzero(game), game_name="connect4")
    assert checkpoint.load(path).algorithm == "muzero"
    player = make_player(path, game, simulations=8)
    assert isinstance(player, MuZeroPlayer) and player.config.num_simulations == 8
    player.begin(1)
    state = full_column_position()[None]
    for budget in (None, 0.5):
        decision = player.act(state, np.array([True]), budget=budget)
        assert game.legal_mask(state)[0, decision.actions[0]]
    az = checkpoint.save(tmp_path / "az.pt", make_net(game.spec, ModelConfig(blocks=1, channels=8)),
                         game_name="connect4")
    assert not isinstance(make_player(az, game), MuZeroPlayer)


def test_a_muzero_checkpoint_faces_an_alphazero_checkpoint_in_the_arena(tmp_path):
    """Both through make_player, colours swapped: two whole legal games."""
    game = CONNECT4
    mz = checkpoint.save(tmp_path / "mz.pt", tiny_muzero(game, seed=6), game_name="connect4")
    az = checkpoint.save(tmp_path / "az.pt", make_net(game.spec, ModelConfig(blocks=1, channels=8)),
                         game_name="connect4")
    a, b = make_player(mz, game, simulations=8), make_player(az, game, simulations=8)
    assert isinstance(a, MuZeroPlayer) and not isinstance(b, MuZeroPlayer)
    result = arena.play_match(game, a, b, arena.MatchConfig(games=2, in_flight=2, sprt=None))
    assert result.stats.games == 2
    assert {r.players[0] for r in result.records} == {"mz.pt", "az.pt"}    # each side first once


def test_a_game_without_alternating_turns_is_refused():
    game = TurnTree(6, 8)
    with pytest.raises(ValueError, match="alternating_turns"):
        MuZeroEvaluator(tiny_muzero(CONNECT4), game)


def test_the_solver_bench_searches_a_muzero_checkpoints_model(tmp_path):
    """azero bench solver's search line for a MuZero checkpoint is the MuZero player (the
    learned model searched, as make_player gives it), not a search of the real rules with
    MuZero's prediction net: on the same positions, with the same seed, it picks the same moves
    as the MuZero player (with the rules search it picks others: the test fails on that code)."""
    from azero.bench.solver import movers_for
    game = CONNECT4
    path = checkpoint.save(tmp_path / "mz.pt", tiny_muzero(game, seed=3), game_name="connect4")
    states = np.stack([full_column_position()] + [game.initial_states(1)[0]] * 3)
    _, search = [m for m in movers_for(str(path), game, simulations=6, batch_size=4, seed=2)
                 if m[0].startswith("search")][0]
    chosen = search(states).argmax(axis=1)

    def moves_of(player):
        player.begin(len(states))
        return player.act(states, np.ones(len(states), bool)).actions

    mz = make_player(path, game, simulations=6, seed=2)
    assert isinstance(mz, MuZeroPlayer)
    np.testing.assert_array_equal(chosen, moves_of(mz))
