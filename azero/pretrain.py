"""Supervised start (AlphaGo's first stage): the policy and value heads of a game's AlphaZero
network trained from game records, before self-play takes over (`azero selfplay --init`).

Data: record files in the game's own format (the registry's `record_format`: SGF for Go, PGN for
chess, JSON lines for Connect Four), found under the paths given by the format's file suffix
and read game by game (RecordFormat.read_games): a malformed game, a game of another board or
game, an illegal move are skipped with a line naming the file, the game and the move; a file that
cannot be read at all is skipped likewise; only when no usable game remains is it an error
(RecordsError).

Targets, one row per position where a player chose the move (the plies a record marks as its
random opening, `opening_plies`, are no one's choice and are left out):
  * policy: the move played, one-hot [A];
  * value: the game's result from the side to move at that position (+1 win, 0 draw, -1 loss),
    as self-play's targets are (azero/selfplay.py). A record without a result (a game cut off
    unscored) gives policy targets only: its rows have value weight 0, so the value loss is the
    mean over the rows that have a result (masked, not guessed as a draw).
Each sampled position is turned by a random symmetry of the game (Go: 8, Connect Four: the
mirror), state and one-hot policy together, as the replay buffer does.

Split: by game, never by position (the positions of one game are strongly correlated, and a
position's neighbours in the same game would leak its answer). Which games are held out depends
only on the seed and each game's moves (a hash of both), not on file names or order; identical
games land on the same side, so a game played twice cannot be in both (duplicates are kept, not
merged; the report counts the distinct games: a deterministic engine playing itself plays each
colour-swapped pair of an arena match twice over). Reported on the held-out
positions: move-prediction top-1 accuracy (the net's most likely legal move equals the move
played), the chance level (mean over positions of 1 / legal moves), the policy cross-entropy and
the value loss (mean squared error over positions with a result).

Training is the trainer's (azero/train.py Trainer: optimizer, LR schedule with total_steps set to
the pretraining's length unless overridden, bf16 autocast, gradient clipping, atomic checkpoints)
with the one difference the value mask needs (RecordTrainer: its batches carry a value weight). The checkpoint is a
normal one (azero/checkpoint.py), its metadata holding the pretraining's figures under "pretrain";
each evaluation also appends a line to metrics.jsonl beside it (azero/rundir.py's log).

Resume: the checkpoint is rewritten (atomically, with the optimizer) at every evaluation, and the
same command run again continues from it: a stopped or killed pretraining loses at most the steps
since the last evaluation. Step s's rows and symmetries are drawn from (seed, s) alone
(`BatchOrder`, `step_rng`), so the resumed run takes the very batches the uninterrupted one
would have, and ends with the same weights. A checkpoint of another job at the same path (other
records, split, length, batch or seed) is an error naming what differs, never overwritten.
"""
from __future__ import annotations

import dataclasses
import hashlib
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from .config import Config, ConfigError
from .nets import set_torch_threads
from .records import GameRecord, record_format
from .replay import _transform_rows
from .rundir import RunDir
from .train import Trainer

# Skipped files and games are reported one line each up to this many; the rest as a count.
MAX_REPORTED_PROBLEMS = 20


class RecordsError(ValueError):
    """No usable game records: none found under the paths, or every one was unusable."""


# ---------------------------------------------------------------------------------- reading

def record_files(paths: Sequence[str | os.PathLike], suffix: str) -> list[Path]:
    """The record files the paths name: a file as given, a folder's files ending in `suffix`
    (any case, searched recursively; hidden files such as atomic writes' temporaries left out),
    in sorted order, each once. RecordsError for a path that does not exist."""
    found: list[Path] = []
    for given in paths:
        path = Path(given)
        if path.is_file():
            found.append(path)
        elif path.is_dir():
            found.extend(sorted(
                p for p in path.rglob("*") if p.is_file() and not p.name.startswith(".")
                and p.name.lower().endswith(suffix.lower())))
        else:
            raise RecordsError(f"{path}: no such file or folder")
    unique: dict[Path, Path] = {}          # a file named twice (a folder and a file in it)
    for p in found:
        unique.setdefault(p.resolve(), p)
    return list(unique.values())


@dataclass
class RecordSet:
    records: list[GameRecord]          # the usable games, in file order
    files: list[Path]                  # the files read
    skipped: list[str] = field(default_factory=list)   # "file: game 3: why", "file: why"
    skipped_files: int = 0             # files that could not be read at all


def read_record_set(game, paths: Sequence[str | os.PathLike],
                    warn: Callable[[str], None] | None = None) -> RecordSet:
    """Every usable game of `game` in the record files under `paths` (record_files with the
    game's record file suffix). A bad game or an unreadable file is skipped and reported through
    `warn` ("skipped FILE: game N: why"). RecordsError when no file is found or no usable game
    remains (the message lists the first problems)."""
    name = game.spec.name
    fmt = record_format(name)
    suffix = fmt.record_file_suffix
    if fmt.read_games is None:
        raise RecordsError(f"{name}'s record format cannot be read game by game (its "
                           f"RecordFormat has no read_games)")
    files = record_files(paths, suffix)
    if not files:
        raise RecordsError(f"no {name} record files (*{suffix}) under "
                           f"{', '.join(str(p) for p in paths)}")
    out = RecordSet(records=[], files=files)

    def skip(line: str) -> None:
        out.skipped.append(line)
        if warn is not None and len(out.skipped) <= MAX_REPORTED_PROBLEMS:
            warn(f"skipped {line}")

    for path in files:
        if not path.name.lower().endswith(suffix.lower()):
            out.skipped_files += 1
            skip(f"{path}: not a {name} record file (those end in {suffix})")
            continue
        try:
            for item in fmt.read_games(game, path):
                if isinstance(item, GameRecord):
                    out.records.append(item)
                else:
                    skip(f"{path}: {item}")
        except (OSError, ValueError) as e:      # UnicodeDecodeError is a ValueError
            out.skipped_files += 1
            skip(f"{path}: unreadable: {e}")
    if warn is not None and len(out.skipped) > MAX_REPORTED_PROBLEMS:
        warn(f"skipped {len(out.skipped) - MAX_REPORTED_PROBLEMS} more (games or files)")
    if not out.records:
        shown = "; ".join(out.skipped[:3]) + ("; ..." if len(out.skipped) > 3 else "")
        raise RecordsError(f"no usable {name} game in {len(files)} record file(s)"
                           + (f": {shown}" if shown else " (the files hold no games)"))
    return out


# ---------------------------------------------------------------------------------- positions

@dataclass
class Positions:
    """One row per position where a player chose the move."""
    states: np.ndarray        # spec.state_dtype [N, S]: the position before the move
    actions: np.ndarray       # int64 [N]: the move played there
    value: np.ndarray         # float32 [N]: the result for the side to move (0 without one)
    value_weight: np.ndarray  # float32 [N]: 1 where the game has a result, 0 where not
    game_index: np.ndarray    # int64 [N]: the record the row comes from

    def __len__(self) -> int:
        return len(self.actions)

    def subset(self, rows: np.ndarray) -> "Positions":
        return Positions(self.states[rows], self.actions[rows], self.value[rows],
                         self.value_weight[rows], self.game_index[rows])


def positions_of(game, records: Sequence[GameRecord]) -> Positions:
    """The training rows of `records`, replayed side by side (one batched step per ply). The
    records' moves are legal (their readers replayed them)."""
    spec = game.spec
    lengths = np.array([len(r.moves) for r in records], np.int64)
    moves = np.zeros((len(records), int(lengths.max(initial=0))), np.int64)   # [G, T]
    for g, record in enumerate(records):
        moves[g, :len(record.moves)] = record.moves
    states = game.initial_states(len(records))
    rows_states, rows_to_play, rows_game, rows_ply = [], [], [], []
    for ply in range(moves.shape[1]):
        active = np.nonzero(lengths > ply)[0]
        rows_states.append(states[active].copy())
        rows_to_play.append(np.asarray(game.to_play(states[active]), np.int64))
        rows_game.append(active)
        rows_ply.append(np.full(len(active), ply, np.int64))
        states[active] = game.step(states[active], moves[active, ply])
    if not rows_game:
        return Positions(np.zeros((0, spec.state_size), spec.state_dtype), np.zeros(0, np.int64),
                         np.zeros(0, np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64))
    all_states = np.concatenate(rows_states)
    to_play = np.concatenate(rows_to_play)
    game_index = np.concatenate(rows_game)
    ply = np.concatenate(rows_ply)
    opening = np.array([r.opening_plies for r in records], np.int64)
    # score of the first player 1 / 0.5 / 0 -> +1 / 0 / -1 for the first player; NaN: none
    first = np.array([np.nan if r.result is None else 2.0 * float(r.result) - 1.0
                      for r in records], np.float64)
    keep = ply >= opening[game_index]
    result = first[game_index]
    has_result = ~np.isnan(result)
    value = np.where(has_result, np.where(to_play == 0, result, -result), 0.0)
    return Positions(all_states[keep], moves[game_index, ply][keep],
                     value[keep].astype(np.float32), has_result[keep].astype(np.float32),
                     game_index[keep])


def held_out_games(records: Sequence[GameRecord], fraction: float, seed: int) -> np.ndarray:
    """bool [G]: the games held out. About `fraction` of them (at least one, and at least one
    left to train on, when fraction > 0 and there are two or more distinct games), chosen by a
    hash of the seed and each game's moves: the same games whatever the order of the records,
    and identical games always on the same side."""
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"holdout must be in [0, 1), got {fraction}")
    held = np.zeros(len(records), bool)
    if fraction == 0.0 or not records:
        return held
    groups: dict[str, list[int]] = {}
    for g, record in enumerate(records):
        key = hashlib.blake2b(f"{seed}|{record.game}|{','.join(map(str, record.moves))}"
                              .encode(), digest_size=16).hexdigest()
        groups.setdefault(key, []).append(g)
    want = min(max(1, round(fraction * len(records))), len(records) - 1)
    count = 0
    for key in sorted(groups):
        if count >= want:
            break
        members = groups[key]
        if count + len(members) <= len(records) - 1:
            held[members] = True
            count += len(members)
    return held


def make_batch(game, positions: Positions, rows: np.ndarray, rng: np.random.Generator | None
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(obs float32 [B, *observation_shape], one-hot policy float32 [B, A], value float32 [B],
    value weight float32 [B]) of the given rows, each under a random symmetry of the game drawn
    from `rng` (None: as recorded). The state and the one-hot move turn together, as in
    ReplayBuffer.sample."""
    spec = game.spec
    states = positions.states[rows]
    policy = np.zeros((len(rows), spec.num_actions), np.float32)
    policy[np.arange(len(rows)), positions.actions[rows]] = 1.0
    if rng is not None and spec.num_symmetries > 1:
        k = rng.integers(0, spec.num_symmetries, size=len(rows))
        states = _transform_rows(game, states, k)
        policy = np.asarray(game.transform_policies(policy, k), np.float32)
    obs = np.ascontiguousarray(game.observation(states), np.float32)
    return obs, policy, positions.value[rows], positions.value_weight[rows]


# ---------------------------------------------------------------------------------- training

class RecordTrainer(Trainer):
    """The Trainer on batches (obs [B, C, H, W], policy [B, A], value [B], value weight [B]):
    the value loss is the mean over the rows of weight 1 (0 for positions of games without a
    result; 0 when there are none)."""

    def _train_step(self, batch: Sequence[Any], check_finite: bool) -> dict[str, Any]:
        obs, policy, value, weight = batch
        return self._step(obs, policy, value, check_finite, value_weight=weight)


@torch.no_grad()
def evaluate(net: torch.nn.Module, game, positions: Positions, *, batch_size: int = 1024,
             device: str | torch.device = "cpu") -> dict[str, float | int | None]:
    """Held-out figures of `net` on `positions` (as recorded, no symmetry): top1 (share of
    positions where the net's most likely legal move is the move played), chance_top1 (mean of
    1 / legal moves: a uniform guess's expected top1), policy_loss (cross-entropy of the move
    played), value_loss (MSE over the positions with a result; None without any), and the
    counts. Leaves the net in eval mode."""
    net.eval()
    n = len(positions)
    correct = chance = policy_sum = value_sum = 0.0
    value_rows = 0.0
    for start in range(0, n, batch_size):
        rows = np.arange(start, min(n, start + batch_size))
        obs, _, value, weight = make_batch(game, positions, rows, None)
        legal = torch.as_tensor(np.asarray(game.legal_mask(positions.states[rows]), bool))
        logits, pred_value = net(torch.as_tensor(obs, device=device))
        logits, pred_value = logits.float().cpu(), pred_value.float().cpu()
        actions = torch.as_tensor(positions.actions[rows])
        masked = logits.masked_fill(~legal, float("-inf"))
        correct += float((masked.argmax(-1) == actions).sum())
        chance += float((1.0 / legal.sum(-1).clamp_min(1)).sum())
        policy_sum += float(F.cross_entropy(logits, actions, reduction="sum"))
        w = torch.as_tensor(weight)
        value_sum += float((w * (pred_value - torch.as_tensor(value)) ** 2).sum())
        value_rows += float(w.sum())
    return {"positions": n, "top1": correct / n if n else None,
            "chance_top1": chance / n if n else None,
            "policy_loss": policy_sum / n if n else None,
            "value_loss": value_sum / value_rows if value_rows else None,
            "value_positions": int(value_rows)}


def planned_steps(steps: int | None, epochs: float | None, train_positions: int,
                  batch_size: int) -> int:
    """Optimizer steps: `steps`, or `epochs` passes over the training positions (default 1)."""
    if steps is not None and epochs is not None:
        raise ValueError("give steps or epochs, not both")
    if steps is not None:
        if steps < 1:
            raise ValueError(f"steps must be >= 1, got {steps}")
        return int(steps)
    epochs = 1.0 if epochs is None else float(epochs)
    if not epochs > 0:
        raise ValueError(f"epochs must be > 0, got {epochs}")
    return max(1, math.ceil(epochs * train_positions / batch_size))


class BatchOrder:
    """The training rows of each optimizer step: step s takes samples s*B to s*B + B - 1 of the
    stream that runs through epoch after epoch, epoch e a permutation of 0..n-1 drawn from
    (seed, e) alone (a batch may span epochs). The permutations of the last epochs asked for are
    kept, so a step costs B lookups, not a permutation of n."""

    def __init__(self, n: int, batch_size: int, seed: int):
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self._orders: dict[int, np.ndarray] = {}

    def _order(self, epoch: int) -> np.ndarray:
        if epoch not in self._orders:
            if len(self._orders) >= 2:
                self._orders.pop(min(self._orders))
            self._orders[epoch] = np.random.default_rng((self.seed, 0, epoch)).permutation(self.n)
        return self._orders[epoch]

    def rows(self, step: int) -> np.ndarray:
        """Row indices [batch_size] of step `step` (0-based)."""
        first = step * self.batch_size
        epochs, at = np.divmod(np.arange(first, first + self.batch_size), self.n)
        rows = np.empty(self.batch_size, np.int64)
        for e in np.unique(epochs):
            rows[epochs == e] = self._order(int(e))[at[epochs == e]]
        return rows


def step_rng(step: int, seed: int) -> np.random.Generator:
    """The generator of optimizer step `step`'s symmetries: (seed, step) alone."""
    return np.random.default_rng((seed, 1, step))


# What a pretraining's checkpoint must share with the command to be resumed by it.
_SAME_JOB_KEYS = ("records", "games", "positions", "holdout", "seed", "steps", "batch_size")


def _resumable(out: Path, summary: dict[str, Any], game_name: str):
    """The checkpoint at `out` to resume (None: there is none yet). ValueError when it is not
    this job's (unreadable, another game, no pretraining, other settings), naming why."""
    from . import checkpoint as ckpt
    if not out.exists():
        return None
    try:
        found = ckpt.load(out, expected_game=game_name)
    except ckpt.CheckpointError as e:
        raise ValueError(f"{e}; it is not this pretraining's to resume: delete it or choose "
                         f"another --out") from None
    stored = (found.metadata or {}).get("pretrain")
    if not isinstance(stored, dict):
        raise ValueError(f"{out} is a checkpoint but not a pretraining's: delete it or choose "
                         f"another --out")
    differ = [k for k in _SAME_JOB_KEYS if stored.get(k) != summary[k]]
    if differ:
        detail = "; ".join(f"{k}: {stored.get(k)!r} there, {summary[k]!r} now" for k in differ)
        raise ValueError(f"{out} holds another pretraining ({detail}): delete it or choose "
                         f"another --out")
    return found


def _fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def describe(step: int, total: int, train: dict[str, float], held: dict | None) -> str:
    """One progress line: training losses since the last line and the held-out figures."""
    text = f"step {step}/{total}"
    if train:
        text += (f"  train policy {_fmt(train['policy_loss'])} value {_fmt(train['value_loss'])}")
    if held is not None and held["positions"]:
        text += (f"  held-out top-1 {_fmt(held['top1'])} (chance {_fmt(held['chance_top1'])}) "
                 f"policy {_fmt(held['policy_loss'])} value {_fmt(held['value_loss'])}")
    return text


def pretrain(config: Config, paths: Sequence[str | os.PathLike], out: str | os.PathLike, *,
             steps: int | None = None, epochs: float | None = None, holdout: float = 0.05,
             seed: int | None = None, eval_every: int = 500, fit_schedule: bool = True,
             progress: bool | None = None, report: Callable[[str], None] | None = None,
             warn: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Train config.model's network from the records under `paths` and write it to `out` (a
    normal checkpoint, rewritten atomically at every evaluation and at the end). The optimizer,
    LR schedule and amp are config.train's; with `fit_schedule` its total_steps becomes the
    pretraining's length (the cosine decays over it; the stored config says so). Evaluates on the
    held-out games at step 0, every `eval_every` steps and at the end; `report` gets each
    progress line (default: printed above the progress bar, which `progress` shows or hides;
    None: config.log.progress), `warn` each skipped file or game. Returns the summary stored in the
    checkpoint's metadata["pretrain"]. RecordsError: no usable records; ConfigError: a config
    of another algorithm than AlphaZero."""
    if config.algorithm != "alphazero":
        raise ConfigError(f"algorithm: pretraining trains the AlphaZero network (model.kind "
                          f"resnet), not {config.algorithm}")
    seed = config.seed if seed is None else int(seed)
    if report is None:
        def report(line: str) -> None:          # above the progress bar, without garbling it
            tqdm.write(line, file=sys.stdout)
    game = config.make_game()
    started = time.time()
    found = read_record_set(game, paths, warn)
    records = found.records
    held = held_out_games(records, holdout, seed)
    positions = positions_of(game, records)
    held_rows = held[positions.game_index]
    train_set, held_set = positions.subset(~held_rows), positions.subset(held_rows)
    if len(train_set) == 0:
        raise RecordsError(f"the {len(records)} usable game(s) hold no position where a player "
                           f"chose the move (only opening plies?)")
    total = planned_steps(steps, epochs, len(train_set), config.train.batch_size)
    if fit_schedule:
        config = dataclasses.replace(config, train=dataclasses.replace(config.train,
                                                                       total_steps=total))
    torch.manual_seed(seed)                  # the initial weights: a run repeats exactly
    trainer = RecordTrainer.create(config, game)
    set_torch_threads(config.train.threads)
    out = Path(out)
    log = RunDir.at(out.parent)
    summary: dict[str, Any] = {
        "records": [str(p) for p in paths], "files": len(found.files),
        "skipped_files": found.skipped_files,
        "skipped_games": len(found.skipped) - found.skipped_files,
        "games": {"train": int((~held).sum()), "held_out": int(held.sum()),
                  "distinct": len({tuple(r.moves) for r in records})},
        "positions": {"train": len(train_set), "held_out": len(held_set),
                      "train_with_result": int(train_set.value_weight.sum())},
        "holdout": holdout, "seed": seed, "steps": total, "batch_size": config.train.batch_size}
    games = summary["games"]
    report(f"{len(records)} games ({games['distinct']} distinct; {games['train']} train, "
           f"{games['held_out']} held out) from {len(found.files)} file(s), "
           f"{len(found.skipped)} skipped; {len(train_set)} training positions, "
           f"{len(held_set)} held out; {total} steps of {config.train.batch_size}")
    if not len(held_set):
        report("no held-out games (--holdout 0, or too few distinct games): no held-out figures")
    resumed = _resumable(out, summary, game.spec.name)
    if resumed is not None:
        from . import checkpoint as ckpt
        try:
            trainer.restore(resumed)
        except ckpt.CheckpointError as e:
            raise ValueError(f"{e}: delete it or choose another --out") from None
        report(f"resuming from {out} at step {trainer.step}/{total}")
    out.parent.mkdir(parents=True, exist_ok=True)

    def record(held_figures: dict | None, train: dict[str, float]) -> None:
        """Log the figures; after a training step, rewrite the checkpoint with them."""
        summary.update(step=trainer.step, held_out=held_figures, train=train,
                       seconds=round(time.time() - started, 1))
        log.log_metrics("pretrain", **{k: v for k, v in summary.items() if k != "records"})
        if trainer.step:
            trainer.save(out, metadata={"pretrain": summary})

    bar = tqdm(total=total, initial=trainer.step, desc=f"{game.spec.name} pretraining",
               unit="step", dynamic_ncols=True,
               disable=not (config.log.progress if progress is None else progress))
    if resumed is None:
        figures = (evaluate(trainer.net, game, held_set, device=trainer.device)
                   if len(held_set) else None)
        record(figures, {})
        report(describe(0, total, {}, figures))
    else:
        summary.update({k: v for k, v in resumed.metadata["pretrain"].items()
                        if k in ("step", "held_out", "train", "seconds")})
    sums: dict[str, float] = {}
    since = 0
    order = BatchOrder(len(train_set), config.train.batch_size, seed)
    while trainer.step < total:
        rows = order.rows(trainer.step)
        stats = trainer.train_step(make_batch(game, train_set, rows, step_rng(trainer.step, seed)))
        for k, v in stats.items():
            sums[k] = sums.get(k, 0.0) + v
        since += 1
        bar.update(1)
        if trainer.step % eval_every == 0 or trainer.step == total:
            train = {k: v / since for k, v in sums.items()}
            figures = (evaluate(trainer.net, game, held_set, device=trainer.device)
                       if len(held_set) else None)
            record(figures, train)                # the checkpoint first, then the word of it
            report(describe(trainer.step, total, train, figures))
            sums, since = {}, 0
    bar.close()
    return summary


__all__ = ["BatchOrder", "Positions", "RecordSet", "RecordTrainer", "RecordsError", "evaluate",
           "held_out_games", "make_batch", "planned_steps", "positions_of", "pretrain",
           "read_record_set", "record_files", "step_rng"]
