"""azero pretrain: game records -> a network (the supervised start). Records are made by the
project itself (Connect Four through its record writer, Go SGF through sgfmill, chess PGN only
with python-chess); networks are tiny and trained for a few hundred steps at most."""
import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from sgfmill import sgf

from azero import checkpoint as ckpt
from azero.config import load_config
from azero.games import make
from azero.pretrain import (BatchOrder, Positions, RecordsError, RecordTrainer, held_out_games,
                            make_batch, positions_of, pretrain, read_record_set)
from azero.records import GameRecord, open_record_writer

C4 = make("connect4")
TINY = ["model.blocks=1", "model.channels=8", "model.value_hidden=8", "train.batch_size=64",
        "train.warmup_steps=0", "train.threads=1", "train.device=cpu", "train.lr=0.01",
        "log.progress=false"]


def lowest_column(state: np.ndarray) -> int:
    """The rule the games follow: the legal column holding the fewest pieces, ties to the
    centre, then to the left (a function of the position alone)."""
    legal = C4.legal_mask(state[None])[0]
    heights = C4.observation(state[None])[0, :2].sum(axis=(0, 1))
    width = len(legal)
    return min((c for c in range(width) if legal[c]),
               key=lambda c: (heights[c], abs(c - (width - 1) / 2), c))


def rule_games(n: int, seed: int = 0, opening: int = 4) -> list[GameRecord]:
    """n Connect Four games: `opening` random plies (marked as the opening), then lowest_column
    for both sides to the end."""
    rng = np.random.default_rng(seed)
    records = []
    for _ in range(n):
        state, moves = C4.initial_states(1), []
        while not C4.terminal(state)[0]:
            if len(moves) < opening:
                action = int(rng.choice(np.nonzero(C4.legal_mask(state)[0])[0]))
            else:
                action = lowest_column(state[0])
            moves.append(action)
            state = C4.step(state, np.array([action]))
        # result() is the side to move's: +1 win / 0 draw / -1 loss
        mover = float(C4.result(state)[0]) * (1 if C4.to_play(state)[0] == 0 else -1)
        records.append(GameRecord("connect4", ("rule", "rule"), moves, (mover + 1) / 2,
                                  opening_plies=opening))
    return records


def write_records(path: Path, records) -> Path:
    with open_record_writer(C4, path) as writer:
        for record in records:
            writer.write(record)
    return path


def write_sgf(path: Path, size: int, moves, result: str | None = "B+R") -> Path:
    game = sgf.Sgf_game(size=size)
    root = game.get_root()
    root.set("KM", 7.0)
    if result:
        root.set("RE", result)
    node = root
    for i, move in enumerate(moves):
        node = node.new_child()
        node.set_move("bw"[i % 2], move)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(game.serialise())
    return path


# ------------------------------------------------------------------------- targets

def test_positions_hold_the_move_played_and_the_result_for_the_side_to_move(tmp_path):
    won_by_first = GameRecord("connect4", ("a", "b"), [3, 3, 2, 2, 1, 1, 0], 1.0)
    lost_by_first = GameRecord("connect4", ("a", "b"), [0, 3, 0, 3, 1, 3, 6, 3], 0.0,
                               opening_plies=2)
    unfinished = GameRecord("connect4", ("a", "b"), [5, 4], None)
    write_records(tmp_path / "g.jsonl", [won_by_first, lost_by_first, unfinished])
    found = read_record_set(C4, [tmp_path])
    assert [r.moves for r in found.records] == [won_by_first.moves, lost_by_first.moves,
                                                unfinished.moves]
    p = positions_of(C4, found.records)
    # the opening plies of the second game are no one's choice: 7 + (8 - 2) + 2 rows
    assert len(p) == 15
    for g, record in enumerate(found.records):
        rows = np.nonzero(p.game_index == g)[0]
        assert p.actions[rows].tolist() == record.moves[record.opening_plies:]
        # replaying the record reaches every stored state in order
        state = C4.initial_states(1)
        for ply, action in enumerate(record.moves):
            if ply >= record.opening_plies:
                assert np.array_equal(p.states[rows[ply - record.opening_plies]], state[0])
            state = C4.step(state, np.array([action]))
    first = p.game_index == 0
    assert p.value[first].tolist() == [1, -1, 1, -1, 1, -1, 1]          # X moves first and wins
    second = p.game_index == 1
    assert p.value[second].tolist() == [-1, 1, -1, 1, -1, 1]            # from ply 2: X to move, loses
    assert (p.value_weight[first | second] == 1).all()
    third = p.game_index == 2
    assert (p.value_weight[third] == 0).all() and (p.value[third] == 0).all()


def test_a_batch_turns_the_position_and_the_move_together():
    records = rule_games(6, seed=3)
    p = positions_of(C4, records)
    rows = np.arange(len(p))
    plain = make_batch(C4, p, rows, None)
    assert (plain[1].argmax(1) == p.actions).all() and (plain[1].sum(1) == 1).all()
    rng = np.random.default_rng(0)
    obs, policy, value, weight = make_batch(C4, p, rows, rng)
    k = np.random.default_rng(0).integers(0, C4.spec.num_symmetries, size=len(rows))
    assert 0 < k.sum() < len(k)                           # both symmetries drawn
    assert np.array_equal(obs, C4.transform_observations(plain[0], k))
    mirrored = np.where(k == 1, C4.spec.num_actions - 1 - p.actions, p.actions)
    assert np.array_equal(policy.argmax(1), mirrored)
    assert np.array_equal(value, p.value) and np.array_equal(weight, p.value_weight)


def test_games_without_a_result_train_no_value():
    """Rows of value weight 0 leave the step unchanged whatever their value target."""
    config = load_config("connect4", TINY)
    p = positions_of(C4, rule_games(4, seed=5))
    obs, policy, value, _ = make_batch(C4, p, np.arange(32), None)
    weight = (np.arange(32) % 2).astype(np.float32)
    results = []
    for masked_target in (1.0, -1.0):
        torch.manual_seed(0)
        trainer = RecordTrainer.create(config, C4, device="cpu")
        target = np.where(weight == 1, value, masked_target).astype(np.float32)
        stats = trainer.train_step((obs, policy, target, weight))
        results.append((stats["value_loss"], [w.detach().clone() for w in trainer.net.parameters()]))
    assert results[0][0] == pytest.approx(results[1][0])
    assert all(torch.equal(a, b) for a, b in zip(results[0][1], results[1][1]))
    # ... while the same change on weighted rows changes the step
    torch.manual_seed(0)
    trainer = RecordTrainer.create(config, C4, device="cpu")
    stats = trainer.train_step((obs, policy, -value, np.ones(32, np.float32)))
    assert stats["value_loss"] != pytest.approx(results[0][0])


# ------------------------------------------------------------------------- split

def test_the_split_is_by_game_from_the_seed_and_the_moves_only():
    records = rule_games(60, seed=1)
    records += [records[0], records[0]]                   # a game recorded three times
    held = held_out_games(records, 0.25, seed=7)
    assert 10 <= held.sum() <= 20
    # the same games, whatever the order of the records
    order = np.random.default_rng(2).permutation(len(records))
    shuffled = held_out_games([records[i] for i in order], 0.25, seed=7)
    assert np.array_equal(shuffled, held[order])
    # identical games stay on one side
    same = [g for g, r in enumerate(records) if r.moves == records[0].moves]
    assert len(same) >= 3 and len(set(held[same].tolist())) == 1
    # another seed, other games
    assert not np.array_equal(held_out_games(records, 0.25, seed=8), held)
    # positions follow their game: no game has rows on both sides
    p = positions_of(C4, records)
    held_rows = held[p.game_index]
    assert set(p.game_index[held_rows]).isdisjoint(p.game_index[~held_rows])
    # small sets keep one game on each side; fraction 0 holds none out
    assert held_out_games(records[:2], 0.01, seed=0).sum() == 1
    assert held_out_games(records[:2], 0.9, seed=0).sum() == 1
    assert held_out_games(records, 0.0, seed=0).sum() == 0


# ------------------------------------------------------------------------- learning

def test_training_on_a_rule_predicts_held_out_moves_far_above_chance(tmp_path):
    write_records(tmp_path / "data" / "rule.jsonl", rule_games(150, seed=0))
    lines = []
    summary = pretrain(load_config("connect4", TINY), [tmp_path / "data"], tmp_path / "p.pt",
                       steps=250, holdout=0.2, eval_every=250, report=lines.append)
    held = summary["held_out"]
    assert summary["games"]["held_out"] == 30 and held["positions"] > 200
    first = json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[0])
    assert first["step"] == 0 and first["held_out"]["top1"] < 0.4   # an untrained net
    assert held["chance_top1"] == pytest.approx(1 / 7, abs=0.02)
    assert held["top1"] > 0.7, lines
    assert held["value_loss"] < first["held_out"]["value_loss"]
    saved = ckpt.load(tmp_path / "p.pt", expected_game="connect4")
    assert saved.step == 250 and saved.metadata["pretrain"]["held_out"] == held
    assert saved.config["train"]["total_steps"] == 250      # the cosine spans the run


# ------------------------------------------------------------------------- resume

class Stop(Exception):
    pass


def stop_at(step: int):
    """A report callback that stops the pretraining at `step`'s progress line (the checkpoint
    of that step is written before it), as a kill there would."""
    def report(line: str) -> None:
        if line.startswith(f"step {step}/"):
            raise Stop
    return report


def test_the_batch_order_is_epochs_of_permutations_and_a_function_of_the_step():
    order = BatchOrder(10, 4, seed=3)
    stream = np.concatenate([order.rows(s) for s in range(10)])     # 4 epochs
    for epoch in range(4):
        assert sorted(stream[10 * epoch:10 * (epoch + 1)]) == list(range(10))
    assert not np.array_equal(stream[:10], stream[10:20])          # each epoch shuffled anew
    for step in (7, 2, 9):                                          # any order, a fresh object
        assert np.array_equal(BatchOrder(10, 4, seed=3).rows(step), stream[4 * step:4 * step + 4])
    assert not np.array_equal(BatchOrder(10, 4, seed=4).rows(0), stream[:4])
    wide = BatchOrder(3, 7, seed=1).rows(0)                         # a batch over three epochs
    assert sorted(wide[:3]) == sorted(wide[3:6]) == [0, 1, 2]


def test_a_stopped_pretraining_resumes_to_the_same_weights(tmp_path):
    """Stopped at step 20 of 40 and run again with the same arguments: it resumes at step 20
    (not from scratch) and ends with the weights of the uninterrupted run, exactly: the same
    batches, symmetries and optimizer state. metrics.jsonl holds each step once."""
    write_records(tmp_path / "data" / "rule.jsonl", rule_games(60, seed=1))
    config = load_config("connect4", TINY)
    job = dict(steps=40, holdout=0.1, eval_every=10)
    whole = pretrain(config, [tmp_path / "data"], tmp_path / "whole" / "p.pt", **job,
                     report=lambda line: None)
    out = tmp_path / "cut" / "p.pt"
    with pytest.raises(Stop):
        pretrain(config, [tmp_path / "data"], out, **job, report=stop_at(20))
    assert ckpt.load(out).step == 20
    lines = []
    resumed = pretrain(config, [tmp_path / "data"], out, **job, report=lines.append)
    assert lines[-3:] == [f"resuming from {out} at step 20/40", *lines[-2:]]
    assert lines[-2].startswith("step 30/40") and lines[-1].startswith("step 40/40")
    a = ckpt.load(tmp_path / "whole" / "p.pt").model.state_dict()
    b = ckpt.load(out).model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert resumed["held_out"] == whole["held_out"] and resumed["step"] == 40
    steps = [json.loads(l)["step"] for l in (out.parent / "metrics.jsonl").read_text().splitlines()]
    assert steps == [0, 10, 20, 30, 40]
    # run once more: nothing left to do, the same checkpoint
    again = pretrain(config, [tmp_path / "data"], out, **job, report=lines.append)
    assert again["step"] == 40 and lines[-1] == f"resuming from {out} at step 40/40"
    assert ckpt.load(out).step == 40


def test_a_checkpoint_of_another_job_is_not_overwritten(tmp_path):
    write_records(tmp_path / "data" / "rule.jsonl", rule_games(30, seed=2))
    config = load_config("connect4", TINY)
    out = tmp_path / "p.pt"
    pretrain(config, [tmp_path / "data"], out, steps=10, eval_every=10, report=lambda l: None)
    before = out.read_bytes()
    with pytest.raises(ValueError, match=r"holds another pretraining \(steps: 10 there, 20 now"
                                         r"\): delete it or choose another --out"):
        pretrain(config, [tmp_path / "data"], out, steps=20, eval_every=10,
                 report=lambda l: None)
    with pytest.raises(ValueError, match="holds another pretraining .*seed"):
        pretrain(config, [tmp_path / "data"], out, steps=10, seed=5, report=lambda l: None)
    plain = tmp_path / "plain.pt"
    ckpt.save(plain, RecordTrainer.create(config, C4).net, config=config)
    with pytest.raises(ValueError, match="is a checkpoint but not a pretraining's"):
        pretrain(config, [tmp_path / "data"], plain, steps=10, report=lambda l: None)
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="it is not this pretraining's to resume"):
        pretrain(config, [tmp_path / "data"], tmp_path / "junk.pt", steps=10,
                 report=lambda l: None)
    assert out.read_bytes() == before


# ------------------------------------------------------------------------- bad input

def test_bad_records_are_skipped_with_file_game_and_move_named(tmp_path):
    good = rule_games(3, seed=2)
    path = write_records(tmp_path / "mixed.jsonl", good)
    lines = path.read_text().splitlines()
    illegal = json.loads(lines[0])
    illegal["moves"] = "1111111"                         # the 7th stone in a 6-high column
    other = dict(json.loads(lines[0]), game="go9")
    path.write_text("\n".join([lines[0], "{not json", json.dumps(illegal), lines[1],
                               json.dumps(other), lines[2]]) + "\n")
    (tmp_path / "binary.jsonl").write_bytes(b"\xff\xfe\x00garbage\n")
    (tmp_path / "games.pgn").write_text("1. e4 *\n")     # not a Connect Four file: not searched
    warnings = []
    found = read_record_set(C4, [tmp_path], warn=warnings.append)
    assert [r.moves for r in found.records] == [r.moves for r in good]
    assert len(found.skipped) == 4 and found.skipped_files == 1
    text = "\n".join(warnings)
    assert f"{tmp_path / 'binary.jsonl'}: unreadable" in text
    assert f"{path}: line 2: not a JSON record" in text
    assert f"{path}: line 3: move 7 ('1'): column 1 is full" in text
    assert f"{path}: line 5: a record of 'go9', not of connect4" in text
    # a file named explicitly must still be of the game's format
    with pytest.raises(RecordsError, match=r"games\.pgn: not a connect4 record file"):
        read_record_set(C4, [tmp_path / "games.pgn"])
    # nothing usable left: an error, with the reasons
    with pytest.raises(RecordsError, match=r"no usable connect4 game .*binary\.jsonl: unreadable"):
        read_record_set(C4, [tmp_path / "binary.jsonl"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(RecordsError, match=r"no connect4 record files \(\*\.jsonl\) under"):
        read_record_set(C4, [tmp_path / "empty"])
    with pytest.raises(RecordsError, match="nowhere: no such file or folder"):
        read_record_set(C4, [tmp_path / "nowhere"])


def test_go_sgf_records_skip_other_boards_illegal_moves_and_non_sgf(tmp_path):
    go = make("go9")
    write_sgf(tmp_path / "a.sgf", 9, [(4, 4), (2, 2), (6, 6), (2, 6)], "B+R")
    write_sgf(tmp_path / "deep" / "b.sgf", 9, [(3, 3), (5, 5), None, (1, 1)], None)
    write_sgf(tmp_path / "deep" / "big.sgf", 19, [(4, 4)])
    write_sgf(tmp_path / "deep" / "illegal.sgf", 9, [(4, 4), (2, 2), (4, 4)], "W+3.5")
    (tmp_path / "text.sgf").write_text("this is not sgf")
    warnings = []
    found = read_record_set(go, [tmp_path], warn=warnings.append)
    assert len(found.records) == 2 and found.skipped_files == 1
    text = "\n".join(warnings)
    assert f"{tmp_path / 'deep' / 'big.sgf'}: game 1: board size 19" in text
    assert f"{tmp_path / 'deep' / 'illegal.sgf'}: game 1: move 3:" in text
    assert f"{tmp_path / 'text.sgf'}: unreadable: not an SGF file" in text
    p = positions_of(go, found.records)
    assert [r.result for r in found.records] == [1.0, None]        # a.sgf, then deep/b.sgf
    a = p.game_index == 0
    assert p.value[a].tolist() == [1, -1, 1, -1] and (p.value_weight[a] == 1).all()
    assert (p.value_weight[~a] == 0).all() and 81 in p.actions[~a]        # the pass
    # the 8 symmetries turn board moves and leave the pass alone
    obs, policy, _, _ = make_batch(go, p, np.arange(len(p)), np.random.default_rng(1))
    assert obs.shape == (len(p), *go.spec.observation_shape)
    assert (policy.argmax(1)[p.actions == 81] == 81).all()


def test_chess_pgn_records_name_the_illegal_move(tmp_path):
    pytest.importorskip("chess")
    chess_game = make("chess")
    (tmp_path / "g.pgn").write_text(
        '[Result "1-0"]\n\n1. e4 e5 2. Qh5 Nc6 3. Bc4 Nf6 4. Qxf7# 1-0\n\n'
        '[Result "0-1"]\n\n1. e4 e5 2. Ke3 Qh4 0-1\n\n'
        '[Result "*"]\n\n1. d4 d5 2. c4 *\n\n')
    warnings = []
    found = read_record_set(chess_game, [tmp_path], warn=warnings.append)
    assert len(found.records) == 2
    assert warnings and warnings[0].startswith(f"skipped {tmp_path / 'g.pgn'}: game 2: move 3:")
    assert "Ke3" in warnings[0]
    p = positions_of(chess_game, found.records)
    assert len(p) == 10
    assert p.value[p.game_index == 0].tolist() == [1, -1, 1, -1, 1, -1, 1]
    assert (p.value_weight[p.game_index == 1] == 0).all()


# ------------------------------------------------------------------------- the command

def test_the_command_writes_a_checkpoint_that_starts_selfplay_and_plays(tmp_path):
    write_records(tmp_path / "records" / "a.jsonl", rule_games(40, seed=4))
    out = tmp_path / "pre" / "net.pt"
    sets = [arg for key in TINY for arg in ("--set", key)]
    done = subprocess.run(
        [sys.executable, "-m", "azero.cli", "pretrain", "--game", "connect4", "--records",
         str(tmp_path / "records"), "--out", str(out), "--steps", "20", "--eval-every", "10",
         "--holdout", "0.1", *sets], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "36 train, 4 held out" in done.stdout
    assert "step 10/20" in done.stdout and "held-out top-1" in done.stdout
    assert f"azero selfplay --game connect4 --init {out}" in done.stdout
    payload = torch.load(out, weights_only=True)
    assert payload["step"] == 20 and payload["metadata"]["pretrain"]["games"]["held_out"] == 4
    log = [json.loads(line) for line in (out.parent / "metrics.jsonl").read_text().splitlines()]
    assert [e["step"] for e in log] == [0, 10, 20]

    # --init takes it (the selfplay command's config resolution and the loop's first steps)
    from azero.commands.selfplay import resolve_config
    from azero.loop import check_init, prepare_run
    args = argparse.Namespace(overrides=[], workers=None, device=None, config="connect4_tiny",
                              run_dir=str(tmp_path / "run"), game="connect4", init=str(out),
                              algo=None)
    config = resolve_config(args)
    run = prepare_run(config, check_init(config, out))
    first = ckpt.load(run.generation(0), expected_game="connect4")
    source = ckpt.load(out).model.state_dict()
    assert all(torch.equal(v, source[k]) for k, v in first.model.state_dict().items())

    # ... and the players take it (arena, play)
    from azero.arena import MatchConfig, play_match
    from azero.players import RandomPlayer, make_player
    player = make_player(str(out), C4, simulations=4)
    result = play_match(C4, player, RandomPlayer(C4, seed=1),
                        MatchConfig(games=2, in_flight=2, sprt=None))
    assert result.stats.games == 2

    # no records: exit 2 with the reason
    (tmp_path / "none").mkdir()
    failed = subprocess.run([sys.executable, "-m", "azero.cli", "pretrain", "--game", "connect4",
                             "--records", str(tmp_path / "none"), "--out", str(tmp_path / "x.pt")],
                            capture_output=True, text=True, timeout=60)
    assert failed.returncode == 2
    assert "azero pretrain: no connect4 record files (*.jsonl) under" in failed.stderr


def test_chess_records_without_the_chess_extra_say_what_to_install(tmp_path):
    (tmp_path / "g.pgn").write_text('[Result "*"]\n\n1. e4 *\n\n')
    blocked = ("import sys; sys.modules['chess'] = None; from azero.cli import main; "
               f"sys.exit(main(['pretrain', '--game', 'chess', '--records', {str(tmp_path)!r}, "
               f"'--out', {str(tmp_path / 'x.pt')!r}]))")
    done = subprocess.run([sys.executable, "-c", blocked], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2
    assert done.stderr.startswith("azero pretrain: chess needs the optional extra [chess]")
    assert 'pip install -e ".[chess]"' in done.stderr and not (tmp_path / "x.pt").exists()
