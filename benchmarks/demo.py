"""Wall time of the demo (`make demo`'s pipeline run), broken down by component.

One run of the same pipeline `make demo` runs, in a temporary output root, after set-up.
Per-component times are MLMD's execution records (create → last update). Goal: total ≤ 600 s
on 2 cores. Last line: JSON.
"""
import json
import os
import subprocess
import tempfile
import time



def main() -> None:
    from pipeline.run_record import read_run

    demo_args = os.environ.get("DEMO_ARGS", "").split()
    with tempfile.TemporaryDirectory() as out:
        started = time.time()
        subprocess.run(["dcgan-tfx", "run", "--output-root", out] + demo_args, check=True)
        total = time.time() - started
        record = read_run(os.path.join(out, "metadata.sqlite"), "dcgan-tfx")
    by_component = {node_id: round(node.seconds, 1) for node_id, node in record.nodes.items()}
    result = {"total_s": round(total, 1), "components_s": by_component,
              "orchestration_and_imports_s": round(total - sum(by_component.values()), 1),
              "goal_s": 600, "within_goal": total <= 600}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
