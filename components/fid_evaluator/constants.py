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

EVAL_CONFIG_PARAM = "eval_config"          # dcgan_common.config.EvalConfig as JSON (section_to_json)
CACHE_DIR_PARAM = "cache_dir"              # "" = <pipeline root>/fid_stats_cache
EXTRACTOR_PARAM = "extractor"              # "inception"; "downsample-8x8" for tests/smoke only

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
