import numpy as np
import pytest
import yaml

from azero import config as C
from azero.config import Config, ConfigError, load_config


def test_bundled_connect4_loads_with_the_documented_defaults():
    cfg = load_config("connect4")
    assert cfg.game == "connect4"
    assert (cfg.model.blocks, cfg.model.channels) == (4, 48)
    assert cfg.search.algorithm == "gumbel"
    assert cfg.train.lr == pytest.approx(2e-3)
    assert cfg.selfplay.resign_threshold is None


def test_tiny_config_extends_connect4_and_only_changes_what_it_lists():
    tiny, full = load_config("connect4_tiny"), load_config("connect4")
    assert (tiny.model.blocks, tiny.model.channels, tiny.search.num_simulations) == (1, 8, 8)
    assert tiny.model.policy_channels == full.model.policy_channels   # inherited
    assert tiny.train.optimizer == full.train.optimizer
    assert tiny.game == "connect4"


def test_every_bundled_yaml_states_only_known_keys():
    for name in C.bundled_config_names():
        load_config(name)


def test_connect4_yaml_lists_every_key():
    """The main config documents the full schema: every dataclass field appears in it."""
    raw = yaml.safe_load(C.find_config("connect4").read_text())
    flat = set()
    for k, v in raw.items():
        flat |= {f"{k}.{kk}" for kk in v} if isinstance(v, dict) else {k}
    assert set(C._all_keys(Config)) <= flat


def test_overrides_parse_yaml_values_and_nested_keys():
    cfg = load_config("connect4", ["train.lr=1e-3", "search.num_simulations=64", "gate.enabled=false",
                                   "selfplay.resign_threshold=-0.9", "train.lr_milestones=[100, 200]",
                                   "train.threads=null", "run_dir=/tmp/x", "train.batch_size=1e3"])
    assert cfg.train.lr == pytest.approx(1e-3) and isinstance(cfg.train.lr, float)
    assert cfg.search.num_simulations == 64
    assert cfg.gate.enabled is False
    assert cfg.selfplay.resign_threshold == pytest.approx(-0.9)
    assert cfg.train.lr_milestones == [100, 200]
    assert cfg.train.threads is None
    assert cfg.run_dir == "/tmp/x"
    assert cfg.train.batch_size == 1000 and isinstance(cfg.train.batch_size, int)


@pytest.mark.parametrize("override, key, words", [
    ("train.lrr=0.1", "train.lrr", "did you mean 'train.lr'"),
    ("serch.num_simulations=3", "serch", "did you mean 'search'"),
    ("search.num_simulations=abc", "search.num_simulations", "integer"),
    ("search.num_simulations=1.5", "search.num_simulations", "integer"),
    ("search.num_simulations=-1", "search.num_simulations", ">= 0"),
    ("search.dirichlet_fraction=1.5", "search.dirichlet_fraction", "<= 1"),
    ("train.lr=0", "train.lr", "> 0"),
    ("train.optimizer=adam", "train.optimizer", "did you mean 'adamw'"),
    ("gate.enabled=3", "gate.enabled", "true or false"),
    ("model.blocks=true", "model.blocks", "integer"),
    ("train.lr.x=1", "train.lr", "not a section"),
    ("train=5", "train", "mapping"),
    ("selfplay.resign_threshold=0.5", "selfplay.resign_threshold", "<= 0"),
    ("gate.sprt_elo1=-5", "gate.sprt_elo1", "greater than"),
    ("train.lr_milestones=[5, 3]", "train.lr_milestones", "increasing"),
    ("nonsense", "nonsense", "key=value"),
    ("train.device=gpu", "train.device", "cuda:N"),
    ("search.value_bounds=[1, -1]", "search.value_bounds", "min < max"),
    ("search.value_bounds=[0, x]", "search.value_bounds[1]", "number"),
])
def test_errors_name_the_dotted_key(override, key, words):
    with pytest.raises(ConfigError) as e:
        load_config("connect4", [override])
    msg = str(e.value)
    assert key in msg and words in msg, msg


def test_unknown_key_in_a_file_is_named(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("game: connect4\nmodel:\n  chanels: 32\n")
    with pytest.raises(ConfigError, match=r"model\.chanels: unknown key; did you mean 'model\.channels'"):
        load_config(p)


def test_missing_game_and_missing_file(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("model: {blocks: 2}\n")
    with pytest.raises(ConfigError, match="game: missing"):
        load_config(p)
    with pytest.raises(ConfigError, match="connect5.*did you mean 'connect4'"):
        load_config("connect5")


def test_extends_relative_file_and_cycle(tmp_path):
    (tmp_path / "base.yaml").write_text("game: dropthree\nmodel: {blocks: 2, channels: 16}\n")
    (tmp_path / "child.yaml").write_text("extends: base.yaml\nmodel: {channels: 32}\n")
    cfg = load_config(tmp_path / "child.yaml")
    assert (cfg.game, cfg.model.blocks, cfg.model.channels) == ("dropthree", 2, 32)
    assert cfg.run_dir == "runs/dropthree"
    (tmp_path / "a.yaml").write_text("extends: b.yaml\n")
    (tmp_path / "b.yaml").write_text("extends: a.yaml\n")
    with pytest.raises(ConfigError, match="cycle"):
        load_config(tmp_path / "a.yaml")


def test_dict_round_trip_is_plain_and_exact():
    cfg = load_config("connect4_tiny", ["train.lr_milestones=[10]"])
    d = cfg.to_dict()
    assert yaml.safe_load(yaml.safe_dump(d)) == d     # plain types only
    assert Config.from_dict(d) == cfg
    assert Config.from_dict(yaml.safe_load(cfg.to_yaml())) == cfg


def test_the_search_section_is_the_search_config():
    """One type: the config's search section is what the search takes, range-checked however it
    is made, its errors naming the key (the config and SearchConfig were two mirrored types)."""
    from azero import search
    assert C.SearchConfig is search.SearchConfig
    sc = load_config("connect4", ["search.num_simulations=48"]).search
    assert type(sc) is search.SearchConfig and sc.num_simulations == 48
    assert sc.value_bounds == (-1.0, 1.0)
    assert load_config("connect4", ["search.value_bounds=null"]).search.value_bounds is None
    assert Config.from_dict(load_config("connect4").to_dict()).search == load_config("connect4").search
    for bad, words in ((dict(num_simulations=-1), "search.num_simulations: must be >= 0"),
                       (dict(dirichlet_fraction=2.0), "search.dirichlet_fraction: must be <= 1"),
                       (dict(algorithm="minimax"), "search.algorithm: must be one of"),
                       (dict(value_bounds=(1.0, -1.0)), "search.value_bounds: must be [min, max]"),
                       (dict(value_bounds=(1.0,)), "search.value_bounds: expected [float, float]"),
                       (dict(reuse_tree="yes"), "search.reuse_tree: expected true or false"),
                       (dict(tree_min_max=True), "search.tree_min_max")):
        with pytest.raises(ConfigError) as e:
            search.SearchConfig(**bad)
        assert str(e.value).startswith(words), e.value
    # NumPy numbers are numbers; values are normalised as a config file's are
    made = search.SearchConfig(num_simulations=np.int64(8), c_scale=np.float32(0.5),
                               value_bounds=[0, 1])
    assert (made.num_simulations, made.c_scale, made.value_bounds) == (8, 0.5, (0.0, 1.0))
    assert type(made.num_simulations) is int and type(made.c_scale) is float


def test_rules_komi_reaches_the_game_and_bad_values_name_the_key():
    game = load_config("go9_tiny", ["rules.komi=7.5"]).make_game()
    assert game.komi == 7.5
    state = game.initial_states(1)            # komi travels in the state: scored with 7.5
    for _ in range(2):
        state = game.step(state, np.array([81]))
    assert game.terminal(state)[0] and game.score(state)[0] == -7.5
    assert load_config("go9_tiny").make_game().komi == 7.0
    with pytest.raises(ConfigError, match=r"^rules\.komi: .*multiple of 0\.5"):
        load_config("go9_tiny", ["rules.komi=7.3"]).make_game()
    with pytest.raises(ConfigError, match=r"^rules\.komi: connect4 has no such rule"):
        load_config("connect4_tiny", ["rules.komi=7.5"]).make_game()
