"""Chess speed benchmarks: `azero bench rules --game chess` against OpenSpiel's C++ chess in the
same run, and `azero bench selfplay --split`'s shares of the self-play time."""
import json

import pytest

pytest.importorskip("chess")

from azero.cli import main  # noqa: E402


def bench_rows(capsys, *argv):
    assert main(["bench", *argv, "--json"]) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]


def test_bench_rules_chess_beside_openspiel(capsys):
    pytest.importorskip("pyspiel")
    [row] = bench_rows(capsys, "rules", "--game", "chess", "--batch", "8", "--seconds", "0.3",
                       "--repeats", "1")
    assert row["unit"] == "moves/s" and row["value"] > 0
    assert "chess random playouts through the search's leaf step" in row["name"]
    assert "step_with_info" in row["name"] and "B=8" in row["name"]
    # The peer is OpenSpiel's own chess, in C++, measured in the same run.
    assert row["peer"].startswith("open_spiel chess (C++") and row["peer_value"] > 0
    assert row["ratio"] == pytest.approx(row["value"] / row["peer_value"])
    # Random chess games are long (OpenSpiel's mean length is part of the peer's figure).
    mean_length = float(row["peer"].split("games x ")[1].split(",")[0])
    assert 100 < mean_length < 1000
    assert row["baseline_value"] > 0                 # the separate protocol calls


def test_bench_selfplay_split_shares_add_up(capsys):
    rows = bench_rows(capsys, "selfplay", "--game", "chess", "--games", "4", "--steps", "1",
                      "--rounds", "1", "--split", "--precision", "fp32")   # fp32: one rate row
    assert [r["unit"] for r in rows] == ["positions/s"] + ["fraction"] * 4
    assert rows[0]["value"] > 0 and "4x64 net, 4 games x 32 gumbel sims" in rows[0]["name"]
    shares = {r["name"].split("share of its time in ")[1]: r["value"] for r in rows[1:]}
    assert list(shares) == ["the network's forward passes",
                            "the rules (game calls of self-play and the search)",
                            "the observation features", "the rest (C++ search, records, glue)"]
    # Every call was timed where it happened, nothing twice: each share is a real part.
    assert all(0 < v < 1 for v in shares.values()), shares
    assert sum(shares.values()) == pytest.approx(1.0)
