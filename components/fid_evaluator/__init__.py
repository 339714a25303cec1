"""FID evaluator: standard Inception features offline, FID/KID metrics, and a TFX gate component.

The metric core (``metrics``, ``manifold``, ``inception``, ``protocol``, ``weights``) lives in
``dcgan_common.fid``, where the Trainer can use it too. Modules here: ``extractors`` (feature
extractors by name), ``sampling`` (the one seeded sampler of exported generators),
``evaluate`` (plain scoring function), ``gate`` (TFMA thresholds and ValidationResult),
``component``/``executor`` (TFX glue), ``cli`` (``dcgan-tfx features`` / ``dcgan-tfx fid``).
See README.md in this folder for where the weights come from and their licences.
"""
