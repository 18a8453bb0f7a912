"""Game records: what a finished game is (`GameRecord`) and how it is stored, one format per game.

Each game names its format in the registry (games/__init__.py, `record_format`), beside its rules:
JSON lines with the moves as one string where every move is one character (`json_lines_format`),
SGF, PGN. A game without its own format gets JSON lines with a list of moves in its notation.

Records are appended one line at a time and each line is flushed and fsynced: a kill loses at most
the line being written, and readers skip a torn last line. (A whole-file atomic rewrite per game
would cost O(games^2) bytes; an append-only log with a tolerant reader keeps the same guarantee.)
"""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Protocol

import numpy as np

RESULT_STRINGS = {1.0: "1-0", 0.5: "1/2-1/2", 0.0: "0-1"}


@dataclass
class GameRecord:
    game: str                           # the game's registry name
    players: tuple[str, str]            # (first player, second player)
    moves: list[int]                    # actions, in the order played
    result: float | None                # score of the first player: 1, 0.5 or 0; None if unfinished
    opening_plies: int = 0              # how many leading moves came from the opening, not a player
    info: dict = field(default_factory=dict)   # anything else: match, game index, sims, date, ...

    @property
    def result_string(self) -> str:
        return "*" if self.result is None else RESULT_STRINGS[float(self.result)]


class RecordWriter(Protocol):
    def write(self, record: GameRecord) -> None: ...
    def close(self) -> None: ...


@dataclass(frozen=True)
class RecordFormat:
    suffix: str                                             # file name suffix, e.g. ".jsonl"
    open_writer: Callable[[object, Path], RecordWriter]     # (game, path) -> writer
    read: Callable[[object, Path], list[GameRecord]]        # (game, path) -> records
    # Game by game, for readers that skip a bad game and go on (azero pretrain): (game, one
    # record file) -> each game of the file in order, a GameRecord or the ValueError saying why
    # that game is not one ("game 3: move 14: ..."); raises (ValueError, OSError) for a file
    # that cannot be read at all. None: `read` is all there is.
    read_games: Callable[[object, Path], Iterator["GameRecord | ValueError"]] | None = None
    file_suffix: str | None = None     # one record file's suffix where `suffix` is "" (a folder)

    @property
    def record_file_suffix(self) -> str:
        """The suffix of one file of records, e.g. ".sgf" where records go to a folder."""
        return self.file_suffix if self.file_suffix is not None else self.suffix


def replay_notation(game, moves: list[int]) -> list[str]:
    """The moves in the game's notation, replaying them from the start (which also checks them)."""
    states = game.initial_states(1)
    out = []
    for action in moves:
        out.append(game.format_action(states[0], int(action)))
        states = game.step(states, np.array([action], dtype=np.int64))
    return out


def parse_notation(game, notation: list[str]) -> list[int]:
    states = game.initial_states(1)
    moves = []
    for i, text in enumerate(notation):
        try:
            action = game.parse_action(states[0], text)
        except ValueError as e:
            raise ValueError(f"move {i + 1} ({text!r}): {e}") from None
        moves.append(action)
        states = game.step(states, np.array([action], dtype=np.int64))
    return moves


class AppendingRecordWriter:
    """Records appended to one file (created with its folder if missing), each written whole,
    flushed and fsynced: a kill loses at most the record being written. Subclasses give
    `encode(record)`: the bytes of one record, ending in a newline."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "ab")
        self._drop_torn_tail()

    def encode(self, record: GameRecord) -> bytes:
        raise NotImplementedError

    def whole_records_end(self, data: bytes) -> int:
        """Where the last whole record of `data` ends (every record ends with a newline)."""
        return data.rfind(b"\n") + 1

    def _drop_torn_tail(self) -> None:
        """A write cut short (a full disk, a kill inside write()) left part of a record at the
        end: it is cut off, or the next record would be glued to it and the file unreadable."""
        size = self._file.seek(0, os.SEEK_END)
        if size == 0:
            return
        with open(self.path, "rb") as f:
            f.seek(size - 1)
            if f.read(1) == b"\n":
                return                          # the last record is whole
            f.seek(0)
            end = self.whole_records_end(f.read())
        self._file.truncate(end)
        os.fsync(self._file.fileno())

    def write(self, record: GameRecord) -> None:
        self._file.write(self.encode(record))
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        self._file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _JsonLinesWriter(AppendingRecordWriter):
    def __init__(self, game, path: Path, compact_moves: bool):
        self.game = game
        self._compact = compact_moves
        super().__init__(path)

    def encode(self, record: GameRecord) -> bytes:
        notation = replay_notation(self.game, record.moves)
        line = {
            "game": record.game,
            "moves": "".join(notation) if self._compact else notation,
            "first": record.players[0],
            "second": record.players[1],
            "result": record.result_string,
            "score_first": record.result,
            "opening_plies": record.opening_plies,
            **({"info": record.info} if record.info else {}),
        }
        return (json.dumps(line) + "\n").encode("utf-8")


def _json_lines(path: Path) -> Iterator[tuple[int, dict | ValueError]]:
    """(line number, the line's object or the ValueError of a line that is not JSON)."""
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    # Every record ends with "\n", so the last piece is "" unless a kill tore the last write;
    # that unfinished line is skipped.
    for number, line in enumerate(lines[:-1], 1):
        if line.strip():
            try:
                yield number, json.loads(line)
            except json.JSONDecodeError as e:
                yield number, ValueError(f"not a JSON record: {e}")


def _json_record(game, obj, compact_moves: bool) -> GameRecord:
    """One line's object -> a GameRecord of `game` (its moves checked by replaying them).
    ValueError for a record of another game, a malformed record or an illegal move."""
    if not isinstance(obj, dict) or "moves" not in obj:
        raise ValueError("not a game record (no \"moves\")")
    if obj.get("game", game.spec.name) != game.spec.name:
        raise ValueError(f"a record of {obj['game']!r}, not of {game.spec.name}")
    moves = obj["moves"]
    if not (isinstance(moves, str) if compact_moves
            else isinstance(moves, list) and all(isinstance(m, str) for m in moves)):
        raise ValueError(f"\"moves\" is not a {'string' if compact_moves else 'list of strings'}")
    score = obj.get("score_first")
    if score is not None and (isinstance(score, bool) or score not in (0.0, 0.5, 1.0)):
        raise ValueError(f"\"score_first\" {score!r} is not 1, 0.5, 0 or null")
    opening = obj.get("opening_plies", 0)
    if not isinstance(opening, int) or isinstance(opening, bool) or opening < 0:
        raise ValueError(f"\"opening_plies\" {opening!r} is not a count of plies")
    return GameRecord(
        game=game.spec.name, players=(obj.get("first", "?"), obj.get("second", "?")),
        moves=parse_notation(game, list(moves)), result=score, opening_plies=opening,
        info=obj.get("info", {}))


def read_json_lines_games(game, path: Path, compact_moves: bool
                          ) -> Iterator[GameRecord | ValueError]:
    """Each line of a JSON lines file: its GameRecord, or ValueError("line N: why not")."""
    for number, obj in _json_lines(Path(path)):
        try:
            if isinstance(obj, ValueError):
                raise obj
            yield _json_record(game, obj, compact_moves)
        except ValueError as e:
            yield ValueError(f"line {number}: {e}")


def _read_json_lines(game, path: Path, compact_moves: bool) -> list[GameRecord]:
    records = []
    for record in read_json_lines_games(game, path, compact_moves):
        if isinstance(record, ValueError):
            raise ValueError(f"{path}: {record}")
        records.append(record)
    return records


def json_lines_format(compact_moves: bool = False) -> RecordFormat:
    """JSON lines; with `compact_moves` the moves are one concatenated string (for games whose
    every move is one character, such as Connect Four's column digits)."""
    return RecordFormat(
        suffix=".jsonl",
        open_writer=lambda game, path: _JsonLinesWriter(game, path, compact_moves),
        read=lambda game, path: _read_json_lines(game, path, compact_moves),
        read_games=lambda game, path: read_json_lines_games(game, path, compact_moves))


_DEFAULT_FORMAT = json_lines_format(compact_moves=False)


def record_format(game_name: str) -> RecordFormat:
    """The record format of a registered game (its registry hook, or JSON lines of moves in its
    notation). ValueError for an unknown game."""
    from azero.games import hook
    return hook(game_name, "record_format") or _DEFAULT_FORMAT


def open_record_writer(game, path: str | os.PathLike) -> RecordWriter:
    """A writer appending records of `game` to `path` in the game's format."""
    return record_format(game.spec.name).open_writer(game, Path(path))


def discard_records(path: str | os.PathLike) -> None:
    """Remove the records at `path`, a file or (SGF) a folder of files, if any: a match cut
    short by a kill is played afresh, its partial records dropped."""
    path = Path(path)
    if path.is_dir():
        shutil.rmtree(path)
    path.unlink(missing_ok=True)


def read_records(game, path: str | os.PathLike) -> list[GameRecord]:
    return record_format(game.spec.name).read(game, Path(path))
