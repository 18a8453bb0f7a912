"""PGN records of chess games, written and read through python-chess's chess.pgn.

What a game holds:
  * the seven-tag roster: Event ("azero arena: A vs B", "azero self-play, generation 3"), Site
    "?", Date (UTC, YYYY.MM.DD), Round (the match's game number, "-" in self-play), White, Black
    (the players) and Result ("1-0", "0-1", "1/2-1/2", or "*" for a game without a result: a
    self-play game cut off at the move cap);
  * PlyCount; Termination, one of PGN's standard values: "normal" (the rules ended it, or a
    resignation), "adjudication" (an arena game cut off at the move cap and scored by the arena),
    "unterminated" (cut off without a result); the reason in words is the comment on the last
    move, as cutechess-cli writes it: "White mates", "Draw by threefold repetition", "Draw by
    fifty-move rule", "Black resigns", "Cut off at the move cap (512 plies): draw by
    adjudication", ...;
  * SetUp "1" and FEN when the game starts from another position than the standard one;
  * AzeroInfo: the record's info and opening_plies as JSON, so that reading the file back
    restores the GameRecord exactly; the last move of the opening (the arena's random plies, which
    no player chose) has the comment "end of opening".
Tag values are escaped as the PGN standard says (\\ and \"), which python-chess's writer leaves
to its caller; the reader undoes it.

Where records go (`PGN_FORMAT`, chess's record format in the registry, games/__init__.py): one
.pgn file, games appended one after the other, each flushed and fsynced (azero/records.py
`AppendingRecordWriter`); every game ends with its result and a blank line, so a game torn by a
kill is cut off when the file is next opened, and skipped by the reader.
"""
from __future__ import annotations

import io
import json
import os
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

import chess
import chess.pgn
import numpy as np

from azero.records import AppendingRecordWriter, GameRecord, RecordFormat

INFO_TAG = "AzeroInfo"
OPENING_COMMENT = "end of opening"
_SCORES = {"1-0": 1.0, "0-1": 0.0, "1/2-1/2": 0.5}
# A whole game's end in a file we wrote: its result token, then a blank line.
_GAME_END = re.compile(rb"(?:1-0|0-1|1/2-1/2|\*)\n\n")
# Text that ends with a game: a result token standing alone (not inside a tag: [Result "1-0).
_ENDS_WITH_RESULT = re.compile(r"(?:^|\s)(?:1-0|0-1|1/2-1/2|\*)\s*\Z")
_TAIL_BYTES = 1 << 16                 # more than any game we write (512 plies: ~5 KB)


def _escape(value: str) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"')


def _unescape(value: str) -> str:
    return re.sub(r"\\(.)", r"\1", value)


# --------------------------------------------------------------------------- writing

def _event(info: dict) -> str:
    if info.get("match"):
        return f"azero arena: {info['match']}"
    if info.get("selfplay"):
        generation = info.get("generation")
        return "azero self-play" + ("" if generation is None else f", generation {generation}")
    return "azero"


def _termination(game, record: GameRecord, final_state: np.ndarray) -> tuple[str, str]:
    """(Termination tag, the words of the final comment) of a record whose moves end in
    `final_state`."""
    one = final_state[None]
    if record.info.get("resigned") and record.result in (0.0, 1.0):
        return "normal", f"{'Black' if record.result == 1.0 else 'White'} resigns"
    if game.terminal(one)[0]:
        reason = game.status(final_state)
        if reason == "checkmate":       # the side to move is mated
            return "normal", f"{'Black' if game.to_play(one)[0] == 0 else 'White'} mates"
        return "normal", f"Draw by {reason}"
    plies = int(game.move_number(one)[0])
    cut = (f"Cut off at the move cap ({plies} plies)" if game.truncated(one)[0]
           else f"Stopped after {plies} plies")
    if record.result is None:
        return "unterminated", f"{cut}: no result"
    how = record.info.get("adjudicated") or "scored by the match"
    return "adjudication", f"{cut}: {record.result_string} by adjudication ({how})"


def record_to_pgn(game, record: GameRecord, *, game_date: str | None = None) -> str:
    """A GameRecord of chess as one PGN game (text without a trailing newline). Replays the
    moves, which also checks them: ValueError naming the first illegal one."""
    state = game.initial_states(1)[0]
    pgn = chess.pgn.Game()
    start = game.board_of(state)
    if start.fen() != chess.STARTING_FEN:
        pgn.setup(start)                                # SetUp "1" and FEN
    node = pgn
    for ply, action in enumerate(record.moves, 1):
        try:
            move = game.move_of_action(state, int(action))
        except ValueError as e:
            raise ValueError(f"record move {ply} ({action}): {e}") from None
        node = node.add_variation(move)
        if ply == record.opening_plies:
            node.comment = OPENING_COMMENT
        state = game.step(state[None], np.array([action], dtype=np.int64))[0]
    termination, words = _termination(game, record, state)
    node.comment = "; ".join(filter(None, (node.comment, words)))
    headers = pgn.headers
    headers["Event"] = _escape(_event(record.info))
    headers["Site"] = "?"
    headers["Date"] = game_date or datetime.now(timezone.utc).strftime("%Y.%m.%d")
    index = record.info.get("game_index")
    headers["Round"] = "-" if index is None else str(int(index) + 1)
    headers["White"] = _escape(record.players[0])
    headers["Black"] = _escape(record.players[1])
    headers["Result"] = record.result_string
    headers["PlyCount"] = str(len(record.moves))
    headers["Termination"] = termination
    info = dict(record.info)
    if record.opening_plies:
        info["opening_plies"] = record.opening_plies
    if info:
        headers[INFO_TAG] = _escape(json.dumps(info, sort_keys=True, default=str))
    return str(pgn)


class PgnWriter(AppendingRecordWriter):
    """Games appended to one .pgn file, each flushed and fsynced."""

    def __init__(self, game, path: Path):
        self.game = game
        super().__init__(path)

    def encode(self, record: GameRecord) -> bytes:
        return (record_to_pgn(self.game, record) + "\n\n").encode("utf-8")

    def whole_records_end(self, data: bytes) -> int:
        ends = [m.end() for m in _GAME_END.finditer(data)]
        return ends[-1] if ends else 0

    def _drop_torn_tail(self) -> None:
        """A PGN game has newlines inside it, so a file ending in one may still end inside a
        game (the base class's test): the file must end with a game's result and a blank
        line. Only its tail is read: a game is far shorter than _TAIL_BYTES."""
        size = self._file.seek(0, os.SEEK_END)
        if size == 0:
            return
        with open(self.path, "rb") as f:
            start = max(0, size - _TAIL_BYTES)
            f.seek(start)
            tail = f.read()
        if start > 0 and not _GAME_END.search(tail):
            start, tail = 0, self.path.read_bytes()     # a file of one very long game
        end = start + self.whole_records_end(tail)
        if end != size:
            self._file.truncate(end)
            os.fsync(self._file.fileno())


# --------------------------------------------------------------------------- reading

def _each_pgn_game(text: str) -> Iterator[chess.pgn.Game]:
    """Every game of PGN text as python-chess read it (its `errors` say what it could not
    read), skipping a last game torn by a kill (one not ending with its result)."""
    if not _ENDS_WITH_RESULT.search(text):
        ends = [m.end() for m in _GAME_END.finditer(text.encode("utf-8"))]
        text = text.encode("utf-8")[:ends[-1] if ends else 0].decode("utf-8")
    handle = io.StringIO(text)
    while (pgn := chess.pgn.read_game(handle)) is not None:
        yield pgn


def _pgn_error(pgn: chess.pgn.Game) -> str:
    """What python-chess could not read in a game, at the ply where its main line stops."""
    ply = sum(1 for _ in pgn.mainline_moves()) + 1
    return f"move {ply}: {pgn.errors[0]}"


def read_pgn_games(text: str) -> list[chess.pgn.Game]:
    """Every game of PGN text, skipping a last game torn by a kill (one not ending with its
    result). ValueError for a game python-chess could not read (an illegal move, ...)."""
    games = []
    for pgn in _each_pgn_game(text):
        if pgn.errors:
            raise ValueError(f"game {len(games) + 1}: {_pgn_error(pgn)}")
        games.append(pgn)
    return games


def pgn_to_record(game, pgn: chess.pgn.Game) -> GameRecord:
    """One python-chess game -> a GameRecord of `game` (every move checked with our rules).
    ValueError for a variant, another start position than the game's, or an illegal move."""
    headers = pgn.headers
    variant = headers.get("Variant", "standard").lower()
    if variant not in ("standard", "chess", "normal"):
        raise ValueError(f"variant {headers['Variant']!r}: azero plays standard chess only")
    state = game.initial_states(1)[0]
    start = pgn.board()
    if start.fen() != game.board_of(state).fen():
        raise ValueError(f"the game starts from {start.fen()}, not from the start position; "
                         f"a record replays from the start")
    moves = []
    for ply, move in enumerate(pgn.mainline_moves(), 1):
        try:
            action = game.action_of_move(state, move)
        except ValueError as e:
            raise ValueError(f"move {ply} ({move.uci()}): {e}") from None
        moves.append(action)
        state = game.step(state[None], np.array([action], dtype=np.int64))[0]
    info = json.loads(_unescape(headers[INFO_TAG])) if INFO_TAG in headers else {}
    opening = int(info.pop("opening_plies", 0))
    return GameRecord(game=game.spec.name,
                      players=(_unescape(headers.get("White", "?")),
                               _unescape(headers.get("Black", "?"))),
                      moves=moves, result=_SCORES.get(headers.get("Result", "*")),
                      opening_plies=opening, info=info)


def read_pgn_records(game, path: str | os.PathLike) -> list[GameRecord]:
    """The records of a .pgn file (see read_pgn_games; a torn last game is skipped)."""
    path = Path(path)
    records = []
    try:
        games = read_pgn_games(path.read_text(encoding="utf-8"))
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None
    for number, pgn in enumerate(games, 1):
        try:
            records.append(pgn_to_record(game, pgn))
        except ValueError as e:
            raise ValueError(f"{path}: game {number}: {e}") from None
    return records


def read_pgn_record_games(game, path: str | os.PathLike) -> Iterator[GameRecord | ValueError]:
    """Each game of one .pgn file in order: its GameRecord, or the ValueError saying why that
    game cannot be one ("game 2: move 7 (e1g1): ...", a variant, another start position). A last
    game torn by a kill is left out; ValueError (UnicodeDecodeError) for a file that is not
    UTF-8 text."""
    text = Path(path).read_text(encoding="utf-8")
    for number, pgn in enumerate(_each_pgn_game(text), 1):
        try:
            if pgn.errors:
                raise ValueError(_pgn_error(pgn))
            yield pgn_to_record(game, pgn)
        except ValueError as e:
            yield ValueError(f"game {number}: {e}")


PGN_FORMAT = RecordFormat(suffix=".pgn", open_writer=PgnWriter, read=read_pgn_records,
                          read_games=read_pgn_record_games)
