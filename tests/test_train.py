"""Training-loop tests: strategy choice, resume equivalence, NaN stop, logs, monitors, run_fn."""
import glob
import json
import os

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from dcgan_common.config import ConfigError, TrainConfig  # noqa: E402
from dcgan_common import features  # noqa: E402
from trainer import monitors  # noqa: E402
from trainer.train import (TrainingDiverged, strategy_kind, train)  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLE = os.path.join(REPO, "data", "sample")


def _real_images(n=16):
    """n real photos from data/sample, squashed to 64x64, float32 [-1, 1]."""
    from PIL import Image
    paths = sorted(glob.glob(os.path.join(SAMPLE, "*", "*")))
    paths = [p for p in paths if p.lower().endswith((".jpg", ".jpeg", ".png"))][:n]
    arr = [np.asarray(Image.open(p).convert("RGB").resize((64, 64), Image.BILINEAR)) for p in paths]
    return features.from_uint8(np.stack(arr))


def _ds(images, batch):
    return tf.data.Dataset.from_tensor_slices(images).batch(batch, drop_remainder=True)


def test_strategy_kind():
    two = json.dumps({"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 0}})
    one = json.dumps({"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 0}})
    assert strategy_kind(0, None) == "default"
    assert strategy_kind(1, "") == "default"
    assert strategy_kind(2, None) == "mirrored"
    assert strategy_kind(0, two) == "multi_worker"
    assert strategy_kind(4, one) == "mirrored"
    assert strategy_kind(0, json.dumps({"cluster": {"chief": ["a:1"], "worker": ["b:2"]}})) \
        == "multi_worker"
    with pytest.raises(ValueError, match="TF_CONFIG"):
        strategy_kind(0, "{not json")


def test_is_chief():
    """One writer per cluster: the "chief" task when there is one, else worker 0."""
    from trainer.train import is_chief
    assert is_chief(None, None, None) and is_chief({}, "worker", 3)
    workers = {"worker": ["a:1", "b:2"]}
    assert is_chief(workers, "worker", 0) and not is_chief(workers, "worker", 1)
    with_chief = {"chief": ["a:1"], "worker": ["b:2"]}
    assert is_chief(with_chief, "chief", 0) and not is_chief(with_chief, "worker", 0)


def test_config_validation_of_new_fields():
    with pytest.raises(ConfigError, match="precision"):
        TrainConfig(precision="fp8").validate()
    with pytest.raises(ConfigError, match="export_best"):
        TrainConfig(export_best=True, kid_every_epochs=0).validate()


def _final_variables(run_dir):
    prefix = tf.train.latest_checkpoint(os.path.join(run_dir, "checkpoints"))
    reader = tf.train.load_checkpoint(prefix)
    names = [n for n in reader.get_variable_to_shape_map() if "OPTIMIZER_SLOT" not in n
             and not n.startswith("_CHECKPOINTABLE") and "save_counter" not in n]
    return {n: reader.get_tensor(n) for n in names}


@pytest.mark.parametrize("recipe", ["seed", "data_efficient"])
def test_resume_equals_uninterrupted(tmp_path, recipe):
    """k steps, checkpoint, restore into fresh objects, j more == k + j uninterrupted. For the
    default recipe this covers the EMA generator (in the checkpoint, compared below) and the
    DiffAugment draws (keyed on the restored step counter)."""
    images = _real_images(16)
    cfg = dict(batch_size=4, steps_per_epoch=2, sample_grid_size=4, seed=5, recipe=recipe,
               kid_every_epochs=0, export_best=False)
    ds_fn = lambda epoch: _ds(np.roll(images, 4 * epoch, axis=0), 4)  # noqa: E731
    full = train(TrainConfig.from_recipe(epochs=2, **cfg), ds_fn, str(tmp_path / "full"), None)
    assert full["status"] == "complete" and full["steps"] == 4
    part = train(TrainConfig.from_recipe(epochs=1, **cfg), ds_fn, str(tmp_path / "crashed"), None)
    assert part["steps"] == 2
    # A new attempt in a new run dir resumes from the crashed one (same fingerprint).
    resumed = train(TrainConfig.from_recipe(epochs=2, **cfg), ds_fn, str(tmp_path / "retry"),
                    str(tmp_path / "serving"), resume_dirs=[str(tmp_path / "crashed")])
    assert resumed["restored_from"].startswith(str(tmp_path / "crashed"))
    assert resumed["steps"] == 4 and resumed["epochs_completed"] == 2
    a, b = _final_variables(str(tmp_path / "full")), _final_variables(str(tmp_path / "retry"))
    assert set(a) == set(b) and len(a) > 20
    assert any(n.startswith("ema_generator") for n in a) == (recipe == "data_efficient")
    for name in a:
        np.testing.assert_allclose(b[name], a[name], atol=1e-5, err_msg=name)
    np.testing.assert_allclose(resumed["final"]["d_loss"], full["final"]["d_loss"], rtol=1e-4)

    # What the run dir holds: per-epoch PNG grids, TensorBoard events with the scalars and grid.
    run = tmp_path / "retry"
    assert sorted(os.listdir(run / "samples")) == ["epoch_002.png"]
    assert sorted(os.listdir(tmp_path / "full" / "samples")) == ["epoch_001.png", "epoch_002.png"]
    tags = set()
    for ev in glob.glob(str(tmp_path / "full" / "logs" / "events.*")):
        for e in tf.compat.v1.train.summary_iterator(ev):
            tags |= {v.tag for v in e.summary.value}
    assert {"d_loss", "g_loss", "mean_D(x)", "mean_D(G(z))", "learning_rate/generator",
            "learning_rate/discriminator", "fixed_noise_grid"} <= tags
    summary = json.loads((run / "training_summary.json").read_text())
    assert summary["status"] == "complete" and [h["epoch"] for h in summary["history"]] == [0, 1]
    assert os.path.exists(tmp_path / "serving" / "saved_model.pb")
    # A wrong fingerprint is not resumed from.
    other = train(TrainConfig.from_recipe(epochs=1, **cfg), ds_fn, str(tmp_path / "other"), None,
                  fingerprint="different", resume_dirs=[str(tmp_path / "crashed")])
    assert other["restored_from"] is None


def test_nan_stops_keeps_checkpoint_exports_nothing(tmp_path):
    images = _real_images(8)
    bad = images.copy()
    bad[1, 10, 10, 0] = np.nan

    def ds_fn(epoch):
        return _ds(images if epoch == 0 else bad, 4)

    cfg = TrainConfig.from_recipe("seed", epochs=3, batch_size=4, sample_grid_size=4)
    run, serving = tmp_path / "run", tmp_path / "serving"
    with pytest.raises(TrainingDiverged, match="NaN/Inf.*epoch 2"):
        train(cfg, ds_fn, str(run), str(serving))
    assert tf.train.latest_checkpoint(str(run / "checkpoints")).endswith("ckpt-1")
    assert not serving.exists()
    summary = json.loads((run / "training_summary.json").read_text())
    assert summary["status"] == "diverged" and summary["epochs_completed"] == 1
    assert summary["last_healthy_checkpoint"].endswith("ckpt-1")


def test_too_small_dataset_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="no full batch"):
        train(TrainConfig.from_recipe("seed", epochs=1, batch_size=32), _ds(_real_images(8), 32),
              str(tmp_path / "run"), None)


def test_monitors_warn():
    m = monitors.TrainingMonitor()
    rng = np.random.default_rng(0)
    diverse = rng.uniform(-1, 1, (6, 8, 8, 3)).astype("float32")
    for e in range(3):
        m.update(e, {"d_loss": 0.5, "g_loss": 1.0, "d_fake": 0.4}, diverse * (1 + 0.1 * e))
    assert m.warnings == []
    collapsed = np.repeat(diverse[:1], 6, axis=0)
    for e in range(3, 6):
        m.update(e, {"d_loss": 0.01, "g_loss": 6.0, "d_fake": 0.001}, collapsed)
    kinds = {w["kind"] for w in m.warnings}
    assert {"mode_collapse", "discriminator_overpowering", "generator_stalled"} <= kinds
    json.dumps(m.state())


def test_pairwise_distance_and_kid():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(5, 7))
    brute = np.mean([np.sqrt(np.mean((x[i] - x[j]) ** 2)) for i in range(5) for j in range(i + 1, 5)])
    assert monitors.mean_pairwise_distance(x) == pytest.approx(brute, rel=1e-9)
    a, b = rng.normal(size=(200, 4)), rng.normal(size=(200, 4))
    assert abs(monitors.kernel_inception_distance(a, b)) < 0.05
    assert monitors.kernel_inception_distance(a, b + 2.0) > 0.5


def _write_transformed(path, images, labels):
    with tf.io.TFRecordWriter(path, options="GZIP") as w:
        for img, lab in zip(images, labels):
            ex = tf.train.Example(features=tf.train.Features(feature={
                features.IMAGE_KEY: tf.train.Feature(float_list=tf.train.FloatList(value=img.ravel())),
                features.LABEL_KEY: tf.train.Feature(int64_list=tf.train.Int64List(value=[lab]))}))
            w.write(ex.SerializeToString())


def test_run_fn_with_real_transform_output(tmp_path):
    """run_fn on gzip TFRecords of real photos with a transform graph made by tft_beam."""
    tft = pytest.importorskip("tensorflow_transform")
    import tensorflow_transform.beam as tft_beam
    from tensorflow_transform.tf_metadata import dataset_metadata, schema_utils
    from tfx.components.trainer.fn_args_utils import FnArgs

    from trainer.run_fn import run_fn

    raw_spec = {"pixels": tf.io.FixedLenFeature(features.IMAGE_SHAPE, tf.float32),
                features.LABEL_KEY: tf.io.FixedLenFeature([], tf.int64)}

    def preprocessing_fn(inputs):
        return {features.IMAGE_KEY: inputs["pixels"] / 127.5 - 1.0,
                features.LABEL_KEY: inputs[features.LABEL_KEY]}

    u8 = features.to_uint8(_real_images(12))
    raw = [{"pixels": im.astype(np.float32), features.LABEL_KEY: i % 3} for i, im in enumerate(u8)]
    tft_dir = str(tmp_path / "transform_graph")
    with tft_beam.Context(temp_dir=str(tmp_path / "tft_tmp"), force_tf_compat_v1=False):
        meta = dataset_metadata.DatasetMetadata(schema_utils.schema_from_feature_spec(raw_spec))
        (transformed, _), transform_fn = (raw, meta) | tft_beam.AnalyzeAndTransformDataset(
            preprocessing_fn)
        _ = transform_fn | tft_beam.WriteTransformFn(tft_dir)
    split = tmp_path / "Split-train"
    split.mkdir()
    _write_transformed(str(split / "data.gz"), [t[features.IMAGE_KEY] for t in transformed],
                       [int(t[features.LABEL_KEY]) for t in transformed])
    spec = tft.TFTransformOutput(tft_dir).transformed_feature_spec()
    assert features.IMAGE_KEY in spec

    fn_args = FnArgs(train_files=[str(split / "*")], transform_output=tft_dir,
                     serving_model_dir=str(tmp_path / "serving"),
                     model_run_dir=str(tmp_path / "model_run" / "7"),
                     custom_config={"train": {"epochs": 2, "batch_size": 4, "sample_grid_size": 4,
                                              "kid_every_epochs": 1, "kid_num_samples": 8,
                                              "export_best": True}})
    run_fn(fn_args)
    summary = json.loads((tmp_path / "model_run" / "7" / "training_summary.json").read_text())
    assert summary["status"] == "complete" and summary["steps"] == 2 * (12 // 4)
    assert all("kid" in h for h in summary["history"])
    assert summary["exported_epoch"] == summary["best_epoch"]
    loaded = tf.saved_model.load(str(tmp_path / "serving"))
    out = loaded.signatures[features.GENERATE_SIGNATURE](count=tf.constant(2),
                                                         seed=tf.constant(1, tf.int64))
    assert out[features.IMAGES_OUTPUT].shape == (2,) + features.IMAGE_SHAPE


def test_trainer_reads_the_pipelines_train_section():
    """The section create_pipeline hands the Trainer decodes back to the same TrainConfig, a
    ``recipe`` key expands through from_recipe, and bad values are refused naming train.<field>."""
    from dcgan_common.config import EvalConfig, PipelineConfig
    from pipeline.pipeline import create_components
    from trainer.run_fn import train_config

    config = PipelineConfig(eval=EvalConfig(threshold=1.0),
                            train=TrainConfig.from_recipe("seed", epochs=3, batch_size=8))
    trainer = create_components(config)[3]
    custom = json.loads(trainer.exec_properties["custom_config"])
    assert set(custom) == {"train", "kid"}
    assert train_config(custom) == config.train
    assert train_config({"train": {"recipe": "wgan_gp", "epochs": 2}}) == \
        TrainConfig.from_recipe("wgan_gp", epochs=2)
    assert train_config({}) == TrainConfig()
    with pytest.raises(ConfigError, match="train.epochs must be int, got 2.5"):
        train_config({"train": {"epochs": 2.5}})
    with pytest.raises(ConfigError, match="train.epochs must be >= 1"):
        train_config({"train": {"epochs": 0}})
    with pytest.raises(ConfigError, match="train.recipe must be one of"):
        train_config({"train": {"recipe": "nope"}})


# --- Recipes, EMA, n_critic ---

def test_seed_recipe_is_the_blog_post():
    from dcgan_common.config import RECIPES, section_from_dict
    from trainer.train import build_gan
    seed = TrainConfig.from_recipe("seed")
    assert (seed.loss, seed.label_smoothing, seed.d_learning_rate, seed.g_learning_rate,
            seed.beta_1, seed.batch_size, seed.latent_dim) == ("bce", "uniform", 1e-4, 3e-4, 0.5, 32, 100)
    assert (seed.generator_batchnorm, seed.spectral_norm, seed.diffaugment, seed.ema_decay,
            seed.discriminator_norm, seed.separate_passes) == (False, False, "", 0.0, "batchnorm", False)
    gan = build_gan(seed)
    assert gan.generator.count_params() == 6_065_603
    assert gan.discriminator.count_params() == 243_329
    # From a config file: the recipe first, the fields beside it on top; the default is not seed.
    cfg = section_from_dict(TrainConfig, {"recipe": "seed", "epochs": 3, "ema_decay": 0.9})
    assert cfg.label_smoothing == "uniform" and cfg.epochs == 3 and cfg.ema_decay == 0.9
    assert TrainConfig().recipe == "data_efficient" and TrainConfig().ema_decay > 0
    assert set(RECIPES) == {"seed", "data_efficient", "wgan_gp"}
    for name in RECIPES:
        TrainConfig.from_recipe(name).validate()
    with pytest.raises(ConfigError, match="recipe"):
        TrainConfig.from_recipe("stylegan")
    with pytest.raises(ConfigError, match="wgan_gp needs"):
        TrainConfig.from_recipe("wgan_gp", discriminator_norm="batchnorm").validate()
    with pytest.raises(ConfigError, match="diffaugment"):
        TrainConfig(diffaugment="color,zoom").validate()
    with pytest.raises(ConfigError, match="ema_decay"):
        TrainConfig(ema_decay=1.0).validate()


def test_ema_update_rule():
    import keras
    from trainer.train import GeneratorEMA
    inp = keras.Input(shape=(2,))
    g = keras.Model(inp, keras.layers.Dense(1)(inp))
    avg = keras.models.clone_model(g)
    step = tf.Variable(0, dtype=tf.int64)
    ema = GeneratorEMA(g, avg, decay=0.999, step=step)
    w0 = [w.copy() for w in g.get_weights()]
    g.set_weights([w + 1.0 for w in w0])
    ema.update()                       # t = 0: decay warmed up to min(0.999, 1/10) = 0.1
    for a, w in zip(avg.get_weights(), w0):
        np.testing.assert_allclose(a, 0.1 * w + 0.9 * (w + 1.0), rtol=1e-6)
    step.assign(10_000)                # late: the configured decay
    before = avg.get_weights()
    g.set_weights([w + 2.0 for w in w0])
    ema.update()
    for a, b, w in zip(avg.get_weights(), before, w0):
        np.testing.assert_allclose(a, 0.999 * b + 0.001 * (w + 2.0), rtol=1e-6)


def test_ema_weights_differ_from_raw_and_are_exported(tmp_path):
    import keras
    from dcgan_common import features as F
    from trainer.model import build_generator
    cfg = TrainConfig.from_recipe("data_efficient", epochs=1, batch_size=4, steps_per_epoch=3,
                                  sample_grid_size=4, kid_every_epochs=0, export_best=False,
                                  ema_decay=0.9)
    summary = train(cfg, _ds(_real_images(12), 4), str(tmp_path / "run"), str(tmp_path / "serving"))
    assert summary["exported_weights"] == "ema"
    prefix = tf.train.latest_checkpoint(str(tmp_path / "run" / "checkpoints"))
    nets = {}
    for key in ("generator", "ema_generator"):
        keras.utils.set_random_seed(1)
        net = build_generator(batchnorm=True, weight_init="dcgan")
        tf.train.Checkpoint(**{key: net}).read(prefix).expect_partial()
        nets[key] = net
    noise = tf.random.stateless_normal([4, F.LATENT_DIM], seed=[3, 4])
    raw, ema = (nets[k](noise, training=False).numpy() for k in ("generator", "ema_generator"))
    assert np.max(np.abs(raw - ema)) > 1e-3                      # the average is not the weights
    served = tf.saved_model.load(str(tmp_path / "serving")).signatures[F.SERVING_SIGNATURE]
    out = served(**{F.NOISE_INPUT: noise})[F.IMAGES_OUTPUT].numpy()
    np.testing.assert_allclose(out, ema, atol=1e-5)              # ... and it is what is exported


def test_n_critic_updates_g_every_nth_batch(tmp_path):
    cfg = TrainConfig.from_recipe("wgan_gp", epochs=2, batch_size=4, steps_per_epoch=3,
                                  sample_grid_size=4, kid_every_epochs=0, export_best=False,
                                  n_critic=2, ema_decay=0.0)
    summary = train(cfg, _ds(_real_images(12), 4), str(tmp_path / "run"), None)
    assert summary["steps"] == 6                                 # every batch updates D
    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(str(tmp_path / "run" / "checkpoints")))
    names = reader.get_variable_to_shape_map()
    g_iter = [n for n in names if n.startswith("g_optimizer/_iterations")]
    assert g_iter and int(reader.get_tensor(g_iter[0])) == 3     # and every 2nd one G too


def test_export_best_picks_the_lowest_kid_epoch(tmp_path):
    """Pixel-feature KID every epoch; the exported epoch is the argmin of the recorded KIDs."""
    images = _real_images(16)
    cfg = TrainConfig.from_recipe("data_efficient", epochs=3, batch_size=4, steps_per_epoch=2,
                                  sample_grid_size=4, kid_every_epochs=1, kid_num_samples=8)
    summary = train(cfg, _ds(images, 4), str(tmp_path / "run"), str(tmp_path / "serving"),
                    kid_real_images=features.to_uint8(images))
    kids = [h["kid"] for h in summary["history"]]
    assert len(kids) == 3 and all("kid_seconds" in h for h in summary["history"])
    assert summary["exported_epoch"] == int(np.argmin(kids)) + 1
    assert summary["best_kid"] == pytest.approx(min(kids))
    # Called again on the finished run dir: nothing to train, the same best epoch is exported and
    # reported (from the checkpointed best-KID variables, not from this call's epochs).
    again = train(cfg, _ds(images, 4), str(tmp_path / "run"), str(tmp_path / "serving2"),
                  kid_real_images=features.to_uint8(images))
    assert again["exported_epoch"] == summary["exported_epoch"]
    assert again["best_kid"] == pytest.approx(min(kids))
    assert again["best_epoch"] == summary["exported_epoch"]


@pytest.mark.slow
def test_in_training_kid_uses_the_evaluators_inception_and_cache(tmp_path):
    """run_fn's KID inputs: the standard Inception pool_3 features of the real examples, written to
    (and then found in) the cache the FidEvaluator reads; nothing loads when no check is due."""
    from test_fid_component import _sample_images, write_transformed_examples

    from dcgan_common.fid import real_stats
    from dcgan_common.fid.inception import InceptionExtractor
    from trainer.run_fn import kid_inputs
    examples = str(tmp_path / "transformed_examples")
    images = _sample_images(12)
    write_transformed_examples(examples, images)
    train_files = [os.path.join(examples, "Split-train", "*")]
    kid = {"cache_dir": str(tmp_path / "cache"), "splits": ["train", "eval"], "max_real": 0}
    late = TrainConfig(epochs=4, kid_every_epochs=5)
    assert kid_inputs(late, train_files, kid) == {}               # no check within 4 epochs
    out = kid_inputs(TrainConfig(epochs=5, kid_every_epochs=5), train_files, kid)
    assert out["kid_features_name"] == "inception_pool3"
    assert out["kid_real_features"].shape == (12, 2048)
    extractor = out["kid_feature_fn"]
    assert isinstance(extractor, InceptionExtractor)
    # Files are read in path order: Split-eval (the last 3 images) before Split-train.
    np.testing.assert_allclose(out["kid_real_features"][:3], extractor(images[9:]), atol=1e-3)
    # The evaluator's call with the same examples, splits and extractor finds the cache.
    stats, cached, *_ = real_stats.real_feature_stats(examples, ["train", "eval"], extractor, 0,
                                                      kid["cache_dir"])
    assert cached and stats.count == 12
