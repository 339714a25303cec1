"""The ground floor: contracts every other package of the project shares, importing none of them.

Modules: ``config`` (the typed configuration and its one JSON decoder), ``fileio`` (atomic
whole-file writes and reads, local or gs://), ``features`` (the tf.Example and image contract between ingestion, Transform, Trainer and
evaluator), ``fid`` (the FID/KID core: metrics, the Inception port and its weights reader).
docs/architecture.md ("Layers") names the layers above this one; tests/test_layers.py enforces them.
"""
