"""The game registry (games/__init__.py): entries, hooks and the protocols each game speaks."""
import subprocess
import sys

import pytest

from azero import games


def test_games_speaking_lists_the_games_of_a_protocol():
    assert games.games_speaking("gtp") == ["go9"]
    assert games.games_speaking("no-such-protocol") == []
    for name in games.names():
        assert ("gtp" in games.entry(name).protocols) == (name in games.games_speaking("gtp"))


def test_hooks_load_what_they_name():
    assert callable(games.hook("go9", "sgf").parse_sgf)      # a module: GTP's loadsgf reads with it
    assert games.hook("connect4", "sgf") is None
    assert games.hook("go9", "record_format").suffix == ""    # SGF: a folder of files
    assert games.hook("connect4", "record_format").suffix == ".jsonl"


def test_default_game_is_registered():
    assert games.default_name() in games.names()


def test_unknown_game_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown game 'nope'; known games: connect4, go9"):
        games.make("nope")
    with pytest.raises(ValueError, match="unknown game"):
        games.hook("nope", "record_format")


def test_importing_one_game_compiles_no_other():
    """Hooks are imported on first use: making one game and reading its hooks loads no module
    of another game."""
    for name in games.names():
        others = [n for n in games.names() if n != name]
        code = (f"import sys; from azero import games; games.make({name!r}); "
                f"[games.hook({name!r}, f) for f in ('record_format', 'solved_positions', 'sgf')]; "
                f"print([m for m in sys.modules if any(m.startswith('azero.games.' + o) "
                f"for o in {others!r})])")
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             check=True).stdout.strip()
        assert out == "[]", f"{name} imported {out}"
