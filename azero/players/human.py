"""A human against a bot in the terminal: the board, a prompt, the bot's move and evaluation.

Commands at the prompt: a move in the game's notation (Connect Four: a column 1-7), `hint` (what
the bot would play here), `undo` (take back your last move and the bot's reply), `quit`. Bad input
re-prompts with the reason. Streams are parameters so tests can script a whole session.
"""
from __future__ import annotations

import sys
from typing import TextIO

import numpy as np

HELP = "type a move, 'hint', 'undo', 'resign', 'help' or 'quit'"


def describe_search(game, state: np.ndarray, search, top: int = 3) -> str:
    """The search's view of a root: its value (side to move) as an expected score, and the most
    visited moves with their visits and Q. Empty without a search."""
    if search is None:
        return ""
    value = float(search.root_value[0])
    visits = np.asarray(search.visit_counts[0])
    q = np.asarray(search.root_q[0])
    total = int(visits.sum())
    parts = []
    for a in np.argsort(-visits, kind="stable")[:top]:
        if visits[a] <= 0:
            break
        q_text = "" if np.isnan(q[a]) else f" Q {q[a]:+.2f}"
        parts.append(f"{game.format_action(state, int(a))}: {int(visits[a])}/{total} visits{q_text}")
    line = f"value {value:+.2f} (expected score {50 * (value + 1):.0f}%)"
    return line + ("; " + ", ".join(parts) if parts else "")


def play_terminal(game, bot, *, human_first: bool = True, stdin: TextIO | None = None,
                  stdout: TextIO | None = None, color: bool = False) -> float | None:
    """Play one game; returns the human's score (1, 0.5, 0), or None if the human quit."""
    stdin = sys.stdin if stdin is None else stdin
    stdout = sys.stdout if stdout is None else stdout
    human = 0 if human_first else 1
    one = np.ones(1, dtype=bool)

    def say(text: str = "") -> None:
        stdout.write(text + "\n")
        stdout.flush()

    bot.begin(1)
    bot.reset(None)
    # Every position of the game so far, with the move that led to it.
    history: list[tuple[np.ndarray, int | None]] = [(game.initial_states(1), None)]
    say(f"You play {'first' if human_first else 'second'} against {bot.name}; {HELP}.")

    while True:
        states, last = history[-1]
        say(game.render(states[0], last, color=color))
        if game.terminal(states)[0]:
            score = float(game.result(states)[0])                   # side to move's view
            human_score = score if int(game.to_play(states)[0]) == human else -score
            say({1.0: "You win!", 0.0: "Draw.", -1.0: f"{bot.name} wins."}[human_score])
            return (human_score + 1.0) / 2.0

        if int(game.to_play(states)[0]) != human:
            decision = bot.act(states, one)
            if decision.resigns():
                say(f"{bot.name} resigns. You win!")
                return 1.0
            action = int(decision.actions[0])
            evaluation = describe_search(game, states[0], decision.search)
            say(f"{bot.name} plays {game.format_action(states[0], action)}"
                + (f"  [{evaluation}]" if evaluation else ""))
            bot.observe(np.array([action]), one)
            history.append((game.step(states, np.array([action])), action))
            continue

        while True:                                  # prompt until a move is made
            stdout.write("your move> ")
            stdout.flush()
            line = stdin.readline()
            if not line:                             # end of input
                say()
                return None
            text = line.strip()
            command = text.lower()
            if command in ("quit", "q", "exit"):
                say("Bye.")
                return None
            if command == "resign":
                say(f"You resign. {bot.name} wins.")
                return 0.0
            if command in ("help", "?"):
                say(HELP)
                continue
            if command == "hint":
                decision = bot.act(states, one)
                action = int(decision.actions[0])
                evaluation = describe_search(game, states[0], decision.search)
                say(f"hint: {game.format_action(states[0], action)}"
                    + (f"  [{evaluation}]" if evaluation else ""))
                continue
            if command == "undo":
                # Back to the latest earlier position with the human to move.
                earlier = [i for i in range(len(history) - 1)
                           if int(game.to_play(history[i][0])[0]) == human]
                if not earlier:
                    say("nothing to undo")
                    continue
                del history[earlier[-1] + 1:]
                bot.reset(None)
                say(f"took back your last move and {bot.name}'s reply")
                break
            try:
                action = game.parse_action(states[0], text)
            except ValueError as e:
                say(f"{e} ({HELP})")
                continue
            bot.observe(np.array([action]), one)
            history.append((game.step(states, np.array([action])), action))
            break
