# Two entry points: `make demo` and `make test`. Both create .venv from the project's own files when needed.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: demo test lint bench clean-venv

$(STAMP): constraints.txt requirements-dev.txt $(wildcard packages/*/pyproject.toml)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps -e ./packages/core
	@touch $(STAMP)

# Each demo resumes its own run directory, so running `make demo` again continues instead of failing.
demo: $(STAMP)
	$(VENV)/bin/gencore demo --output-dir runs/gencore-demo --resume auto
	$(VENV)/bin/dcgan-tutorial train --output-dir runs/dcgan-tutorial-demo --max-steps 600 --resume auto \
		--set train.sample_every=200 --set train.eval_every=200 --set train.checkpoint_every=200
	$(VENV)/bin/dcgan-tutorial collapse-demo --output-dir runs/dcgan-collapse-demo --steps 1000
	$(VENV)/bin/hvae-captcha train --output-dir runs/hvae-captcha-demo --max-steps 400 --resume auto \
		--set data.num_images=2048 --set train.sample_every=200 --set train.eval_every=400
	$(VENV)/bin/hvae-captcha sample runs/hvae-captcha-demo -n 16 -o runs/hvae-captcha-demo/samples.png
	$(VENV)/bin/m1-hyperspectral train --output-dir runs/m1-hyperspectral-demo --max-steps 1500 --patience 20 \
		--resume auto
	$(VENV)/bin/m1-hyperspectral classify runs/m1-hyperspectral-demo --labels-per-class 5,10,50 --repeats 3
	$(VENV)/bin/vqgan-negatives train-vqgan --output-dir runs/vqgan-negatives-demo/vqgan --max-steps 400 --resume auto \
		--set data.num_images=800 --set loss.disc_start=250 --set train.sample_every=200 --set train.eval_every=200 \
		--set train.checkpoint_every=200
	$(VENV)/bin/vqgan-negatives train-transformer --vqgan runs/vqgan-negatives-demo/vqgan --max-steps 300 \
		--output-dir runs/vqgan-negatives-demo/transformer --resume auto --set data.num_images=800 \
		--set train.sample_every=300 --set train.eval_every=300 --set train.checkpoint_every=300
	$(VENV)/bin/vqgan-negatives make-negatives runs/vqgan-negatives-demo/transformer -n 64 \
		-o runs/vqgan-negatives-demo/synthetic_dataset --overwrite
	$(VENV)/bin/vqgan-negatives classifier-study --negatives runs/vqgan-negatives-demo/synthetic_dataset --seeds 0 \
		--n-train 400 --n-test 200 --steps 150 -o runs/vqgan-negatives-demo/study
	$(VENV)/bin/ganwriting-music train auto --preset cpu --epochs 10 --output-dir runs/ganwriting-music-demo
	$(VENV)/bin/ganwriting-music generate runs/ganwriting-music-demo --class all --style-from font:Petaluma -n 40 \
		-o runs/ganwriting-music-demo/petaluma.png
	$(VENV)/bin/ganwriting-music evaluate runs/ganwriting-music-demo --classifier-steps 400
	$(VENV)/bin/ganwriting-music classifier-study runs/ganwriting-music-demo --steps 400
	@echo "demo outputs: runs/gencore-demo, runs/dcgan-tutorial-demo, runs/dcgan-collapse-demo," \
		"runs/hvae-captcha-demo, runs/m1-hyperspectral-demo, runs/vqgan-negatives-demo, runs/ganwriting-music-demo" \
		"(samples/*.png, losses.png, collapse.png, classify.json, synthetic_dataset/, study/study.json)"

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check packages tests benchmarks

bench: $(STAMP)
	$(PY) benchmarks/trainer_overhead.py
	$(PY) benchmarks/perlin.py

clean-venv:
	rm -rf $(VENV)
