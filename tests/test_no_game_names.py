"""No module outside games/ names a game: what differs between games hangs off the registry
(games/__init__.py), so a generic module works for a game it has never heard of.

The rule, checked on the syntax tree of every module of the azero package (games/ installs as
azero.games and is not part of it): no registered game name (games.names()) appears as a whole
word (letters and digits around it, so "go9_tiny" and "connect4.yaml" count) in
  * a string literal, f-strings included, other than a docstring;
  * an identifier: a name, an attribute, an argument, a function or class name;
  * an imported module path (azero.games.<game>...).
Comments and docstrings may name games: they explain, they do not decide.
"""
import ast
import re
from pathlib import Path

from azero import games

PACKAGE = Path(__file__).resolve().parents[1] / "azero"


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of the docstring constants of a module, its classes and functions."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                out.add(id(body[0].value))
    return out


def _words(node: ast.AST) -> list[str]:
    """The texts of `node` the rule applies to (without docstrings; see _docstrings)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.Name):
        return [node.id]
    if isinstance(node, ast.Attribute):
        return [node.attr]
    if isinstance(node, ast.arg):
        return [node.arg]
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [node.name]
    if isinstance(node, ast.alias):
        return [node.name, node.asname or ""]
    if isinstance(node, ast.ImportFrom):
        return [node.module or ""]
    return []


def game_names_in(source: str, names: list[str]) -> list[tuple[int, str]]:
    """(line, text) of every place in `source` that names one of `names` against the rule."""
    pattern = re.compile(r"(?<![A-Za-z0-9])(" + "|".join(map(re.escape, names)) +
                         r")(?![A-Za-z0-9])")
    tree = ast.parse(source)
    skip = _docstrings(tree)
    found = []
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        for text in _words(node):
            if pattern.search(text):
                found.append((getattr(node, "lineno", 0), text))
    return sorted(found)


def test_the_rule_catches_what_it_should():
    source = '''"""A module docstring may say connect4."""
import azero.games.go9.records                      # an import path
from azero.games.connect4 import solver
# a comment may say go9
def f(game="connect4"):                             # a string default
    """A docstring may say go9."""
    go9_board = 1                                   # an identifier
    x.connect4                                      # an attribute
    return f"{game}: go9 only", "connect4.yaml", "go9_tiny", "go99", "xconnect4"
'''
    assert game_names_in(source, ["connect4", "go9"]) == [
        (2, "azero.games.go9.records"), (3, "azero.games.connect4"), (5, "connect4"),
        (7, "go9_board"), (8, "connect4"), (9, ": go9 only"), (9, "connect4.yaml"),
        (9, "go9_tiny")]


def _offenders(path: Path) -> list[str]:
    return [f"{path.relative_to(PACKAGE.parent)}:{line}: {text!r}"
            for line, text in game_names_in(path.read_text(encoding="utf-8"), games.names())]


def test_no_module_outside_games_names_a_game():
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        offenders += _offenders(path)
    assert not offenders, "modules outside games/ name a game:\n" + "\n".join(offenders)
