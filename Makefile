# Two commands do all the set-up: `make demo` and `make test` (see README).
# Both build the environment on first use (scripts/setup-env) and run inside it (scripts/in-env).
IN_ENV := scripts/in-env
ARGS ?=
# The demo: a smoke-sized run on the bundled 300 photos (the pipeline's own default is 50 epochs).
# Its FID comes from a few hundred samples, so it is large and biased upwards; the threshold is set
# only so that the run shows a number and a decision (README: "Setting a real FID threshold").
DEMO_FLAGS ?= --epochs 10 --num-fid-samples 300 --fid-threshold 400

.PHONY: env demo test test-fast bench lock clean

env:
	scripts/setup-env

demo:
	$(IN_ENV) dcgan-tfx run $(DEMO_FLAGS) $(ARGS)

# The whole suite, including the slow end-to-end pipeline test (what CI runs).
test:
	scripts/setup-env --test
	$(IN_ENV) python -m pytest tests $(ARGS)

# Everything but the tests marked slow.
test-fast:
	scripts/setup-env --test
	$(IN_ENV) python -m pytest tests -m "not slow" $(ARGS)

bench:
	$(IN_ENV) python benchmarks/data_path.py
	$(IN_ENV) python benchmarks/train_step.py
	$(IN_ENV) python benchmarks/fid.py
	DEMO_ARGS="$(DEMO_FLAGS)" $(IN_ENV) python benchmarks/demo.py

# Re-resolve requirements.in into the lock file (uv resolves the TFX stack in seconds).
lock:
	$(IN_ENV) uv pip compile --universal --python-version 3.11 requirements.in -o requirements.lock

clean:
	rm -rf out .pytest_cache
