"""`azero bench all --markdown` (the table that opens BENCHMARKS.md), the peer/baseline split of
a Measurement, and the command every row carries."""
import io
import re
import shlex

import pytest

from azero.bench import command_line, target_parser
from azero.bench.headline import parts
from azero.bench.report import MARKDOWN_HEADER, Measurement, write_markdown, write_table
from azero.cli import main


def markdown_rows(text: str) -> list[list[str]]:
    """The cells of each line of a markdown table (header and rule included)."""
    lines = [line for line in text.splitlines() if line.startswith("|")]
    # split on | not preceded by a backslash (escaped pipes stay inside their cell)
    return [[c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]] for line in lines]


def number(cell: str) -> float:
    return float(cell.split()[0].replace(",", "").rstrip("x"))


def test_bench_all_markdown_rows_say_when_where_and_how(capsys):
    assert main(["bench", "all", "--smoke", "--markdown"]) == 0
    table = markdown_rows(capsys.readouterr().out)
    assert tuple(table[0]) == MARKDOWN_HEADER
    assert len(table[1]) == len(MARKDOWN_HEADER) and set("".join(table[1])) <= set("-:")
    rows = [dict(zip(MARKDOWN_HEADER, cells)) for cells in table[2:]]
    assert rows and all(len(cells) == len(MARKDOWN_HEADER) for cells in table[2:])
    commands = set()
    for row in rows:
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d", row["date (UTC)"]), row
        assert re.match(r"\d+ cores .+, (no GPU|.+)$", row["machine"]), row
        command = row["command"].strip("`")
        words = shlex.split(command)
        assert words[:2] == ["azero", "bench"], row
        target_parser(words[2]).parse_args(words[3:])       # the command runs as written
        commands.add(command)
        # one line per comparison (a row may have a peer and a baseline): each measured one
        # has its ratio, ours over its
        comparisons = list(zip(*(row[k].split("<br>") for k in MARKDOWN_HEADER[2:5]),
                               strict=True))
        for who, figure, ratio in comparisons:
            assert who == "-" or who.startswith(("peer: ", "baseline (ours): ")), row
            if figure != "-":
                # (the cells are rounded: ratios to 0.01, figures to 3-4 digits)
                assert number(ratio) == pytest.approx(number(row["ours"]) / number(figure),
                                                      rel=0.01, abs=0.006), row
    # every part of the headline set gave rows, under the command that made them
    assert commands == {shlex.join(["azero", "bench", p.target, *p.argv])
                        for p in parts(smoke=True)}
    by_target = {shlex.split(r["command"].strip("`"))[2]: r for r in rows}
    pytest.importorskip("pyspiel")
    assert by_target["rules"]["compared with (same run, same machine)"].startswith(
        "peer: open_spiel connect_four")
    # our own other paths are baselines, not peers
    for target in ("net", "selfplay"):
        assert by_target[target]["compared with (same run, same machine)"].startswith(
            "baseline (ours): "), by_target[target]


def test_measurement_keeps_peer_and_baseline_apart():
    m = Measurement("x", 30.0, "moves/s", peer="open_spiel", peer_value=10.0,
                    baseline="our eager path", baseline_value=20.0)
    assert m.ratio == pytest.approx(3.0) and m.baseline_ratio == pytest.approx(1.5)
    d = m.as_dict()
    assert (d["peer"], d["ratio"], d["baseline"], d["baseline_ratio"]) == (
        "open_spiel", pytest.approx(3.0), "our eager path", pytest.approx(1.5))
    only_baseline = Measurement("y", 30.0, "moves/s", baseline="ours before", baseline_value=15.0)
    assert only_baseline.ratio is None and only_baseline.baseline_ratio == pytest.approx(2.0)

    out = io.StringIO()
    write_markdown([m, only_baseline], out)
    rows = markdown_rows(out.getvalue())[2:]
    assert rows[0][2] == "peer: open_spiel<br>baseline (ours): our eager path"
    assert rows[0][4] == "3.00x<br>1.50x"
    assert rows[1][2:5] == ["baseline (ours): ours before", "15.0", "2.00x"]

    out = io.StringIO()
    write_table([only_baseline], out)
    header, _, row = out.getvalue().splitlines()
    assert "baseline (ours)" in header and "ours before" in row and "2.00x" in row

    with pytest.raises(ValueError, match="peer figure without"):
        Measurement("z", 1.0, "x", peer_value=2.0)
    with pytest.raises(ValueError, match="baseline figure without"):
        Measurement("z", 1.0, "x", baseline_value=2.0)


@pytest.mark.parametrize("target, argv", [
    ("search", ["--quick", "--no-peer", "--actions", "7", "82", "--seconds", "0.5"]),
    ("net", ["--game", "go9", "--batch", "1", "64", "--threads", "2"]),
    ("rules", []),
])
def test_command_line_parses_back_to_the_same_arguments(target, argv):
    parser = target_parser(target)
    args = parser.parse_args(argv)
    command = command_line(target, parser, args)
    words = shlex.split(command)
    assert words[:3] == ["azero", "bench", target]
    assert vars(parser.parse_args(words[3:])) == vars(args)
    assert len(words) - 3 <= len(argv)          # defaults are not spelled out


def test_a_single_bench_markdown_row_carries_its_command(capsys):
    assert main(["bench", "net", "--game", "connect4_tiny", "--batch", "4", "--seconds", "0.01",
                 "--rounds", "1", "--precision", "fp32", "--markdown"]) == 0
    (row,) = markdown_rows(capsys.readouterr().out)[2:]     # fp32: no bf16-against-fp32 row
    assert row[-1] == ("`azero bench net --game connect4_tiny --batch 4 --seconds 0.01 "
                       "--rounds 1 --precision fp32`")


def test_markdown_and_json_are_exclusive(capsys):
    with pytest.raises(SystemExit):
        main(["bench", "all", "--smoke", "--markdown", "--json"])
