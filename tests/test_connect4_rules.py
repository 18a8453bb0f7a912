"""Connect Four rules: golden positions, error messages, notation, features, and agreement with the
perfect-play position set of shared/bench/connect4 (shipped in azero/bench/data)."""
import json

import numpy as np
import pytest

from azero.games.connect4.solver import DEFAULT_POSITIONS as POSITIONS
from azero.games import IllegalActionError, make
from azero.games.connect4 import rules
from azero.games.connect4.game import ConnectFour

GAME = ConnectFour()

# Found by random search, then frozen: a full board with no four in a row, and a game won by the
# 42nd stone (the second player's last), which must count as a win, not a draw.
DRAW_GAME = "115417723275671664715714366565253223424334"
WIN_ON_LAST_CELL = "353355653313761412524725617611247672442467"


def state(moves: str) -> np.ndarray:
    return ConnectFour.from_moves(moves)[None]


def mirror(moves: str) -> str:
    return "".join(str(8 - int(c)) for c in moves)


def test_registry_makes_connect_four():
    game = make("connect4")
    assert isinstance(game, ConnectFour)
    assert game.spec.num_actions == 7 and game.spec.observation_shape == (3, 6, 7)
    assert game.spec.max_game_length == 42 and game.spec.board_shape == (6, 7)
    assert game.spec.action_permutations.tolist() == [list(range(7)), list(range(6, -1, -1))]


@pytest.mark.parametrize("moves, shape", [
    ("1122334", "horizontal"),
    ("4455667", "horizontal, right edge"),
    ("1212121", "vertical"),
    ("7676767", "vertical, right edge"),
    ("12233434414", "diagonal /"),
    ("76655454474", "diagonal \\"),
    ("12132475", "second player, horizontal"),
    (WIN_ON_LAST_CELL, "42nd stone"),
])
@pytest.mark.parametrize("flip", [False, True], ids=["as is", "mirrored"])
def test_win_is_detected_on_the_winning_stone(moves, shape, flip):
    if flip:
        moves = mirror(moves)
    before, after = state(moves[:-1]), state(moves)
    assert not GAME.terminal(before)[0], f"{shape}: game over before the winning stone"
    assert GAME.legal_mask(before)[0, int(moves[-1]) - 1]
    assert GAME.terminal(after)[0], f"{shape}: win not detected"
    assert GAME.result(after)[0] == -1.0, "the side to move after the winning stone has lost"
    assert GAME.to_play(after)[0] == len(moves) % 2
    assert not GAME.legal_mask(after).any()
    winner = "X" if len(moves) % 2 else "O"
    assert f"{winner} won" in GAME.render(after[0])


def test_no_false_wins_three_in_a_row_and_wrapping_lines():
    # Three in a row everywhere but no four; stones on column edges that would connect if the
    # bitboard wrapped from the top of one column to the bottom of the next.
    for moves in ("112233", "121212", "1111112222223333", "11111172", "1122335577"):
        assert not GAME.terminal(state(moves))[0], moves


def test_draw_on_full_board():
    for ply in range(1, 42):
        assert not GAME.terminal(state(DRAW_GAME[:ply]))[0]
    full = state(DRAW_GAME)
    assert GAME.terminal(full)[0] and GAME.result(full)[0] == 0.0
    assert not GAME.legal_mask(full).any()
    assert GAME.move_number(full)[0] == 42
    assert "draw" in GAME.render(full[0])


def test_step_on_full_column_raises_naming_action_and_board():
    s = state("111111")
    with pytest.raises(IllegalActionError, match=r"action 0 .*column 0 .*\"1\".* is full.*board"):
        GAME.step(s, np.array([0]))
    with pytest.raises(IllegalActionError, match=r"action 7 .*only columns 0..6"):
        GAME.step(s, np.array([7]))
    with pytest.raises(IllegalActionError, match=r"action -1 "):
        GAME.step(s, np.array([-1]))


def test_step_on_finished_game_raises_and_batch_names_the_row():
    batch = np.concatenate([state("12"), state("1212121")])
    before = batch.copy()
    with pytest.raises(IllegalActionError, match=r"action 3 in batch row 1: the game is over; "
                                                 r"ply 7, X won"):
        GAME.step(batch, np.array([3, 3]))
    assert np.array_equal(batch, before), "step modified its input"


def test_step_accepts_any_integer_action_dtype_and_leaves_input_alone():
    s = GAME.initial_states(3)
    for dtype in (np.int8, np.int32, np.int64, np.uint8):
        out = GAME.step(s, np.array([0, 3, 6], dtype=dtype))
        assert np.array_equal(out, np.concatenate([state("1"), state("4"), state("7")]))
    assert not s.any()
    with pytest.raises(ValueError, match="actions"):
        GAME.step(s, np.array([0, 1]))
    with pytest.raises(ValueError, match="integers"):
        GAME.step(s, np.array([0.0, 1.5, 2.0]))
    with pytest.raises(ValueError, match=r"\[B, 4\]"):
        GAME.step(s[0], np.array([0]))


@pytest.mark.parametrize("text, message", [
    ("x", "not a column"), ("", "empty move"), ("  ", "empty move"), ("9", "no column 9"),
    ("0", "no column 0"), ("-1", "not a column"), ("4.5", "not a column"),
    ("\u0663", "not a column"),      # ARABIC-INDIC DIGIT THREE: a digit, but not ours
])
def test_parse_action_rejects_garbage(text, message):
    with pytest.raises(ValueError, match=message):
        GAME.parse_action(GAME.initial_states(1)[0], text)


def test_parse_action_full_column_and_finished_game():
    with pytest.raises(IllegalActionError, match="column 1 is full"):
        GAME.parse_action(state("111111")[0], "1")
    with pytest.raises(IllegalActionError, match="game is over"):
        GAME.parse_action(state("1212121")[0], "3")
    assert GAME.parse_action(state("111111")[0], " 2 ") == 1


def test_notation_round_trip():
    s = GAME.initial_states(1)[0]
    for action in range(7):
        text = GAME.format_action(s, action)
        assert text == str(action + 1) and GAME.parse_action(s, text) == action
    with pytest.raises(ValueError):
        GAME.format_action(s, 7)


def test_from_moves_errors_name_the_move():
    with pytest.raises(ValueError, match=r"move 5 of '4453x'.*not a column"):
        ConnectFour.from_moves("4453x")
    with pytest.raises(IllegalActionError, match=r"move 7 of '1111111'.*column 1 is full"):
        ConnectFour.from_moves("1111111")
    with pytest.raises(IllegalActionError, match=r"move 8 of '12121212'.*game is over"):
        ConnectFour.from_moves("12121212")
    assert np.array_equal(ConnectFour.from_moves(""), GAME.initial_states(1)[0])


def test_observation_orientation_and_channels():
    obs = GAME.observation(state("45"))[0]          # X in column 4, O in column 5; X to move
    assert obs[0, 5, 3] == 1 and obs[0].sum() == 1  # own (X) stone: bottom row (row 5), col 4
    assert obs[1, 5, 4] == 1 and obs[1].sum() == 1  # opponent (O) stone
    assert not obs[2].any()                         # first player to move
    obs = GAME.observation(state("454"))[0]         # O to move: O's stones are "own"
    assert obs[0, 5, 4] == 1 and obs[0].sum() == 1
    assert obs[1, 5, 3] == 1 and obs[1, 4, 3] == 1 and obs[1].sum() == 2
    assert obs[2].all()


def test_render():
    text = GAME.render(state("4453")[0], last_action=2)
    assert text.splitlines() == [
        " 1  2  3  4  5  6  7",
        " .  .  .  .  .  .  .",
        " .  .  .  .  .  .  .",
        " .  .  .  .  .  .  .",
        " .  .  .  .  .  .  .",
        " .  .  .  O  .  .  .",
        " .  . [O] X  X  .  .",
        " 1  2  3  4  5  6  7",
        "X to move",
    ]
    colored = GAME.render(state("4453")[0], color=True)
    assert "\x1b[1;31mX\x1b[0m" in colored and "\x1b[1;33mO\x1b[0m" in colored


def test_mirror_symmetry_matches_mirrored_move_string():
    for moves in ("4453", "1234567", DRAW_GAME, "12233434414"):
        assert np.array_equal(GAME.transform_states(state(moves), 1), state(mirror(moves)))
        assert np.array_equal(GAME.transform_states(state(moves), 0), state(moves))


def test_step_with_info_names_a_full_column():
    # That it equals the separate calls is checked for every game by the conformance playouts.
    with pytest.raises(IllegalActionError, match="is full"):
        GAME.step_with_info(state("111111"), np.array([0]))


def test_kernel_playouts_play_whole_games():
    moves = rules.random_playouts(100, 0)
    assert 7 * 100 <= moves <= 42 * 100


# ---------------------------------------------------------------- the perfect-play position set

def _positions():
    if not POSITIONS.exists():
        pytest.skip(f"{POSITIONS} not present")
    with open(POSITIONS) as f:
        return [json.loads(line) for line in f]


def test_positions_replay_and_full_columns_match_null_scores():
    records = _positions()
    assert len(records) > 100
    for rec in records:
        s = state(rec["moves"])
        assert not GAME.terminal(s)[0], rec["moves"]
        assert GAME.move_number(s)[0] == rec["stones"] == len(rec["moves"])
        assert GAME.to_play(s)[0] == rec["stones"] % 2
        legal = GAME.legal_mask(s)[0]
        assert [score is not None for score in rec["scores"]] == legal.tolist(), rec["moves"]


def test_positions_immediate_wins_match_the_solver():
    """A move scores floor((43 - n) / 2) exactly when it wins on the spot; a move filling the
    board without winning scores 0."""
    immediate_win_seen = 0
    for rec in _positions():
        n = rec["stones"]
        s = state(rec["moves"])
        legal = np.flatnonzero(GAME.legal_mask(s)[0])
        after = GAME.step(np.repeat(s, len(legal), axis=0), legal)
        wins = GAME.terminal(after) & (GAME.result(after) == -1.0)
        for column, won, new in zip(legal, wins, after):
            score = rec["scores"][column]
            assert won == (score == (43 - n) // 2), (rec["moves"], column + 1, score)
            if GAME.terminal(new[None])[0] and not won:
                assert score == 0, (rec["moves"], column + 1, score)
        if rec["value"] == (43 - n) // 2:
            immediate_win_seen += 1
            for column in rec["optimal"]:
                assert wins[list(legal).index(column - 1)], (rec["moves"], column)
    assert immediate_win_seen > 0
