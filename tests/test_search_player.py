"""The search player (azero/players/search_player.py): budgets over a batch, and rollout values of
playouts cut off by the move cap."""
import numpy as np

from azero.games import make
from azero.players import make_player
from azero.players.search_player import random_playout_values

GO = make("go9")


def test_a_budget_caps_the_simulations_of_a_batch():
    player = make_player("mcts-rollout:400", GO, seed=0)
    states = GO.initial_states(3)
    player.begin(3)
    active = np.array([True, False, True])
    free = player.act(states, active)
    assert player.simulations == 400 and player.seconds_per_simulation is not None
    assert free.actions[1] == -1 and (free.search.visit_counts[[0, 2]].sum(axis=1) >= 399).all()
    player.reset()
    rushed = player.act(states, active, budget=0.02)
    assert 1 <= player.simulations < 400
    assert (rushed.search.visit_counts[[0, 2]].sum(axis=1) < 400).all()
    player.observe(rushed.actions, active)               # trees follow the moves played


def test_a_playout_cut_off_by_the_cap_is_adjudicated_not_an_error():
    """Two plies before the cap: every playout is cut off there and scored by the game's
    adjudicate, never a draw and never an error (a playout that went on past the cap would
    outlast its step limit). Where Black owns the board: +1 for Black, -1 from White's view."""
    cap = GO.spec.max_game_length
    diagram = "\n".join(["XXXXXXXXX"] * 8 + [".X.X.XXXX"])      # three eyes: alive
    owned = [GO.from_diagram(diagram, to_play=0, ply=cap - 2),
             GO.from_diagram(diagram, to_play=1, ply=cap - 1)]
    empty = [GO.from_diagram(".", to_play=0, ply=cap - 2)] * 64
    values = random_playout_values(GO, np.stack(owned + empty), np.random.default_rng(0))
    assert values[:2].tolist() == [1.0, -1.0]
    assert set(values[2:].tolist()) == {-1.0, 1.0}           # komi 7: no draw; both occur
