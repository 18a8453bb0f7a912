"""Terminal play: scripted sessions through injected streams."""
import io

import numpy as np

from azero.cli import main
from azero.games import make
from azero.players import Decision, make_player
from azero.players.human import play_terminal

GAME = make("connect4")


class LeftmostBot:
    """Deterministic fake: always the leftmost legal column; counts the calls it gets."""
    name = "leftmost"

    def __init__(self):
        self.resets = 0
        self.observed = []

    def begin(self, batch_size):
        pass

    def reset(self, rows=None):
        self.resets += 1

    def act(self, states, active):
        return Decision(GAME.legal_mask(states).argmax(axis=1))

    def observe(self, actions, active):
        self.observed.append(int(actions[0]))


def session(lines, bot, **kw):
    out = io.StringIO()
    score = play_terminal(GAME, bot, stdin=io.StringIO("".join(l + "\n" for l in lines)),
                          stdout=out, **kw)
    return score, out.getvalue()


def test_garbage_full_column_undo_hint_quit():
    bot = LeftmostBot()
    # Human and bot both fill column 1 (X O X O X O: no four), then the human tries it again.
    script = ["hello", "9", "", "1", "1", "1", "1", "undo", "1", "hint", "undo", "undo",
              "undo", "undo", "help", "quit"]
    score, text = session(script, bot)
    assert score is None
    assert "'hello' is not a column" in text
    assert "there is no column 9" in text
    assert "empty move" in text
    assert "column 1 is full" in text
    assert "took back your last move" in text
    assert "hint: 2" in text                    # column 1 is full again: leftmost legal is 2
    assert "nothing to undo" in text
    assert text.rstrip().endswith("Bye.")
    assert text.count("leftmost plays 1") == 4   # 3 replies + 1 replayed after the undo
    # Each undo drops the bot's tree: one reset at the start, one per successful undo (4).
    assert bot.resets == 1 + 4
    # The bot saw every move played, its own and the human's.
    assert bot.observed[:6] == [0, 0, 0, 0, 0, 0]


def test_human_wins_and_game_ends():
    # Human: 2,3,4,5 on the bottom row; the leftmost bot stacks column 1 and cannot stop it.
    score, text = session(["2", "3", "4", "5"], LeftmostBot())
    assert score == 1.0
    assert "You win!" in text


def test_bot_first_and_bot_wins():
    # --second: the bot (X) fills column 1 while the human plays elsewhere: four in column 1.
    score, text = session(["3", "3", "3"], LeftmostBot(), human_first=False)
    assert score == 0.0
    assert "leftmost wins." in text
    assert text.index("leftmost plays 1") < text.index("your move>")


def test_end_of_input_is_a_quit():
    score, text = session(["4"], LeftmostBot())
    assert score is None


def test_colour_board_has_ansi():
    _, text = session(["4", "quit"], LeftmostBot(), color=True)
    assert "\x1b[" in text


def test_search_bot_shows_its_evaluation():
    bot = make_player("mcts-rollout:16", GAME, seed=3)
    score, text = session(["4", "hint", "quit"], bot)
    assert "mcts-rollout:16 plays" in text
    assert "expected score" in text and "visits" in text
    assert "hint:" in text


def test_play_command_without_bundled_checkpoint(tmp_path, monkeypatch, capsys):
    import azero.players as players
    monkeypatch.setattr(players, "BUNDLED_DIR", tmp_path)
    assert main(["play", "--game", "connect4"]) == 2
    err = capsys.readouterr().err
    assert "no bundled connect4 checkpoint" in err and "--ckpt" in err


def test_play_command_with_random_bot(monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO("4\nquit\n"))
    assert main(["play", "--ckpt", "random", "--no-color"]) == 0
    out = capsys.readouterr().out
    assert "random plays" in out and "Bye." in out


def test_resign_ends_the_game_as_a_loss():
    score, text = session(["4", "resign", "4"], LeftmostBot())
    assert score == 0.0
    assert "You resign. leftmost wins." in text
    assert text.count("your move>") == 2            # nothing is asked after resigning


def test_a_bot_that_resigns_loses_the_game():
    class Quitter(LeftmostBot):
        name = "quitter"

        def act(self, states, active):
            d = super().act(states, active)
            d.resigned = np.array([len(self.observed) >= 2])   # after two moves were played
            return d

    score, text = session(["4", "4", "4"], Quitter())
    assert score == 1.0 and "quitter resigns. You win!" in text
    assert text.count("quitter plays") == 1 and text.count("your move>") == 2


def test_go_session_with_coordinates_pass_undo_and_the_final_score():
    go = make("go9")

    class PassBot(LeftmostBot):
        name = "passer"

        def act(self, states, active):
            return Decision(np.full(len(states), go.spec.num_actions - 1))   # always pass

    out = io.StringIO()
    score = play_terminal(go, PassBot(), stdin=io.StringIO("D4\nZ9\nundo\nE5\npass\n"), stdout=out)
    text = out.getvalue()
    assert "not a point" in text                     # Z9 re-prompts with the reason
    assert "took back" in text
    assert "[X]" in text                             # the last move is marked
    # E5 then two passes: Black's lone stone owns the board, 81 - 7 komi for Black.
    assert score == 1.0 and "You win!" in text and "B+74" in text
