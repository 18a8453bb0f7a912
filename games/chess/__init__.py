"""Chess, an adapter over python-chess (GPL-3.0): installed with the optional extra
`pip install -e ".[chess]"`. Nothing outside this folder imports python-chess at import time."""
