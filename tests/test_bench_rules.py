"""`azero bench rules`: batched random playouts through the search's own leaf step against
OpenSpiel, as JSON lines."""
import json

import numpy as np
import pytest

from azero import games, search
from azero.bench import rules
from azero.cli import main


def test_rules_bench_reports_the_search_path_the_peer_and_the_separate_calls(capsys):
    pytest.importorskip("pyspiel")
    assert main(["bench", "rules", "--game", "connect4", "--seconds", "0.05", "--repeats", "2",
                 "--batch", "64", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(rows) == 1
    (r,) = rows
    assert "search's leaf step (step_leaves: step_with_info" in r["name"]
    assert r["unit"] == "moves/s" and r["value"] > 1e4
    assert "open_spiel connect_four" in r["peer"] and r["peer_value"] > 1e4
    assert r["ratio"] == pytest.approx(r["value"] / r["peer_value"])
    assert r["baseline"] == "the same with the separate calls step, terminal, legal_mask, result"
    assert r["baseline_value"] > 1e4


def test_the_bench_and_the_search_step_leaves_through_one_function(monkeypatch):
    """The figure is the search's path: every ply of the playouts is one call of
    search.step_leaves, the function BatchedSearch expands its leaves with (both go through it
    when it is replaced), and the games it plays are legal and finish."""
    calls = []
    original = search.step_leaves

    def counted(game, parents, actions, fused=True):
        calls.append(len(actions))
        assert game.legal_mask(parents)[np.arange(len(actions)), actions].all()
        return original(game, parents, actions, fused)

    monkeypatch.setattr(search, "step_leaves", counted)
    game = games.make("connect4")
    playouts = rules._Playouts(game, 32, fused=True, seed=1)
    playouts.run(60)
    assert calls == [32] * 60
    assert playouts.moves == 32 * 60 and playouts.games > 32
    assert 7 <= playouts.mean_game_length() <= 42
    calls.clear()
    tree = search.BatchedSearch(game, search.SearchConfig(num_simulations=8), 3)
    tree.run(game.initial_states(3), lambda s: (np.zeros((len(s), 7), np.float32),
                                                np.zeros(len(s), np.float32)))
    assert calls == [3] * 8


def test_rules_bench_refuses_zero_repeats(capsys):
    assert main(["bench", "rules", "--game", "connect4", "--repeats", "0"]) != 0
    assert "--repeats" in capsys.readouterr().err
