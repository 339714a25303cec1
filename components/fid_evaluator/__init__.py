"""FID evaluator: standard Inception features offline, FID/KID metrics, and a TFX gate component.

Modules: ``weights`` (safe TorchScript reader), ``inception`` (Keras port), ``protocol`` (the pinned
resize/scale), ``metrics`` (pure numpy FID/KID + registry), ``manifold`` (k-NN precision/recall,
density/coverage), ``extractors`` (by name),
``evaluate`` (plain scoring function), ``gate`` (TFMA thresholds and ValidationResult),
``component``/``executor`` (TFX glue), ``cli`` (``dcgan-tfx features`` / ``dcgan-tfx fid``).
See README.md in this folder for where the weights come from and their licences.
"""
