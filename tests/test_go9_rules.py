"""Go 9x9 rules (games/go9): golden positions drawn as diagrams, and random games against a small,
slow, obviously-correct reference implementation written here from the rules text.

Diagrams: "X" Black, "O" White, "." empty, row 0 at the top (GTP row 9); a diagram smaller than
9 x 9 fills the top-left corner. Moves are GTP vertices (columns A-J without I, rows 1-9 from the
bottom), so the top-left point is A9.
"""
import numpy as np
import pytest

from azero.games import IllegalActionError
from azero.games.go9 import rules
from azero.games.go9.game import Go9

GAME = Go9()


def position(diagram: str, to_play="X", komi: float = 7.0, ply=None) -> np.ndarray:
    """State [S] of a position drawn as a diagram, with `to_play` ("X"/"O") to move."""
    return Go9(komi=komi).from_diagram(diagram, to_play=to_play, ply=ply)


def play(state: np.ndarray, *moves: str) -> np.ndarray:
    """Plays GTP moves one after the other (each must be legal)."""
    for move in moves:
        action = GAME.parse_point(move)
        assert GAME.legal_mask(state[None])[0, action], f"{move} should be legal:\n" \
                                                        f"{GAME.render(state)}"
        state = GAME.step(state[None], np.array([action]))[0]
    return state


def is_legal(state: np.ndarray, move: str) -> bool:
    """Legality by the mask, checked to agree with what `step` does."""
    action = GAME.parse_point(move)
    legal = bool(GAME.legal_mask(state[None])[0, action])
    try:
        GAME.step(state[None], np.array([action]))
        stepped = True
    except IllegalActionError:
        stepped = False
    verdict = "accepts" if stepped else "refuses"
    assert legal == stepped, f"legal_mask says {legal} but step {verdict} {move}:\n" \
                             f"{GAME.render(state)}"
    return legal


def board(state: np.ndarray, rows: int = 9, cols: int = 9) -> str:
    """The top-left rows x cols of the board as a diagram (same format as `position`)."""
    grid = GAME.grid(state)
    return "\n".join(" ".join(".XO"[v + 1] for v in grid[r, :cols]) for r in range(rows))


def same(diagram: str) -> str:
    return "\n".join(" ".join(line.split()) for line in diagram.strip().splitlines())


# ------------------------------------------------------------------------ captures, suicide


def test_single_stone_capture():
    s = position("""
        . X . .
        X O X .
        . . . .
    """)
    s = play(s, "B7")
    assert board(s, 3, 4) == same("""
        . X . .
        X . X .
        . X . .
    """)


def test_corner_and_edge_capture():
    s = position("""
        O X . .
        . . . .
    """)
    s = play(s, "A8")
    assert board(s, 2, 4) == same("""
        . X . .
        X . . .
    """)


def test_multi_stone_capture_of_two_strings_at_once():
    s = position("""
        X O O . O X .
        X O X X X X .
        . X . . . . .
    """)
    # D9 takes the last liberty of both white strings: B9-C9-B8 and E9.
    s = play(s, "D9")
    assert board(s, 3, 7) == same("""
        X . . X . X .
        X . X X X X .
        . X . . . . .
    """)


def test_suicide_is_illegal():
    s = position("""
        . X . .
        X . X .
        . X . .
    """, to_play="O")
    assert not is_legal(s, "B8")                   # single-point eye
    s = position("""
        . O X .
        O X X .
        X X . .
    """, to_play="O")
    assert not is_legal(s, "A9")                   # filling it leaves White without liberties
    s = position("""
        O . X
        X X X
    """, to_play="O")
    assert not is_legal(s, "B9")                   # multi-stone suicide


def test_capture_that_looks_like_suicide_is_legal():
    s = position("""
        . X O .
        X O . O
        . X O .
    """)
    # C8 has no empty neighbour, but it takes the last liberty of B8.
    assert is_legal(s, "C8")
    s = play(s, "C8")
    assert board(s, 3, 4) == same("""
        . X O .
        X . X O
        . X O .
    """)


# ------------------------------------------------------------------------ ko and superko

KO = """
    . X O .
    X O . O
    . X O .
"""


def test_simple_ko():
    s = play(position(KO), "C8")                   # Black takes the ko
    assert not is_legal(s, "B8")                   # White may not retake at once
    s = play(s, "H2", "J1")                        # a ko threat and its answer
    assert is_legal(s, "B8")                       # the whole board differs now: White retakes
    s = play(s, "B8")
    assert board(s, 3, 4) == same(KO)
    assert not is_legal(s, "C8")                   # and now Black may not retake at once


def test_ko_after_passes():
    s = play(position(KO), "C8", "pass")           # White passes instead of a threat
    s = play(s, "J1")                              # Black plays elsewhere
    assert is_legal(s, "B8")                       # a new whole-board position: White retakes
    s = play(position(KO), "C8", "pass", "pass")   # or Black passes too: the game is over
    assert GAME.terminal(s[None])[0]


TRIPLE_KO = """
    . X O . . . O X .
    X O . O . O X . X
    . X O . . . O X .
    . . . . . . . . .
    . X O . . . . . .
    X O . O . . . . .
    . X O . . . . . .
"""


def test_triple_ko_cycle_is_forbidden_by_positional_superko():
    # Kos at C8 (Black to take), H8 (White to take) and C4 (Black to take).
    s = position(TRIPLE_KO)
    s = play(s, "C8", "H8", "C4", "B8", "G8")
    # White retaking C4 would restore the starting position: a cycle of six captures that simple
    # ko cannot see (no single ko is retaken at once).
    assert not is_legal(s, "B4")
    assert is_legal(s, "J1")


SENDING_TWO = """
    . X . X . .
    O O X . . .
    . . . . . .
"""


def test_sending_two_returning_one():
    s = position(SENDING_TWO)
    s = play(s, "A9")                              # Black sends two stones (A9-B9) into atari
    s = play(s, "C9")                              # White captures two
    assert board(s, 2, 4) == same("""
        . . O X
        O O X .
    """)
    # Returning one (B9 takes C9) would recreate the position before A9.
    assert not is_legal(s, "B9")
    assert is_legal(s, "A9")


def test_superko_survives_symmetries():
    s = play(position(SENDING_TWO), "A9", "C9")
    banned = GAME.parse_point("B9")
    for k in range(8):
        moved = GAME.transform_states(s[None], k)
        mask = GAME.legal_mask(moved)[0]
        assert not mask[GAME.spec.action_permutations[k, banned]], f"symmetry {k}"
        assert np.array_equal(mask[GAME.spec.action_permutations[k]], GAME.legal_mask(s[None])[0])


def test_illegal_move_messages():
    s = play(position(SENDING_TWO), "A9", "C9")
    with pytest.raises(IllegalActionError, match="superko"):
        GAME.step(s[None], np.array([GAME.parse_point("B9")]))
    with pytest.raises(IllegalActionError, match="occupied"):
        GAME.step(s[None], np.array([GAME.parse_point("C9")]))
    eye = position(". X\nX .", to_play="O")
    with pytest.raises(IllegalActionError, match="suicide"):
        GAME.step(eye[None], np.array([GAME.parse_point("A9")]))
    with pytest.raises(ValueError, match="superko"):
        GAME.parse_action(s, "b9")


# ------------------------------------------------------------------------ scoring

SEKI = """
    . X O a X b O X .
    . X O O X O O X .
    . X X O O O X X .
    . . X X X X X . .
"""


def seki_position(to_play="X", komi=7.0):
    return position(SEKI.replace("a", ".").replace("b", "."), to_play=to_play, komi=komi)


def test_seki_is_neither_sides_to_fill():
    s = seki_position()
    # Either side filling a shared liberty puts its own string in atari; the other captures.
    s_black = play(s, "D9")
    assert is_legal(s_black, "F9")
    captured = play(s_black, "F9")
    assert GAME.grid(captured)[0, 4] == -1         # Black's E9-E8 string was taken
    s_white = play(s, "pass", "D9")
    assert GAME.grid(play(s_white, "F9"))[1, 2] == -1   # White's ten stones were taken


def test_area_scoring_with_seki_and_komi():
    s = seki_position()
    # Black: 13 outer stones + 2 in seki + 55 empty points reaching only Black = 70.
    # White: 9 stones in seki. D9 and F9 touch both colours: nobody's.
    assert GAME.score(s[None])[0] == 70 - 9 - 7
    end = play(s, "pass", "pass")
    assert GAME.terminal(end[None])[0]
    assert end[rules.SCORE] == 2 * (70 - 9) - 14
    assert GAME.result(end[None])[0] == 1.0          # Black to move (ply 2) has won
    own = GAME.ownership(end[None])[0]
    assert own[0, 3] == 0 and own[0, 5] == 0         # shared liberties
    assert own[0, 2] == -1 and own[0, 4] == 1 and own[8, 8] == 1
    assert own.sum() == 70 - 9


# Black: columns A-D (rows 2-9), A1-C1 and D1, the wall E2-E9 = 44; White: the rest = 37.
SPLIT = """
    . . . . X O . . .
    . . . . X O . . .
    . . . . X O . . .
    . . . . X O . . .
    . . . . X O . . .
    . . . . X O . . .
    . . . . X O . . .
    . . . . X O . . .
    . . . X O . . . .
"""


@pytest.mark.parametrize("komi, expected_black", [(7.0, 0.0), (7.5, -1.0), (6.5, 1.0), (0, 1.0)])
def test_komi_and_draws(komi, expected_black):
    s = position(SPLIT, komi=komi)
    assert GAME.score(s[None])[0] == 44 - 37 - komi
    end = play(s, "pass", "pass")
    assert GAME.terminal(end[None])[0]
    assert GAME.result(end[None])[0] == expected_black   # ply 2: Black to move
    white_to_move = play(position(SPLIT, to_play="O", komi=komi), "pass", "pass")
    assert GAME.result(white_to_move[None])[0] == -expected_black


def test_scoring_is_colour_symmetric():
    rng = np.random.default_rng(3)
    for _ in range(20):
        grid = rng.choice(np.array(list(".XO")), size=(9, 9), p=[0.4, 0.3, 0.3])
        diagram = "\n".join("".join(row) for row in grid)
        swapped = diagram.translate(str.maketrans("XO", "OX"))
        try:
            s, t = position(diagram, komi=0), position(swapped, komi=0)
        except ValueError:
            continue                               # a string without liberties: not a position
        assert GAME.score(s[None])[0] == -GAME.score(t[None])[0]
        assert np.array_equal(GAME.ownership(s[None]), -GAME.ownership(t[None]))
        for k in range(8):
            moved = GAME.transform_states(s[None], k)
            assert GAME.score(moved)[0] == GAME.score(s[None])[0]


def test_empty_board_area_and_ownership():
    s = GAME.initial_states(1)
    assert GAME.score(s)[0] == -7.0
    assert not GAME.ownership(s).any()             # no stones: nobody reaches anything


# ------------------------------------------------------------------------ game end


def test_two_passes_end_the_game():
    s = GAME.initial_states(1)[0]
    s = play(s, "pass")                             # Black passes
    assert not GAME.terminal(s[None])[0]
    s = play(s, "E5", "pass")                       # White plays, Black passes
    assert not GAME.terminal(s[None])[0]            # pass, move, pass: not two in a row
    s = play(s, "pass")
    assert GAME.terminal(s[None])[0]
    assert not GAME.legal_mask(s[None]).any()
    assert s[rules.SCORE] == 2 * -81 - 14           # one white stone owns the board
    assert GAME.result(s[None])[0] == -1.0          # ply 4: Black to move, Black lost
    with pytest.raises(IllegalActionError, match="over"):
        GAME.step(s[None], np.array([rules.PASS]))


def test_the_move_cap_truncates_the_game_and_play_goes_on():
    limit = rules.MAX_GAME_LENGTH
    assert GAME.spec.max_game_length == limit == 180
    s = position(SPLIT, komi=6.5, ply=limit - 2)
    s = play(s, "A1")                               # in Black's own area: the score stays
    assert not GAME.truncated(s[None])[0]
    s = play(s, "J1")
    assert GAME.move_number(s[None])[0] == limit
    assert GAME.truncated(s[None])[0] and not GAME.terminal(s[None])[0]
    assert GAME.result(s[None])[0] == 0.0           # no result: the game was cut, not drawn
    assert GAME.legal_mask(s[None]).sum() == 1 + (GAME.grid(s) < 0).sum()  # pass, empty points
    assert "cut off" in GAME.render(s)
    assert GAME.adjudicate(s[None])[0] == 1.0       # B+0.5 as it stands, Black to move
    s = play(s, "B1")                               # past the cap (own area): still truncated
    assert GAME.truncated(s[None])[0] and GAME.move_number(s[None])[0] == limit + 1
    assert GAME.adjudicate(s[None])[0] == -1.0      # White to move, Black ahead
    s = play(s, "pass", "pass")                     # two passes end it by the rules
    assert GAME.terminal(s[None])[0] and not GAME.truncated(s[None])[0]
    assert s[rules.SCORE] == 2 * (44 - 37) - 13 and GAME.result(s[None])[0] == -1.0
    assert GAME.adjudicate(s[None])[0] == GAME.result(s[None])[0]


def test_a_full_superko_history_leaves_only_pass():
    short = Go9(max_game_length=4)                  # room for 4 stone moves in the history
    assert short.spec.state_size == rules.state_size_for(4) < GAME.spec.state_size
    s = short.play_texts(["A1", "pass", "C3", "pass"])
    assert short.truncated(s[None])[0] and s[rules.NUM_HASHES] == 2      # passes take no room
    s = short.play_texts(["A1", "pass", "C3", "pass", "E5", "D4"])      # stones past the cap
    assert short.truncated(s[None])[0] and s[rules.NUM_HASHES] == 4
    assert np.flatnonzero(short.legal_mask(s[None])[0]).tolist() == [rules.PASS]
    with pytest.raises(IllegalActionError, match="superko history is full"):
        short.step(s[None], np.array([short.parse_point("F6")]))
    with pytest.raises(IllegalActionError, match="superko history is full"):
        short.parse_action(s, "F6")
    s = short.play_texts(["A1", "pass", "C3", "pass", "E5", "D4", "pass", "pass"])
    assert short.terminal(s[None])[0]
    with pytest.raises(ValueError, match="max_game_length"):
        Go9(max_game_length=0)


def test_history_capacity_follows_the_row_width():
    assert rules.history_capacity(rules.STATE_SIZE) == rules.MAX_GAME_LENGTH
    assert rules.hashes_offset(rules.STATE_SIZE) == rules.HASHES
    for history in range(1, 600):
        width = rules.state_size_for(history)
        capacity = rules.history_capacity(width)
        assert history <= capacity <= history + 1   # hashes come in pairs
        # the count bytes of every entry lie before the hashes
        assert rules.COUNTS + (capacity + 7) // 8 <= rules.hashes_offset(width)


# ------------------------------------------------------------------------ notation, setup


def test_coordinates():
    assert GAME.parse_point("A9") == 0
    assert GAME.parse_point("j1") == 80
    assert GAME.parse_point(" C7 ") == 2 * 9 + 2
    assert GAME.parse_point("PASS") == rules.PASS
    assert GAME.format_action(GAME.initial_states(1)[0], 20) == "C7"
    for bad in ("I5", "Z1", "A0", "A10", "5A", "", "C"):
        with pytest.raises(ValueError):
            GAME.parse_point(bad)


def test_from_diagram_checks():
    with pytest.raises(ValueError, match="liberties"):
        position("X O\nO .")
    with pytest.raises(ValueError):
        position("X ? .")
    with pytest.raises(ValueError):
        position(". X", to_play="O", ply=2)
    s = position(". X", to_play="O")
    assert GAME.to_play(s[None])[0] == 1 and GAME.move_number(s[None])[0] == 1


def test_komi_setting():
    assert Go9(komi=7.5).initial_states(1)[0, rules.KOMI2] == 15
    assert Go9().initial_states(1)[0, rules.KOMI2] == 14
    with pytest.raises(ValueError):
        Go9(komi=7.25)


def test_observation_planes():
    s = play(GAME.initial_states(1)[0], "E5", "D4", "pass")
    obs = GAME.observation(s[None])[0]              # White to move
    e5, d4 = (4, 4), (5, 3)
    assert obs[0][d4] == 1 and obs[1][e5] == 1        # own (White), opponent (Black) now
    assert obs[2][d4] == 1 and obs[3][e5] == 1        # one ply ago: the same (Black passed)
    assert obs[4][d4] == 0 and obs[5][e5] == 1        # two plies ago: before D4
    assert obs[6].sum() == 0 and obs[7].sum() == 0    # three plies ago: empty board
    assert (obs[rules.OBS_BLACK_TO_MOVE] == 0).all()
    assert np.allclose(obs[rules.OBS_KOMI], 0.7)      # White receives komi
    assert (obs[rules.OBS_PASSED] == 1).all() and (obs[rules.OBS_ONES] == 1).all()
    mask = GAME.legal_mask(s[None])[0]
    assert np.array_equal(obs[rules.OBS_LEGAL].reshape(-1) == 1, mask[:81])
    atari = play(position(KO), "C8")                  # Black's C8 stone is in atari
    obs = GAME.observation(atari[None])[0]            # White to move
    assert obs[rules.OBS_OPP_ATARI][1, 2] == 1 and obs[rules.OBS_OPP_ATARI].sum() == 1
    assert obs[rules.OBS_OWN_ATARI][0, 2] == 1 and obs[rules.OBS_OWN_ATARI].sum() == 1


# ------------------------------------------------------------------------ reference engine


class Reference:
    """Go by the book, slowly: a list board, flood fills, a set of every position seen."""

    def __init__(self, komi: float = 7.0, history: int = rules.MAX_GAME_LENGTH):
        self.board = [-1] * 81                      # -1 empty, 0 Black, 1 White
        self.ply = self.passes = 0
        self.history = history                      # stone moves a state can remember
        self.stone_moves = 0
        self.seen = {tuple(self.board)}
        self.komi = komi
        self.over = False
        self.superko_bans = 0

    @staticmethod
    def neighbours(p):
        r, c = divmod(p, 9)
        return [rr * 9 + cc for rr, cc in ((r - 1, c), (r + 1, c), (r, c - 1), (r, c + 1))
                if 0 <= rr < 9 and 0 <= cc < 9]

    def string(self, board, p):
        stones, liberties, todo = {p}, set(), [p]
        while todo:
            q = todo.pop()
            for n in self.neighbours(q):
                if board[n] == -1:
                    liberties.add(n)
                elif board[n] == board[p] and n not in stones:
                    stones.add(n)
                    todo.append(n)
        return stones, liberties

    def after(self, p):
        """The board after the mover plays p, or None if illegal (then self.why says why)."""
        me = self.ply % 2
        if self.over or self.board[p] != -1:
            self.why = "occupied"
            return None
        if self.stone_moves >= self.history:
            self.why = "history full"
            return None
        b = list(self.board)
        b[p] = me
        for n in self.neighbours(p):
            if b[n] == 1 - me:
                stones, liberties = self.string(b, n)
                if not liberties:
                    for q in stones:
                        b[q] = -1
        self.why = "suicide" if not self.string(b, p)[1] else \
            "superko" if tuple(b) in self.seen else None
        return None if self.why else b

    def legal(self):
        """[82] legal moves; counts the superko bans among them in self.superko_bans."""
        mask = []
        for p in range(81):
            mask.append(self.after(p) is not None)
            self.superko_bans += self.why == "superko"
        return mask + [not self.over]

    def play(self, action):
        if action == 81:
            self.passes += 1
        else:
            self.board = self.after(action)
            self.seen.add(tuple(self.board))
            self.passes = 0
            self.stone_moves += 1
        self.ply += 1
        self.over = self.passes >= 2

    def area(self):
        """Black area - White area."""
        score, seen = [0, 0], set()
        for p in range(81):
            if self.board[p] >= 0:
                score[self.board[p]] += 1
            elif p not in seen:
                region, reach, todo = {p}, set(), [p]
                while todo:
                    q = todo.pop()
                    for n in self.neighbours(q):
                        if self.board[n] == -1 and n not in region:
                            region.add(n)
                            todo.append(n)
                        elif self.board[n] >= 0:
                            reach.add(self.board[n])
                seen |= region
                if len(reach) == 1:
                    score[reach.pop()] += len(region)
        return score[0] - score[1]


def compare_random_games(num_games: int, seed: int, pass_probability: float = 0.03,
                         game: Go9 = GAME) -> tuple[int, int, int]:
    """Random games on both engines, played to their end by the rules (past the move cap, until
    the superko history is full and two passes follow), checking at every ply: legal moves,
    stones, the derived fields (ATARI and HASH against a recomputation), terminal and truncated
    flags, and the final score. Returns (plies played, moves refused by superko alone, summed
    over the positions, the longest game's plies)."""
    GAME = game
    rng = np.random.default_rng(seed)
    plies = bans = longest = 0
    for game_index in range(num_games):
        ref = Reference(history=rules.history_capacity(GAME.spec.state_size))
        s = GAME.initial_states(1)
        while True:
            where = f"game {game_index} (seed {seed}), ply {ref.ply}:\n{GAME.render(s[0])}"
            mask = GAME.legal_mask(s)[0]
            assert np.array_equal(mask, ref.legal()), \
                f"{where}\nlegal moves differ at {np.flatnonzero(mask != ref.legal())}"
            assert np.array_equal(GAME.grid(s[0]).reshape(-1), ref.board), where
            derived = np.empty((1, 3), dtype=np.int64)
            rules.recompute_derived(s, derived)
            assert np.array_equal(derived[0], s[0, [rules.ATARI, rules.ATARI + 1, rules.HASH]]), \
                f"{where}\nincremental ATARI/HASH differ from a recomputation"
            assert GAME.terminal(s)[0] == ref.over, where
            assert GAME.truncated(s)[0] == (not ref.over
                                            and ref.ply >= GAME.spec.max_game_length), where
            if ref.over:
                longest = max(longest, ref.ply)
                assert GAME.score(s)[0] == ref.area() - ref.komi, where
                break
            moves = np.flatnonzero(mask[:81])
            action = rng.choice(moves) if len(moves) and rng.random() > pass_probability else 81
            ref.play(action)
            s = GAME.step(s, np.array([action]))
            plies += 1
        bans += ref.superko_bans
    return plies, bans, longest


def test_random_games_against_reference():
    plies, bans, longest = compare_random_games(num_games=4, seed=0)
    assert plies > 400 and bans > 0 and longest > rules.MAX_GAME_LENGTH


def test_long_games_keep_the_whole_superko_history_against_reference():
    """A wider row remembers every position of a game far past the default cap."""
    plies, bans, longest = compare_random_games(num_games=2, seed=3, pass_probability=0.01,
                                                game=Go9(max_game_length=400))
    assert longest > 300 and bans > 0


@pytest.mark.slow
def test_many_random_games_against_reference():
    plies, bans, _ = compare_random_games(num_games=200, seed=1)
    assert bans > 50


def test_diagrams_with_a_string_without_liberties_are_refused_exactly_when_one_exists():
    """from_diagram's bitboard check against a plain flood fill over random boards."""
    def dead_string(grid):
        seen = np.zeros_like(grid, dtype=bool)
        for r0, c0 in zip(*np.nonzero(grid != ".")):
            if seen[r0, c0]:
                continue
            stack, libs = [(r0, c0)], 0
            seen[r0, c0] = True
            while stack:
                r, c = stack.pop()
                for rr, cc in ((r - 1, c), (r + 1, c), (r, c - 1), (r, c + 1)):
                    if 0 <= rr < 9 and 0 <= cc < 9:
                        if grid[rr, cc] == ".":
                            libs += 1
                        elif grid[rr, cc] == grid[r0, c0] and not seen[rr, cc]:
                            seen[rr, cc] = True
                            stack.append((rr, cc))
            if libs == 0:
                return True
        return False

    rng = np.random.default_rng(7)
    refused = accepted = 0
    for _ in range(400):
        grid = rng.choice(np.array(list(".XO")), size=(9, 9), p=[0.45, 0.275, 0.275])
        diagram = "\n".join("".join(row) for row in grid)
        if dead_string(grid):
            with pytest.raises(ValueError, match="without liberties"):
                GAME.from_diagram(diagram)
            refused += 1
        else:
            GAME.from_diagram(diagram)
            accepted += 1
    assert refused > 50 and accepted > 50
