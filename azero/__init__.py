"""azero: AlphaZero self-play engine for board games, with a MuZero-ready search."""
__version__ = "0.1.0"
