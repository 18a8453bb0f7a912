"""SGF (FF[4]) records of Go 9x9 games, written and read through sgfmill.

What a record holds: FF[4] GM[1] SZ[9], CA[UTF-8], AP[azero:<version>], KM (the komi the game
was scored with), RU[Chinese] (area scoring, positional superko, no suicide: our Tromp-Taylor
rules; the exact rules are in the root comment), PB / PW (the players), RE (B+R / W+R, B+3.5,
W+7, 0 for a draw, ? unknown), DT, the moves as B[..] / W[..] with passes as an empty value B[]
(FF[4]; sgfmill itself would write "tt"), and a GC holding the record's info as JSON
(`azero: {...}`) so that reading the file back restores it.

Where records go (`SGF_FORMAT`, go9's record format in the registry, games/__init__.py):
  * a path ending in ".sgf": one file holding a collection, one game after the other (Sabaki
    opens every game of a collection; GoGui shows the first);
  * any other path: a folder with one file per game, game-00001.sgf, game-00002.sgf, ... (every
    SGF viewer opens these). This is the default: the format's suffix is "", so `azero arena`
    names a folder arena-<time>/.
Every game is written atomically (folder) or appended and fsynced (collection); a reader skips a
game torn by a kill at the end of a collection.

Reading: `parse_sgf` gives the main line of each game tree (setup stones AB/AW, player to move
PL, moves with their colours, komi, names, result). Moves that do not alternate are joined by a
pass of the other side (as GTP does), so `SgfGame.actions()` is always a playable move list.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
from sgfmill import sgf, sgf_grammar

import azero
from azero.atomic import atomic_write_bytes
from azero.records import AppendingRecordWriter, GameRecord, RecordFormat

BOARD_SIZE = 9
PASS = BOARD_SIZE * BOARD_SIZE            # action 81, as in games/go9
RULES = "Chinese"
RULES_COMMENT = ("Rules: Tromp-Taylor area scoring, positional superko, suicide illegal, "
                 "two passes end the game.")
_INFO_PREFIX = "azero: "
_COLOURS = "bw"                           # player 0 = Black, 1 = White


class SgfError(ValueError):
    """An SGF file that cannot be read as a 9x9 Go game of ours."""


# --------------------------------------------------------------------------- coordinates

def action_to_sgf(action: int) -> tuple[int, int] | None:
    """Our action (row 0 = top, 81 = pass) -> sgfmill's (row, col) with row 0 at the BOTTOM,
    or None for a pass."""
    action = int(action)
    if action == PASS:
        return None
    if not 0 <= action < PASS:
        raise ValueError(f"go9 actions are 0..81, not {action}")
    r, c = divmod(action, BOARD_SIZE)
    return BOARD_SIZE - 1 - r, c


def sgf_to_action(move: tuple[int, int] | None) -> int:
    """sgfmill's (row, col) (row 0 at the bottom) or None (pass) -> our action."""
    if move is None:
        return PASS
    row, col = move
    return (BOARD_SIZE - 1 - row) * BOARD_SIZE + col


# --------------------------------------------------------------------------- results

def format_result(winner: int | None, margin: float | None = None) -> str:
    """SGF RE value: winner 0 (Black) / 1 (White) / None (draw); margin None = resignation.
    E.g. (0, 3.5) -> "B+3.5", (1, None) -> "W+R", (None, 0) -> "0"."""
    if winner is None:
        return "0"
    how = "R" if margin is None else f"{abs(float(margin)):g}"
    return f"{'BW'[winner]}+{how}"


def parse_result(text: str | None) -> float | None:
    """SGF RE value -> score of Black (1 win, 0.5 draw, 0 loss), None if unknown / void."""
    if not text:
        return None
    t = text.strip().upper()
    if t in ("0", "DRAW", "JIGO"):
        return 0.5
    if t.startswith("B+"):
        return 1.0
    if t.startswith("W+"):
        return 0.0
    return None


def record_result_string(game, record: GameRecord, final_state: np.ndarray) -> str:
    """RE of a finished record: the Tromp-Taylor score of the final position when the game ended
    on the board (two passes), or was cut off at the move cap and adjudicated by that score (a
    match's Go9.adjudicate); else a resignation (or "0" / "?": a self-play game cut off at the
    cap has no result)."""
    resigned = bool(record.info.get("resigned"))
    one = final_state[None]
    scored = bool(game.terminal(one)[0]) or (bool(game.truncated(one)[0])
                                             and record.result is not None)
    if not resigned and scored:
        score = float(game.score(one)[0])                 # > 0: Black wins
        return format_result(None if score == 0 else (0 if score > 0 else 1), score)
    if record.result is None:
        return "?"
    if float(record.result) == 0.5:
        return "0"
    return format_result(0 if float(record.result) == 1.0 else 1)


# --------------------------------------------------------------------------- writing

def game_to_sgf(moves, *, komi: float, black: str | None = None, white: str | None = None,
                result: str | None = None, info: dict | None = None,
                setup: tuple[list[int], list[int]] | None = None, first_colour: int = 0,
                game_date: str | None = None) -> bytes:
    """One game as SGF bytes. moves: actions in the order played, alternating colours starting
    with `first_colour` (0 Black); passes (81) are written as an empty value. setup: (black
    points, white points) placed before the first move (AB/AW). info: written to GC as JSON."""
    game = sgf.Sgf_game(size=BOARD_SIZE)
    root = game.get_root()
    root.set_raw("AP", f"azero:{azero.__version__}".encode())
    root.set("KM", float(komi))
    root.set("RU", RULES)
    root.set("DT", game_date or date.today().isoformat())
    if black:
        root.set("PB", str(black))
    if white:
        root.set("PW", str(white))
    if result:
        root.set("RE", result)
    if setup is not None and (setup[0] or setup[1]):
        root.set_setup_stones([action_to_sgf(p) for p in setup[0]],
                              [action_to_sgf(p) for p in setup[1]])
        root.set("PL", _COLOURS[first_colour])
    root.set("C", RULES_COMMENT)
    if info:
        root.set("GC", _INFO_PREFIX + json.dumps(info, sort_keys=True, default=str))
    node = root
    for i, action in enumerate(moves):
        node = node.new_child()
        colour = _COLOURS[(first_colour + i) % 2]
        if int(action) == PASS:
            node.set_raw(colour.upper(), b"")        # FF[4] pass: B[] / W[]
        else:
            node.set_move(colour, action_to_sgf(action))
    return game.serialise()


def record_to_sgf(game, record: GameRecord) -> bytes:
    """A GameRecord of go9 as SGF (replays the moves, which also checks them)."""
    state = game.initial_states(1)
    for i, action in enumerate(record.moves):
        try:
            state = game.step(state, np.array([action], dtype=np.int64))
        except ValueError as e:
            raise ValueError(f"record move {i + 1} ({action}): {e}") from None
    info = dict(record.info)
    if record.opening_plies:
        info["opening_plies"] = record.opening_plies
    if record.result is not None:
        info["score_first"] = record.result
    return game_to_sgf(record.moves, komi=game.komi, black=record.players[0],
                       white=record.players[1], result=record_result_string(game, record, state[0]),
                       info=info)


class SgfFolderWriter:
    """One .sgf file per game in a folder (created if missing), numbered after those there."""

    def __init__(self, game, folder: Path):
        self.game = game
        self.folder = Path(folder)
        if self.folder.exists() and not self.folder.is_dir():
            raise ValueError(f"{self.folder} is a file: SGF records go to a folder, or to a "
                             f"collection file whose name ends in .sgf")
        self.folder.mkdir(parents=True, exist_ok=True)
        numbers = [int(m.group(1)) for p in self.folder.glob("game-*.sgf")
                   if (m := re.fullmatch(r"game-(\d+)\.sgf", p.name))]
        self._next = max(numbers, default=0) + 1

    def write(self, record: GameRecord) -> None:
        data = record_to_sgf(self.game, record)
        atomic_write_bytes(self.folder / f"game-{self._next:05d}.sgf", data)
        self._next += 1

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class SgfCollectionWriter(AppendingRecordWriter):
    """Games appended to one .sgf file (an SGF collection), each flushed and fsynced."""

    def __init__(self, game, path: Path):
        self.game = game
        super().__init__(path)

    def encode(self, record: GameRecord) -> bytes:
        return record_to_sgf(self.game, record).rstrip(b"\n") + b"\n"

    def whole_records_end(self, data: bytes) -> int:
        """A game may span lines; each ends with its game tree's ")" and a newline."""
        end = data.rfind(b")\n")
        return 0 if end < 0 else end + 2


def open_sgf_writer(game, path: Path):
    path = Path(path)
    if path.suffix.lower() == ".sgf" and not path.is_dir():
        return SgfCollectionWriter(game, path)
    return SgfFolderWriter(game, path)


# --------------------------------------------------------------------------- reading

@dataclass
class SgfGame:
    """The main line of one SGF game tree, in our terms."""
    komi: float | None
    black: str | None
    white: str | None
    result: str | None                       # RE as written
    setup_black: list[int] = field(default_factory=list)   # AB points (actions 0..80)
    setup_white: list[int] = field(default_factory=list)
    first_colour: int = 0                    # who moves first (PL, else White after a handicap)
    moves: list[tuple[int, int]] = field(default_factory=list)   # (colour 0/1, action)
    info: dict = field(default_factory=dict)  # our GC JSON, if present

    @property
    def has_setup(self) -> bool:
        return bool(self.setup_black or self.setup_white)

    def actions(self) -> list[int]:
        """The moves as one alternating action list from `first_colour`: a move by the side not
        to move gets a pass of the other side before it."""
        out: list[int] = []
        to_move = self.first_colour
        for colour, action in self.moves:
            if colour != to_move:
                out.append(PASS)
            out.append(action)
            to_move = 1 - colour
        return out


def parse_sgf(data: bytes | str) -> list[SgfGame]:
    """Every game of an SGF file (a collection) as `SgfGame`s. Raises SgfError for data that
    is not SGF, a board that is not 9x9, a game that is not Go, or a bad move."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    try:
        trees = sgf_grammar.parse_sgf_collection(data)
    except ValueError as e:
        raise SgfError(f"not an SGF file: {e}") from None
    return [_read_tree(tree, i) for i, tree in enumerate(trees)]


def _read_tree(tree, index: int) -> SgfGame:
    where = f"game {index + 1}"
    try:
        game = sgf.Sgf_game.from_coarse_game_tree(tree)
    except ValueError as e:
        raise SgfError(f"{where}: {e}") from None
    root = game.get_root()
    if root.has_property("GM") and root.get("GM") != 1:
        raise SgfError(f"{where}: GM[{root.get('GM')}] is not Go (GM[1])")
    if game.get_size() != BOARD_SIZE:
        raise SgfError(f"{where}: board size {game.get_size()}; azero plays 9x9 only")
    try:
        komi = game.get_komi() if root.has_property("KM") else None
        black, white = game.get_player_name("b"), game.get_player_name("w")
        result = root.get("RE") if root.has_property("RE") else None
        setup_b, setup_w, setup_e = root.get_setup_stones()
    except ValueError as e:
        raise SgfError(f"{where}: bad root property: {e}") from None
    if setup_e:
        raise SgfError(f"{where}: AE (remove stones) is not supported")
    out = SgfGame(komi=komi, black=black, white=white, result=result,
                  setup_black=sorted(sgf_to_action(p) for p in setup_b),
                  setup_white=sorted(sgf_to_action(p) for p in setup_w))
    if root.has_property("PL"):
        out.first_colour = _COLOURS.index(root.get("PL"))
    elif setup_b and not setup_w:
        out.first_colour = 1                # handicap stones: White moves first
    if root.has_property("GC"):
        text = root.get("GC")
        if text.startswith(_INFO_PREFIX):
            try:
                out.info = json.loads(text[len(_INFO_PREFIX):])
            except json.JSONDecodeError:
                pass
    for number, node in enumerate(game.get_main_sequence()[1:], 1):
        if node.has_setup_stones():
            raise SgfError(f"{where}, node {number}: setup stones after the start are not "
                           f"supported")
        try:
            colour, move = node.get_move()
        except ValueError as e:
            raise SgfError(f"{where}, node {number}: bad move: {e}") from None
        if colour is None:
            continue                        # a node without a move (comments, markup)
        out.moves.append((_COLOURS.index(colour), sgf_to_action(move)))
    return out


def _sgf_path_games(path: Path) -> list[tuple[Path, SgfGame]]:
    if path.is_dir():
        games = []
        for p in sorted(path.glob("*.sgf")):
            games.extend((p, g) for g in parse_sgf(p.read_bytes()))
        return games
    data = path.read_bytes()
    try:
        return [(path, g) for g in parse_sgf(data)]
    except SgfError:
        # A kill may have torn the last game of a collection: read up to the last whole game.
        end = data.rstrip().rfind(b")\n")
        if end < 0:
            raise
        return [(path, g) for g in parse_sgf(data[:end + 1])]


def sgf_game_to_record(game, g: SgfGame) -> GameRecord:
    """An SgfGame -> GameRecord of `game` (checks every move with our rules)."""
    if g.has_setup:
        raise SgfError("a game with setup stones (AB/AW) cannot be a GameRecord")
    if g.first_colour != 0:
        raise SgfError("a game where White moves first cannot be a GameRecord")
    moves = g.actions()
    state = game.initial_states(1)
    for i, action in enumerate(moves):
        try:
            state = game.step(state, np.array([action], dtype=np.int64))
        except ValueError as e:
            raise SgfError(f"move {i + 1}: {e}") from None
    info = dict(g.info)
    opening = int(info.pop("opening_plies", 0))
    score_first = info.pop("score_first", None)
    if score_first is None:
        score_first = parse_result(g.result)
    return GameRecord(game=game.spec.name, players=(g.black or "Black", g.white or "White"),
                      moves=moves, result=score_first, opening_plies=opening, info=info)


def read_sgf_records(game, path: str | os.PathLike) -> list[GameRecord]:
    """Records from a folder of .sgf files or from one .sgf file (collection)."""
    records = []
    for p, g in _sgf_path_games(Path(path)):
        try:
            records.append(sgf_game_to_record(game, g))
        except SgfError as e:
            raise SgfError(f"{p}: {e}") from None
    return records


def read_sgf_games(game, path: str | os.PathLike):
    """Each game of one .sgf file in order: its GameRecord, or the SgfError saying why that
    game cannot be one ("game 2: board size 19; ...", "game 3: move 14: ..."). SgfError for a
    file that is not SGF at all; a last game torn by a kill is left out, as read_sgf_records
    does."""
    data = Path(path).read_bytes()
    try:
        trees = sgf_grammar.parse_sgf_collection(data)
    except ValueError as e:
        end = data.rstrip().rfind(b")\n")
        try:
            trees = sgf_grammar.parse_sgf_collection(data[:end + 1]) if end >= 0 else None
        except ValueError:
            trees = None
        if trees is None:
            raise SgfError(f"not an SGF file: {e}") from None
    for index, tree in enumerate(trees):
        try:
            yield sgf_game_to_record(game, _read_tree(tree, index))
        except SgfError as e:
            where = f"game {index + 1}"
            yield e if str(e).startswith((f"{where}:", f"{where},")) else SgfError(f"{where}: {e}")


SGF_FORMAT = RecordFormat(suffix="", open_writer=open_sgf_writer, read=read_sgf_records,
                          read_games=read_sgf_games, file_suffix=".sgf")
