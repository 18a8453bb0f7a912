"""Connect Four's record format (its registry hook): JSON lines with the moves as one string of
1-indexed column digits ("4453"), the form of the perfect-play set in shared/bench/connect4."""
from azero.records import json_lines_format

RECORD_FORMAT = json_lines_format(compact_moves=True)
