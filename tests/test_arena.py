"""Matches, records and gating on Connect Four."""
import json

import numpy as np
import pytest

from azero.arena import GateResult, MatchConfig, gate, play_match, random_openings, run_match
from azero.cli import main
from azero.config import GateConfig
from azero.games import make
from azero.players import PlayerSpecError, make_player, parse_player_spec
from azero.records import (GameRecord, json_lines_format, open_record_writer, read_records,
                           replay_notation)
from azero.stats import SprtConfig

GAME = make("connect4")


def by_index(records):
    return sorted(records, key=lambda r: r.info["game_index"])


def test_player_specs():
    assert parse_player_spec("random").kind == "random"
    spec = parse_player_spec("mcts-rollout:1000")
    assert (spec.kind, spec.simulations, spec.label) == ("mcts-rollout", 1000, "mcts-rollout:1000")
    assert parse_player_spec("runs/c4/best.pt").path == "runs/c4/best.pt"
    for bad in ("mcts-rollout", "mcts-rollout:0", "mcts-rollout:x", ""):
        with pytest.raises(PlayerSpecError):
            parse_player_spec(bad)
    with pytest.raises(PlayerSpecError, match="not found") as missing:
        make_player("/nonexistent/ckpt.pt", GAME)
    with pytest.raises(PlayerSpecError, match="empty player spec") as empty:
        parse_player_spec("  ")
    for error in (missing, empty):     # both name every kind of player there is
        assert "'greedy'" in str(error.value) and "'uci:COMMAND LINE'" in str(error.value)


def test_arena_help_names_every_kind_of_player(capsys):
    # Every spec quoted in the help parses, as its kind; together they cover every kind.
    import re

    from azero.players import PLAYER_SPECS_HELP
    quoted = re.findall(r"'([^']+)'", PLAYER_SPECS_HELP)
    kinds = {parse_player_spec(q.replace("=N", "=1").replace("=S", "=0").replace(":N", ":1")
                               .replace("COMMAND LINE", "engine --flag")).kind
             for q in quoted}
    assert kinds | {"checkpoint"} == {"random", "greedy", "mcts-rollout", "gtp", "uci",
                                      "checkpoint"}
    assert "stockfish:skill=S,nodes=N" in quoted and "gnugo:level=N" in quoted
    with pytest.raises(SystemExit):
        main(["arena", "--help"])
    shown = " ".join(capsys.readouterr().out.split())
    for spec in quoted:
        assert f"'{spec}'" in shown


def test_colours_alternate_and_pairs_share_openings():
    a, b = make_player("random", GAME, seed=1, name="A"), make_player("random", GAME, seed=2,
                                                                       name="B")
    # 3 games in flight for 10 games: rows restart with new games while others are mid-game.
    result = play_match(GAME, a, b, MatchConfig(games=10, in_flight=3, opening_plies=3,
                                                sprt=None, seed=5))
    records = by_index(result.records)
    assert [r.info["game_index"] for r in records] == list(range(10))
    assert result.stats.games == 10 and not result.stopped_early
    openings = set()
    for first, second in zip(records[::2], records[1::2]):
        assert first.players == ("A", "B") and second.players == ("B", "A")
        assert first.moves[:3] == second.moves[:3]
        assert first.opening_plies == second.opening_plies == 3
        openings.add(tuple(first.moves[:3]))
    assert len(openings) == 5                    # varied: every pair its own opening
    for r in records:
        state = GAME.initial_states(1)
        for m in r.moves:
            state = GAME.step(state, np.array([m]))
        assert GAME.terminal(state)[0]           # every recorded game was played to its end
        score_a = r.result if r.players[0] == "A" else 1 - r.result
        assert r.info["score_a"] == score_a
    wins = sum(r.info["score_a"] == 1 for r in records)
    draws = sum(r.info["score_a"] == 0.5 for r in records)
    assert (result.stats.wins, result.stats.draws) == (wins, draws)


def test_book_openings_are_used():
    a, b = make_player("random", GAME, seed=1), make_player("random", GAME, seed=2)
    book = [[3, 3], [2, 4, 3]]
    result = play_match(GAME, a, b, MatchConfig(games=4, sprt=None), openings=book)
    records = by_index(result.records)
    assert [r.moves[:len(book[i // 2])] for i, r in enumerate(records)] == [
        [3, 3], [3, 3], [2, 4, 3], [2, 4, 3]]


def test_random_openings_distinct_and_live():
    rng = np.random.default_rng(0)
    lines = random_openings(GAME, 30, 4, rng)
    assert len(lines) == 30 and len({tuple(l) for l in lines}) == 30
    assert all(len(l) == 4 for l in lines)


def test_random_openings_never_cut_a_game_off():
    """Openings come from the shared azero.openings: one that reaches the move cap (truncated) is
    drawn again like one that ends the game; if every line does, the match cannot start."""
    from fake_games import SmallTicTacToe
    from azero.openings import OpeningsEndGames
    lines = random_openings(SmallTicTacToe(np.uint8, max_game_length=5), 20, 4,
                            np.random.default_rng(1))
    assert all(len(line) == 4 for line in lines) and len({tuple(l) for l in lines}) == 20
    with pytest.raises(OpeningsEndGames, match="keep ending smalltictactoe games"):
        random_openings(SmallTicTacToe(np.uint8, max_game_length=4), 4, 4,
                        np.random.default_rng(1))


def test_games_cut_off_at_the_move_cap_are_adjudicated_explicitly():
    """A truncated game is scored for the match only: by the game's adjudicate where it has one,
    as a draw otherwise, and its record says which."""
    from fake_games import SmallTicTacToe

    class FirstPlayerAhead(SmallTicTacToe):    # adjudicates every cut-off game for player 0
        def adjudicate(self, states):
            return np.where(self.to_play(states) == 0, 1.0, -1.0).astype(np.float32)

    for game, score_first, says in ((SmallTicTacToe(np.uint8, 5), 0.5, "draw: cut off"),
                                    (FirstPlayerAhead(np.uint8, 5), 1.0, "adjudicate")):
        a, b = make_player("random", game, seed=1), make_player("random", game, seed=2)
        result = play_match(game, a, b, MatchConfig(games=40, opening_plies=0, sprt=None))
        cut = [r for r in result.records if "adjudicated" in r.info]
        assert cut and len(cut) < len(result.records)
        for r in result.records:
            state = game.initial_states(1)
            for m in r.moves:
                state = game.step(state, [m])
            assert bool(game.truncated(state)[0]) == ("adjudicated" in r.info)
        assert all(says in r.info["adjudicated"] and r.result == score_first for r in cut)


def test_records_written_and_readable(tmp_path):
    path = tmp_path / "games.jsonl"
    a, b = make_player("random", GAME, seed=1), make_player("random", GAME, seed=2)
    result = run_match(GAME, a, b, MatchConfig(games=6, in_flight=4, sprt=None), records=path,
                       info={"match": "test"})
    lines = path.read_text().splitlines()
    assert len(lines) == 6
    obj = json.loads(lines[0])
    assert set(obj) >= {"moves", "first", "second", "result", "score_first", "opening_plies"}
    assert obj["moves"].isdigit() and set(obj["moves"]) <= set("1234567")
    back = read_records(GAME, path)
    assert [(r.moves, r.result, r.players) for r in back] == [
        (r.moves, r.result, r.players) for r in result.records]
    assert back[0].info["match"] == "test"


def test_torn_last_record_is_skipped(tmp_path):
    path = tmp_path / "games.jsonl"
    with open_record_writer(GAME, path) as w:
        w.write(GameRecord("connect4", ("x", "y"), [3, 3, 2], None))
    with open(path, "a") as f:
        f.write('{"game": "connect4", "mov')             # a kill mid-write
    back = read_records(GAME, path)
    assert len(back) == 1 and back[0].moves == [3, 3, 2] and back[0].result_string == "*"
    with open_record_writer(GAME, path) as w:                # the next run appends: the torn
        w.write(GameRecord("connect4", ("x", "y"), [4, 4], None))   # tail goes, not the file
    assert [r.moves for r in read_records(GAME, path)] == [[3, 3, 2], [4, 4]]


def test_generic_record_format_lists_moves(tmp_path):
    fmt = json_lines_format(compact_moves=False)
    path = tmp_path / "g.jsonl"
    writer = fmt.open_writer(GAME, path)
    writer.write(GameRecord("connect4", ("x", "y"), [0, 6, 0], 0.5))
    writer.close()
    assert json.loads(path.read_text())["moves"] == ["1", "7", "1"]
    assert fmt.read(GAME, path)[0].moves == [0, 6, 0]
    assert replay_notation(GAME, [3, 3]) == ["4", "4"]


def test_rollout_mcts_beats_random():
    strong = make_player("mcts-rollout:200", GAME, seed=0)
    weak = make_player("random", GAME, seed=1)
    result = play_match(GAME, strong, weak, MatchConfig(games=10, in_flight=10, sprt=None))
    assert result.stats.games == 10
    assert result.stats.wins >= 9, str(result.stats)
    # Half of the games had the rollout bot moving second.
    assert sum(r.players[0] == strong.name for r in result.records) == 5


def test_sprt_stops_early(tmp_path):
    strong = make_player("mcts-rollout:40", GAME, seed=0)
    weak = make_player("random", GAME, seed=1)
    cfg = MatchConfig(games=200, in_flight=8, sprt=SprtConfig(elo0=0, elo1=35))
    result = run_match(GAME, strong, weak, cfg, records=tmp_path / "r.jsonl")
    assert result.stopped_early and result.sprt.decision == "H1"
    assert result.stats.games < 60
    # Every finished game is recorded; the W/D/L counts whole colour-swapped pairs only.
    records = read_records(GAME, tmp_path / "r.jsonl")
    pairs = {}
    for r in records:
        pairs.setdefault(r.info["pair"], []).append(r)
    whole = [games for games in pairs.values() if len(games) == 2]
    assert result.stats.games == 2 * len(whole) <= len(records)
    assert result.stats.wins == sum(g.info["score_a"] == 1.0 for games in whole for g in games)
    assert all({g.players[0] for g in games} == {strong.name, weak.name} for games in whole)
    if len(records) > result.stats.games:
        assert f"{len(records) - result.stats.games} finished game(s)" in result.summary()


def test_gate_promotes_stronger_and_keeps_best():
    cfg = GateConfig(games=40, opening_plies=2, sprt_elo0=0, sprt_elo1=50)
    up = gate("mcts-rollout:40", "random", cfg, game="connect4", in_flight=8)
    assert isinstance(up, GateResult) and up.promoted, up.reason
    assert up.stats.score > 0.55
    down = gate("random", "mcts-rollout:40", cfg, game=GAME, in_flight=8)
    assert not down.promoted and down.stats.score < 0.5
    d = down.as_dict()
    assert {"promoted", "score", "elo", "elo_low", "elo_high", "wins", "draws", "losses",
            "sprt_llr"} <= set(d)


def test_gate_threshold_without_sprt_decision():
    # Too few games for the SPRT: the 55% threshold decides.
    cfg = GateConfig(games=2, opening_plies=2, sprt_alpha=0.001, sprt_beta=0.001)
    result = gate("mcts-rollout:40", "random", cfg, game=GAME)
    assert result.sprt.decision is None
    assert result.promoted == (result.stats.score >= 0.55)
    assert "threshold" in result.reason


def test_gate_disabled_promotes():
    assert gate("random", "random", GateConfig(enabled=False), game=GAME).promoted


def test_arena_command(tmp_path, capsys):
    records = tmp_path / "arena.jsonl"
    rc = main(["arena", "--a", "mcts-rollout:40", "--b", "random", "--games", "40",
               "--in-flight", "8", "--records", str(records), "--quiet"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "W/D/L" in out and "Elo" in out and "SPRT" in out
    assert "H1 accepted" in out
    assert read_records(GAME, records)


def _closing_players(monkeypatch, module, fail_on=None):
    """make_player in `module` returns random players that record their close(); the
    `fail_on`-th one made raises instead."""
    closed, made = [], []
    real = make_player

    def fake_make_player(spec, game, **kw):
        if fail_on is not None and len(made) == fail_on:
            raise PlayerSpecError("no such player")
        p = real("random", game, seed=len(made))
        p.close = lambda p=p: closed.append(p)
        made.append(p)
        return p

    monkeypatch.setattr(module, "make_player", fake_make_player)
    return made, closed


def test_arena_command_closes_its_players(tmp_path, monkeypatch):
    import azero.commands.arena as arena_command
    made, closed = _closing_players(monkeypatch, arena_command)
    assert main(["arena", "--a", "x", "--b", "y", "--games", "2", "--no-sprt", "--quiet",
                 "--records", str(tmp_path / "r.jsonl")]) == 0
    assert len(made) == 2 and sorted(map(id, closed)) == sorted(map(id, made))
    made, closed = _closing_players(monkeypatch, arena_command, fail_on=1)   # A cannot be made
    assert main(["arena", "--a", "x", "--b", "y", "--games", "2", "--quiet"]) == 2
    assert len(made) == 1 and closed == made


def test_arena_plays_every_checkpoint_of_a_folder(tmp_path, capsys):
    """--a FOLDER: each checkpoint (a run's generations) plays B in turn; a table at the end."""
    from azero.config import load_config
    from azero.train import Trainer
    folder = tmp_path / "generations"
    config = load_config("connect4_tiny")
    for g in range(2):
        Trainer.create(config, GAME, "cpu").save(folder / f"gen-{g:04d}.pt")
    (folder / "notes.txt").write_text("not a checkpoint")
    assert main(["arena", "--a", str(folder), "--b", "random", "--games", "2", "--no-sprt",
                 "--quiet", "--sims", "2", "--records", str(tmp_path / "r")]) == 0
    out = capsys.readouterr().out
    table = out[out.index("against random:"):].splitlines()[1:]
    assert [line.split()[0] for line in table] == ["gen-0000.pt", "gen-0001.pt"]
    assert all("W/D/L" in line and "(2 games)" in line for line in table)
    for g in range(2):
        assert len(read_records(GAME, tmp_path / f"r-gen-{g:04d}")) == 2
    (tmp_path / "empty").mkdir()
    assert main(["arena", "--a", str(tmp_path / "empty"), "--b", "random"]) == 2
    assert "a folder without checkpoints" in capsys.readouterr().err


def test_gate_closes_the_players_it_made_but_not_the_callers(monkeypatch):
    import azero.arena as arena_module
    made, closed = _closing_players(monkeypatch, arena_module)
    mine = make_player("random", GAME, seed=9)
    mine.close = lambda: closed.append(mine)
    gate("x", mine, GateConfig(games=2, opening_plies=1), game=GAME)
    assert len(made) == 1 and closed == made


def test_go9_games_cut_off_at_the_cap_are_scored_on_the_board_in_their_sgf(tmp_path):
    """Go's adjudicate scores the board as it stands (Tromp-Taylor area); the SGF says so: RE is
    that score (e.g. B+3), not a resignation (B+R)."""
    from azero.games.go9.game import Go9
    game = Go9(max_game_length=12)
    a, b = make_player("random", game, seed=1), make_player("random", game, seed=2)
    result = run_match(game, a, b, MatchConfig(games=6, opening_plies=0, sprt=None),
                       records=tmp_path / "sgf")
    cut = [r for r in result.records if "adjudicated" in r.info]
    assert cut
    files = sorted((tmp_path / "sgf").glob("*.sgf"))
    assert len(files) == len(result.records)
    for path in files:
        text = path.read_text()
        re_value = text.split("RE[")[1].split("]")[0]
        assert not re_value.endswith("+R"), re_value
    back = read_records(game, tmp_path / "sgf")
    assert sorted(r.result for r in back) == sorted(r.result for r in result.records)
    for r in cut:
        state = game.initial_states(1)
        for m in r.moves:
            state = game.step(state, [m])
        score = game.score(state)[0]
        assert r.result == (1.0 if score > 0 else 0.0 if score < 0 else 0.5)


# ------------------------------------------------------------------ resuming a match

def _pair_of_randoms():
    return (make_player("random", GAME, seed=1, name="A"),
            make_player("random", GAME, seed=2, name="B"))


def _cut_match(tmp_path, keep):
    """The records of a 10-game match (seed 5, 3 opening plies) of which only the games whose
    index is in `keep` were written: a match killed there."""
    full = tmp_path / "full.jsonl"
    run_match(GAME, *_pair_of_randoms(), MatchConfig(games=10, in_flight=3, opening_plies=3,
                                                     sprt=None, seed=5),
              records=full, info={"match": "A vs B"})
    cut = tmp_path / "cut.jsonl"
    with open_record_writer(GAME, cut) as writer:
        kept = [r for r in read_records(GAME, full) if r.info["game_index"] in keep]
        for record in kept:
            writer.write(record)
    return cut, kept


def test_a_resumed_match_plays_only_the_missing_games_and_counts_the_rest(tmp_path):
    """Games 0, 1, 2 and 5 recorded (pair 2 cut in half): resuming plays 3, 4, 6, 7, 8, 9 with
    their pairs' openings and colours; the result counts all ten, the recorded ones as
    recorded; the file ends with each game once. Another game in the file (another match) is
    left be."""
    cut, kept = _cut_match(tmp_path, keep={0, 1, 2, 5})
    with open_record_writer(GAME, cut) as writer:      # another match's game in the same file
        writer.write(GameRecord("connect4", ("X", "Y"), [3, 3, 3], 0.5,
                                info={"match": "X vs Y", "game_index": 0, "score_a": 0.5}))
    played = []
    result = run_match(GAME, *_pair_of_randoms(),
                       MatchConfig(games=10, in_flight=3, opening_plies=3, sprt=None, seed=5),
                       records=cut, info={"match": "A vs B"}, resume=True,
                       progress=lambda record, stats: played.append(record.info["game_index"]))
    assert sorted(played) == [3, 4, 6, 7, 8, 9]
    assert result.resumed == 4 and result.stats.games == 10 and not result.stopped_early
    assert "4 of the games were played before" in result.summary()
    ours = by_index([r for r in read_records(GAME, cut) if r.info["match"] == "A vs B"])
    assert [r.info["game_index"] for r in ours] == list(range(10))
    assert [r.moves for r in ours if r.info["game_index"] in {0, 1, 2, 5}] == \
        [r.moves for r in by_index(kept)]
    for first, second in zip(ours[::2], ours[1::2]):
        assert first.players == ("A", "B") and second.players == ("B", "A")
        assert first.moves[:3] == second.moves[:3]
    wins = sum(r.info["score_a"] == 1 for r in ours)
    draws = sum(r.info["score_a"] == 0.5 for r in ours)
    assert (result.stats.wins, result.stats.draws) == (wins, draws)
    # all played: resuming again plays nothing and gives the same counts
    again = run_match(GAME, *_pair_of_randoms(),
                      MatchConfig(games=10, in_flight=3, opening_plies=3, sprt=None, seed=5),
                      records=cut, info={"match": "A vs B"}, resume=True,
                      progress=lambda record, stats: played.append(-1))
    assert -1 not in played and again.resumed == 10 and again.stats == result.stats


@pytest.mark.parametrize("keep, change, message", [
    ({0, 5}, dict(seed=6), "game 1 opened otherwise than this match opens it"),
    ({0, 5}, dict(opening_plies=2), "opened otherwise"),
    ({0, 5}, dict(games=4), "game 1 opened otherwise"),     # fewer pairs: other openings
    ({5}, dict(games=4), "game_index 5; this match has games 0-3"),
    ({0, 5}, dict(swap=True), "game 1 was played by A - B, this match has B - A"),
])
def test_resuming_with_other_settings_is_refused(tmp_path, keep, change, message):
    cut, _ = _cut_match(tmp_path, keep=keep)
    before = cut.read_bytes()
    a, b = _pair_of_randoms()
    if change.pop("swap", False):
        a.name, b.name = "B", "A"
    settings = dict(games=10, in_flight=3, opening_plies=3, sprt=None, seed=5) | change
    label = f"{a.name} vs {b.name}"
    if label != "A vs B":                              # the file's games are found by label
        lines = cut.read_text().replace('"A vs B"', f'"{label}"')
        cut.write_text(lines)
        before = cut.read_bytes()
    with pytest.raises(ValueError, match=message):
        run_match(GAME, a, b, MatchConfig(**settings), records=cut, info={"match": label},
                  resume=True)
    assert cut.read_bytes() == before                 # nothing written


def test_the_arena_command_resumes(tmp_path, capsys):
    records = tmp_path / "m.jsonl"
    args = ["arena", "--a", "random", "--b", "mcts-rollout:8", "--games", "6", "--no-sprt",
            "--in-flight", "2", "--records", str(records), "--quiet", "--seed", "3"]
    assert main(args) == 0
    lines = records.read_text().splitlines()
    records.write_text("\n".join(lines[:3]) + "\n")   # killed after three games
    assert main(args + ["--resume"]) == 0
    out = capsys.readouterr().out
    assert "3 of the games were played before, as recorded (resumed)" in out
    assert sorted(r.info["game_index"] for r in read_records(GAME, records)) == list(range(6))
    assert main(["arena", "--a", "random", "--b", "random", "--resume"]) == 2
    assert "--resume needs --records" in capsys.readouterr().err
    assert main(args[:-2] + ["--seed", "4", "--resume"]) == 2
    assert "azero arena: --resume: " in capsys.readouterr().err


def test_a_match_without_records_names_its_file_before_the_first_game(tmp_path, monkeypatch,
                                                                        capsys):
    """A match killed before its end must have told where its games went (the default name is
    a timestamp): --resume needs that file."""
    monkeypatch.chdir(tmp_path)
    assert main(["arena", "--a", "random", "--b", "random", "--games", "2", "--no-sprt",
                 "--seed", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    first_game = next(i for i, line in enumerate(lines) if line.startswith("game "))
    told = [line for line in lines[:first_game] if line.startswith("records: ")]
    assert len(told) == 1 and "--resume" in told[0]
    path = told[0].split()[1]
    assert (tmp_path / path).exists() and len(read_records(GAME, tmp_path / path)) == 2
