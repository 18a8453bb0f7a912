"""Differential test: our Go 9x9 rules against GNU Go, the referee, over GTP.

GNU Go runs with Chinese (area) rules, positional superko and suicide forbidden, board size 9 and
komi 7: the rules of games/go9. Random games are played with our legal moves (uniformly among the
moves that do not fill one of the mover's own single-point eyes, so that games run long and end
only when neither side has anything left to do, with two passes) and replayed into GNU Go. At
every ply:
  * GNU Go accepts our move;
  * the stones on the board agree (`list_stones black` / `list_stones white`);
  * legality agrees (`is_legal`) on every empty point we call illegal (suicide, ko, superko), on a
    sample of the points we call legal, and on an occupied point.
At the end of a game finished by two passes, the area score agrees with GNU Go's `final_score`,
unless a string is left in atari (its capture was a ko ban when the game ended: GNU Go then calls
it dead, Tromp-Taylor does not). Otherwise every string has at least two liberties and every empty
point is a single-point eye or a point neither side may fill (else the side to move would have had
a move), so no stone is dead and GNU Go's Chinese counting must equal Tromp-Taylor area.

GNU Go must be installed (Debian/Ubuntu: apt-get install gnugo; the binary lands in /usr/games);
without it these tests are skipped. A few games run in the default suite; `pytest -m slow` plays
1000.
"""
from __future__ import annotations

import numpy as np
import pytest

from azero.games.go9 import rules
from azero.games.go9.game import Go9
from azero.protocols.gtp_client import GtpClient, GtpEngineError, find_gnugo, gnugo_command

pytestmark = pytest.mark.skipif(find_gnugo() is None, reason="GNU Go is not installed "
                                                           "(apt-get install gnugo)")
KOMI = 7.0
COLOURS = ("black", "white")


@pytest.fixture(scope="module")
def gnugo():
    """GNU Go at its default level; `gnugo(command)` -> the answer (GtpEngineError on '?')."""
    with GtpClient(gnugo_command(level=None), name="gnugo") as engine:
        engine("boardsize 9")
        engine(f"komi {KOMI:g}")
        yield engine


def vertex(action: int) -> str:
    return "pass" if action == rules.PASS else Go9.point_name(action)


def our_stones(game: Go9, state: np.ndarray) -> tuple[set[str], set[str]]:
    grid = game.grid(state).reshape(-1)
    return tuple({Go9.point_name(p) for p in np.flatnonzero(grid == colour)} for colour in (0, 1))


def eye_fillers(game: Go9, state: np.ndarray) -> np.ndarray:
    """[81] bool: empty points all of whose neighbours are stones of the side to move, none of
    them in atari (filling such a point to save a string, e.g. connecting a ko, is a real move)."""
    grid = game.grid(state).reshape(-1)
    me = int(game.to_play(state[None])[0])
    atari = np.array([rules.has_point(state[rules.ATARI], state[rules.ATARI + 1], p)
                      for p in range(81)])
    own_safe = np.append((grid == me) & ~atari, True)  # index -1 (off the board) counts
    return (grid == -1) & own_safe[rules.NEIGHBOURS].all(axis=1)


def parse_final_score(text: str) -> float:
    """GNU Go's final_score ("B+3.0", "W+0.5", "0") -> Black's score."""
    if text in ("0", "Draw", "Jigo"):
        return 0.0
    sign = {"B": 1.0, "W": -1.0}[text[0]]
    return sign * float(text[2:])


def play_differential_games(engine: GtpClient, num_games: int, seed: int,
                            legal_samples: int = 6) -> dict:
    """Plays `num_games` random games on both sides; asserts agreement at every ply. Returns
    counts: games, plies, is_legal queries, those on empty points we call illegal, those among
    them refused by (super)ko alone, and games whose final score was compared."""
    game = Go9(komi=KOMI)
    rng = np.random.default_rng(seed)
    stats = dict(games=0, plies=0, legality_checks=0, illegal_checks=0, superko_checks=0,
                 scored=0)
    for game_index in range(num_games):
        engine("clear_board")
        state = game.initial_states(1)[0]
        moves = []
        while not game.terminal(state[None])[0]:
            mask = game.legal_mask(state[None])[0]
            me = COLOURS[int(game.to_play(state[None])[0])]
            where = (f"game {game_index} (seed {seed}) after {' '.join(moves) or 'no moves'}:\n"
                     f"{game.render(state)}")
            # Legality, on our illegal empty points, a sample of legal ones, an occupied one.
            empty = game.grid(state).reshape(-1) == -1
            illegal = np.flatnonzero(empty & ~mask[:81])
            legal = np.flatnonzero(mask[:81])
            occupied = np.flatnonzero(~empty)
            probe = list(illegal) + list(rng.permutation(legal)[:legal_samples]) \
                + list(rng.permutation(occupied)[:1])
            for p in probe:
                theirs = engine(f"is_legal {me} {Go9.point_name(p)}") == "1"
                assert theirs == mask[p], (f"{where}\nis_legal {me} {Go9.point_name(p)}: "
                                           f"GNU Go says {theirs}, we say {mask[p]}")
            stats["legality_checks"] += len(probe)
            stats["illegal_checks"] += len(illegal)
            stats["superko_checks"] += sum("superko" in game._why_illegal(state, int(p))
                                           for p in illegal)
            # Our move: uniformly among legal moves that do not fill an own single-point eye.
            choices = np.flatnonzero(mask[:81] & ~eye_fillers(game, state))
            action = int(rng.choice(choices)) if len(choices) else rules.PASS
            try:
                engine(f"play {me} {vertex(action)}")
            except GtpEngineError as e:
                raise AssertionError(f"{where}\nGNU Go refuses our legal move: {e}") from None
            state = game.step(state[None], np.array([action]))[0]
            moves.append(vertex(action))
            stats["plies"] += 1
            black, white = our_stones(game, state)
            assert set(engine("list_stones black").split()) == black, \
                f"black stones differ after {' '.join(moves)}:\n{game.render(state)}"
            assert set(engine("list_stones white").split()) == white, \
                f"white stones differ after {' '.join(moves)}:\n{game.render(state)}"
        stats["games"] += 1
        # A string can end in atari when its capture is a (super)ko ban at that moment; then
        # GNU Go rightly calls it dead while Tromp-Taylor counts it: no score comparison.
        in_atari = state[rules.ATARI] != 0 or state[rules.ATARI + 1] != 0
        if state[rules.PASSES] >= 2 and not in_atari:
            theirs = parse_final_score(engine("final_score"))
            ours = float(game.score(state[None])[0])
            assert theirs == ours, (f"game {game_index} (seed {seed}): final score GNU Go "
                                    f"{theirs:+g}, ours {ours:+g}:\n{game.render(state)}\n"
                                    f"moves: {' '.join(moves)}")
            stats["scored"] += 1
    return stats


def test_gtp_engine_answers(gnugo):
    assert gnugo("name") == "GNU Go"
    with pytest.raises(GtpEngineError):
        gnugo("no_such_command")


def test_superko_positions_agree(gnugo):
    """The 'sending two returning one' cycle: both engines refuse B9."""
    game = Go9(komi=KOMI)
    gnugo("clear_board")
    setup = [("black", "B9"), ("black", "D9"), ("black", "C8"), ("white", "A8"),
             ("white", "B8")]
    for colour, v in setup:
        gnugo(f"play {colour} {v}")
    state = game.from_diagram(". X . X\nO O X .", to_play="X")
    for colour, v in (("black", "A9"), ("white", "C9")):
        gnugo(f"play {colour} {v}")
        state = game.step(state[None], np.array([game.parse_point(v)]))[0]
    assert gnugo("is_legal black B9") == "0"
    assert not game.legal_mask(state[None])[0, game.parse_point("B9")]


def test_random_games_agree_with_gnugo(gnugo):
    stats = play_differential_games(gnugo, num_games=3, seed=0)
    assert stats["plies"] > 200 and stats["scored"] >= 1 and stats["illegal_checks"] > 100


@pytest.mark.slow
def test_many_random_games_agree_with_gnugo(gnugo):
    stats = play_differential_games(gnugo, num_games=1000, seed=1)
    assert stats["games"] == 1000 and stats["superko_checks"] > 100
    print(stats)
