"""Moved to games/go9/records.py (the SGF format is go9's registry hook); this name stays only
until azero/protocols imports it from there."""
from azero.games.go9.records import *  # noqa: F401,F403
