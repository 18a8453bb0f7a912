"""`azero bench rules`: batched random playouts against OpenSpiel, as JSON lines."""
import json

import pytest

from azero.cli import main


def test_rules_bench_reports_ours_and_the_peer(capsys):
    pytest.importorskip("pyspiel")
    assert main(["bench", "rules", "--game", "connect4", "--seconds", "0.05", "--repeats", "2",
                 "--batch", "64", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["name"].split("(")[1].split(")")[0] for r in rows] == [
        "legal_mask/step/terminal", "step_with_info"]
    for r in rows:
        assert r["unit"] == "moves/s" and r["value"] > 1e4
        assert "open_spiel connect_four" in r["peer"] and r["peer_value"] > 1e4
        assert r["ratio"] == pytest.approx(r["value"] / r["peer_value"])


def test_rules_bench_refuses_zero_repeats(capsys):
    assert main(["bench", "rules", "--game", "connect4", "--repeats", "0"]) != 0
    assert "--repeats" in capsys.readouterr().err
