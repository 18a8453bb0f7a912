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
    with pytest.raises(ValueError, match="unknown game 'nope'; known games: chess, connect4, go9"):
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


def test_a_game_whose_extra_is_missing_names_the_install_command(tmp_path):
    """Without python-chess, `make("chess")` and any chess command answer in one line with the
    command that installs the extra, and the default games never import it."""
    import subprocess
    import sys
    script = (
        "import sys; sys.modules['chess'] = None\n"      # as if python-chess were not installed
        "from azero import games\n"
        "games.make('connect4'); games.make('go9')\n"
        "try:\n"
        "    games.make('chess')\n"
        "except games.GameUnavailableError as e:\n"
        "    print(e)\n"
        "from azero.cli import main\n"
        "sys.exit(main(['play', '--game', 'chess']))\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120)
    assert 'pip install -e ".[chess]"' in done.stdout
    assert done.returncode == 2
    err = done.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("azero play: chess needs the optional extra [chess]")


def test_the_default_commands_import_no_gpl_code():
    """python-chess (GPL-3.0) is an extra: importing the CLI and the default games loads none of it."""
    import subprocess
    import sys
    script = ("import sys\nfrom azero.cli import build_parser\nbuild_parser()\n"
              "from azero import games\ngames.make('connect4'); games.make('go9')\n"
              "print('chess' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120)
    assert done.stdout.strip() == "False", done.stderr
