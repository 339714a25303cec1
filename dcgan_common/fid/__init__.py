"""The FID core, shared by the FidEvaluator component and the Trainer's in-training KID.

``metrics`` (pure numpy FID/KID and the metric registry), ``protocol`` (the pinned resize and
scale), ``weights`` (a torch-free TorchScript reader), ``inception`` (the Keras port of the FID
network). See components/fid_evaluator/README.md for where the weights come from and their licences.
"""
