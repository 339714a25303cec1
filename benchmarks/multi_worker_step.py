"""Per-step cost of MultiWorkerMirroredStrategy on this machine: the project's training step on one
global batch in one process, then in two worker processes on loopback ports (TF_CONFIG as Vertex
AI sets it: a "chief" and a "worker"), and an all-reduce alone of a tensor as large as G's and
D's gradients between the two processes.

    scripts/in-env python benchmarks/multi_worker_step.py [--recipe seed] [--batch 32] [--steps 6]
                                                          [--threads 1]

Each process uses ``--threads`` TF threads (intra- and inter-op). The batch is random images (the
step's cost does not depend on the pixels). The last line is JSON: one_process_s and
two_workers_s (median wall seconds per global batch after two warm-up steps), allreduce_s (median
wall seconds per all-reduce of ``grad_params`` float32 values, i.e. ``grad_mb`` MB), the same as
CPU seconds of each process (``*_cpu_s``: what a busy machine distorts least), the 1-minute load
average at the end, and the settings.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)  # run as a script from any folder, no install needed
sys.path.insert(0, os.path.join(REPO, "tests"))  # the loopback cluster the multi-worker test uses
from loopback_cluster import chief_and_worker_tf_configs  # noqa: E402


def _median_seconds(fn, steps: int, warmup: int = 2) -> tuple[float, float]:
    """(median wall seconds, median CPU seconds of this process) per call of ``fn``. CPU time
    hardly depends on what else runs on the machine; wall time does."""
    for _ in range(warmup):
        fn()
    wall, cpu = [], []
    for _ in range(steps):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return statistics.median(wall), statistics.median(cpu)


def measure(recipe: str, batch: int, steps: int, threads: int) -> dict:
    """In this process: seconds per step (and per gradient-sized all-reduce with several
    workers)."""
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    from trainer.train import select_strategy

    strategy = select_strategy()   # before any other TF op: the multi-worker strategy needs that
    import numpy as np

    from dcgan_common.config import TrainConfig
    from trainer.train import build_gan, make_step_fn

    cfg = TrainConfig.from_recipe(recipe, batch_size=batch)
    with strategy.scope():
        gan = build_gan(cfg, strategy.num_replicas_in_sync)
    step = make_step_fn(gan, strategy)
    images = np.random.default_rng(0).uniform(-1, 1, (batch, 64, 64, 3)).astype("float32")
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    ds = tf.data.Dataset.from_tensors(images).repeat().with_options(options)
    batches = iter(strategy.experimental_distribute_dataset(ds))
    out = dict(zip(("step_s", "step_cpu_s"),
                   _median_seconds(lambda: float(step(next(batches))), steps)),
               replicas=strategy.num_replicas_in_sync)
    n = sum(int(np.prod(v.shape)) for v in gan.generator.trainable_variables
            + gan.discriminator.trainable_variables)
    if strategy.num_replicas_in_sync > 1:
        @tf.function
        def allreduce():
            return strategy.run(lambda: tf.distribute.get_replica_context().all_reduce(
                tf.distribute.ReduceOp.SUM, tf.ones([n])))

        out["allreduce_s"], out["allreduce_cpu_s"] = _median_seconds(
            lambda: strategy.experimental_local_results(allreduce())[0].numpy()[:1], steps)
    out["grad_params"] = n
    return out


def _run(args, tf_configs: list[str | None], timeout: float = 900) -> list[dict]:
    """Run ``measure`` in one process per TF_CONFIG (at once); their JSON results."""
    cmd = [sys.executable, os.path.abspath(__file__), "--measure", "--recipe", args.recipe,
           "--batch", str(args.batch), "--steps", str(args.steps), "--threads", str(args.threads)]
    procs = []
    for tf_config in tf_configs:
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
        env.pop("TF_CONFIG", None)
        if tf_config:
            env["TF_CONFIG"] = tf_config
        procs.append(subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True))
    try:
        outs = [p.communicate(timeout=timeout)[0] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    if any(p.returncode for p in procs):
        raise SystemExit(f"a measuring process failed: {[p.returncode for p in procs]}")
    return [json.loads(o.strip().splitlines()[-1]) for o in outs]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--recipe", default="seed")
    ap.add_argument("--batch", type=int, default=32, help="global batch")
    ap.add_argument("--steps", type=int, default=6, help="timed steps (after 2 warm-up steps)")
    ap.add_argument("--threads", type=int, default=1, help="TF threads per process")
    ap.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.measure:
        print(json.dumps(measure(args.recipe, args.batch, args.steps, args.threads)))
        return
    (one,) = _run(args, [None])
    two = _run(args, chief_and_worker_tf_configs())
    print(json.dumps({
        "recipe": args.recipe, "batch": args.batch, "steps": args.steps, "threads": args.threads,
        "cpus": os.cpu_count(), "load_1min": round(os.getloadavg()[0], 2),
        "one_process_s": round(one["step_s"], 3), "one_process_cpu_s": round(one["step_cpu_s"], 3),
        "two_workers_s": round(max(r["step_s"] for r in two), 3),
        "two_workers_cpu_s": [round(r["step_cpu_s"], 3) for r in two],
        "allreduce_s": round(max(r["allreduce_s"] for r in two), 3),
        "allreduce_cpu_s": [round(r["allreduce_cpu_s"], 3) for r in two],
        "grad_params": one["grad_params"], "grad_mb": round(4 * one["grad_params"] / 2**20, 1)}))


if __name__ == "__main__":
    main()
