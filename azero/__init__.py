"""azero: AlphaZero / MuZero self-play engine for board games."""
__version__ = "0.1.0"
