"""The stock TFX Pusher with an atomic, metrics-carrying push (see executor.py)."""
