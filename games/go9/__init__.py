"""Go 9x9: numba bitboard rules (rules.py: Tromp-Taylor, positional superko) and the `Game`
wrapper (game.py)."""
