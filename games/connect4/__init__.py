"""Connect Four: numba bitboard rules (rules.py) and the `Game` wrapper (game.py)."""
