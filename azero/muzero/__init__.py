"""MuZero: trajectory replay (replay.py), the K-step unrolled trainer (train.py), the categorical
value support (support.py). The networks are azero.nets.muzero."""
