"""The languages other programs speak with us: GTP v2 for Go (gtp.py: our engine for GoGui,
Sabaki, gogui-twogtp; gtp_client.py: external GTP engines such as GNU Go as opponents)."""
