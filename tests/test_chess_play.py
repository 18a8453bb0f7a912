"""Terminal chess (`azero play --game chess`): scripted sessions through injected streams, with
a scripted bot, the `random` bot and a plain-MCTS bot."""
import io

import numpy as np
import pytest

chess = pytest.importorskip("chess")

from azero.cli import main  # noqa: E402
from azero.games import make  # noqa: E402
from azero.players import Decision, make_player  # noqa: E402
from azero.players.human import play_terminal  # noqa: E402

GAME = make("chess")
START_SAN = sorted(chess.Board().san(m) for m in chess.Board().legal_moves)   # the 20 openers


class ScriptedBot:
    """Plays the given UCI moves in order (the same list again after a reset); counts resets and
    records every move it is told of, as SAN."""
    name = "scripted"

    def __init__(self, moves):
        self.moves = list(moves)
        self.resets = 0
        self.observed = []

    def begin(self, batch_size):
        pass

    def reset(self, rows=None):
        self.resets += 1
        self.played = 0

    def act(self, states, active):
        action = GAME.parse_action(states[0], self.moves[self.played])
        self.played += 1
        return Decision(np.array([action]))

    def observe(self, actions, active):
        self.observed.append(int(actions[0]))


def session(lines, bot, **kw):
    out = io.StringIO()
    score = play_terminal(GAME, bot, stdin=io.StringIO("".join(l + "\n" for l in lines)),
                          stdout=out, **kw)
    return score, out.getvalue()


def board_lines(text):
    """The rank lines ("8 ..." down to "1 ...") of the last board drawn in `text`."""
    lines = text.splitlines()
    last = max(i for i, line in enumerate(lines) if line.startswith("8 "))
    return lines[last:last + 8]


def test_san_and_uci_moves_and_a_unicode_board():
    # 1. e4 (SAN) e5 2. g1f3 (UCI) Nc6 3. Bb5 (SAN) a6, then quit.
    bot = ScriptedBot(["e7e5", "b8c6", "a7a6"])
    score, text = session(["e4", "g1f3", "Bb5", "quit"], bot)
    assert score is None and text.rstrip().endswith("Bye.")
    assert "scripted plays e5" in text and "scripted plays Nc6" in text
    assert "scripted plays a6" in text
    # The board after 3...a6, rank 8 on top, in Unicode pieces; a6 was the last move: marked.
    ranks = board_lines(text)
    assert ranks[0].split() == ["8", "♜", "·", "♝", "♛", "♚", "♝", "♞", "♜"]
    assert ranks[2].split()[:2] == ["6", "[♟]"] and "♞" in ranks[2]           # a6, Nc6
    assert "♗" in ranks[3] and "♟" in ranks[3]                                 # Bb5, e5
    assert "♘" in ranks[5]                                                     # Nf3
    assert "white to move" in text
    # Both sides' moves reached the bot, in order.
    assert len(bot.observed) == 6


def test_an_illegal_move_reprompts_naming_the_legal_moves():
    bot = ScriptedBot(["e7e5"])
    score, text = session(["e5", "Ke2", "e2e5", "e4", "quit"], bot)
    assert score is None
    for bad in ("'e5'", "'Ke2'", "'e2e5'"):
        line = next(l for l in text.splitlines() if bad in l)
        assert "is not legal here; legal moves: " in line
        named = line.split("legal moves: ")[1].split(" (")[0].split()
        assert named == START_SAN                      # exactly the 20 legal moves, in SAN
    assert text.count("your move>") == 5             # 3 re-prompts, e4, then quit
    assert "scripted plays e5" in text               # e4 was played after the re-prompts


def test_garbage_and_an_ambiguous_move_are_explained():
    # 1. a4 h6 2. h4 g6 3. Ra3 f6: both rooks reach h3 ("Rh3" names no one move), then
    # 4. Rhh3 e6: both reach e3.
    bot = ScriptedBot(["h7h6", "g7g6", "f7f6", "e7e6", "d7d6"])
    _, text = session(["a4", "h4", "Ra3", "hello", "Rh3", "Rhh3", "Re3", "Rae3", "quit"], bot)
    assert "'hello' is not a move" in text and "SAN" in text and "UCI" in text
    assert "'Rh3' is ambiguous here" in text and "'Re3' is ambiguous here" in text
    ranks = board_lines(text)
    assert ranks[5].split() == ["3", "·", "·", "·", "·", "♖", "·", "·", "♖"]    # Rae3 played


def test_undo_takes_back_the_move_and_the_reply_and_hint_names_the_bots_move():
    bot = ScriptedBot(["e7e5", "g1f3", "g8f6"])      # the second: its answer to the hint
    score, text = session(["e4", "undo", "undo", "d4", "hint", "Nf3", "quit"], bot)
    assert score is None
    assert "took back your last move and scripted's reply" in text
    assert "nothing to undo" in text
    # The undo reset the bot, so its script starts again: e5 answers d4 as it answered e4.
    assert text.count("scripted plays e5") == 2
    assert "hint: Nf3" in text                       # the bot's move for white here, in SAN
    assert "scripted plays Nf6" in text
    assert bot.resets == 2                           # the start and the one undo
    # The last board: 1. d4 e5 2. Nf3 Nf6, with no trace of the e4 taken back.
    ranks = board_lines(text)
    assert ranks[4].split() == ["4", "·", "·", "·", "♙", "·", "·", "·", "·"]
    assert ranks[3].split() == ["5", "·", "·", "·", "·", "♟", "·", "·", "·"]
    assert ranks[5].split() == ["3", "·", "·", "·", "·", "·", "♘", "·", "·"]
    assert ranks[2].split() == ["6", "·", "·", "·", "·", "·", "[♞]", "·", "·"]


def test_checkmate_ends_the_game_with_the_winner():
    # The bot is white and plays Fool's mate's losing moves; the human (black) mates: 2...Qh4#.
    bot = ScriptedBot(["f2f3", "g2g4"])
    score, text = session(["e5", "Qh4#"], bot, human_first=False)
    assert score == 1.0 and "You win!" in text
    assert "game over: checkmate" in text and "(in check)" in text
    # The bot as black mates the human: 1. f3 e5 2. g4 Qh4#.
    score, text = session(["f3", "g4"], ScriptedBot(["e7e5", "d8h4"]))
    assert score == 0.0 and "scripted wins." in text


def test_play_command_with_the_random_bot(monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO("e4\nNf3\nhint\nundo\nquit\n"))
    assert main(["play", "--game", "chess", "--ckpt", "random", "--no-color", "--seed", "1"]) == 0
    out = capsys.readouterr().out
    assert out.count("random plays ") >= 2 and "hint: " in out and "took back" in out
    assert "Bye." in out and "♔" in out and "♚" in out


def test_play_command_with_a_plain_mcts_bot_and_its_evaluation(monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO("d4\nquit\n"))
    assert main(["play", "--game", "chess", "--ckpt", "mcts-rollout:4", "--no-color"]) == 0
    out = capsys.readouterr().out
    line = next(l for l in out.splitlines() if l.startswith("mcts-rollout:4 plays "))
    san = line.split()[2]
    # The bot's move is a legal reply to 1. d4, and its search is shown.
    board = chess.Board()
    board.push_san("d4")
    board.parse_san(san)
    assert "visits" in line and "expected score" in line


def test_play_command_without_a_bundled_chess_checkpoint(tmp_path, monkeypatch, capsys):
    import azero.players as players
    monkeypatch.setattr(players, "BUNDLED_DIR", tmp_path)
    assert main(["play", "--game", "chess"]) == 2
    err = capsys.readouterr().err
    assert "no bundled chess checkpoint" in err and "--ckpt" in err
    assert len(err.strip().splitlines()) == 1
