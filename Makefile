# The course's commands. `make course` runs every lesson; `make test` runs the checks CI runs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# tinygrad's CPU runtime runs each kernel in one thread, so two test workers use both cores.
WORKERS ?= 2

.PHONY: setup course test test-browser test-colab lab bench tune gpu-wheels gpu-check mutation clean

setup: $(STAMP)

# clang first (tinygrad's CPU device compiles kernels with it), then the pinned packages.
$(STAMP): requirements.txt pyproject.toml
	@command -v clang >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing clang with apt-get"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clang >/dev/null; \
	  else \
	    echo "clang is missing. help: sudo apt-get install -y clang (macOS: xcode-select --install)"; exit 1; \
	  fi; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements.txt
	$(BIN)/python -m pip install -q --no-deps -e .
	touch $(STAMP)

course: setup
	$(BIN)/python notebooks/run_course.py --out build

test: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	COURSE_QUICK=1 $(BIN)/python -m pytest -n $(WORKERS) --dist loadscope --durations=20 \
	  --nbval --nbval-sanitize-with tests/nbval_sanitize.cfg --nbval-cell-timeout=900 \
	  tests notebooks

# JupyterLab in headless Chromium (Debian's, driven by Playwright): lessons 00, 04 and 11 run in a
# real browser; screenshots go to build/browser/.
BROWSER_STAMP := $(VENV)/.browser-installed
test-browser: setup $(BROWSER_STAMP)
	COURSE_BROWSER=1 COURSE_QUICK=1 $(BIN)/python -m pytest -v -p no:cacheprovider tests/browser

$(BROWSER_STAMP): requirements-browser.txt $(STAMP)
	@command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing chromium with apt-get"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	      chromium chromium-driver >/dev/null; \
	  else \
	    echo "chromium is missing. help: sudo apt-get install -y chromium chromium-driver"; exit 1; \
	  fi; }
	$(BIN)/python -m pip install -q -r requirements-browser.txt
	touch $(BROWSER_STAMP)

# Every lesson (short run) in a fresh Python 3.12 with Colab's preinstalled versions
# (requirements-colab.txt), the course installed from this clone the way the set-up cell does.
# Set PY312 to choose the interpreter; without a Python 3.12 the check is skipped with a message.
COLAB_ENV := build/colab
test-colab: setup
	@py="$$($(BIN)/python tests/colab/make_env.py --find)" || exit 1; \
	if [ -z "$$py" ]; then \
	  echo "test-colab skipped: no Python 3.12 here. help: install one, or make test-colab PY312=/path/to/python3.12"; \
	else \
	  $(BIN)/python tests/colab/make_env.py --python "$$py" --env $(COLAB_ENV) && \
	  COURSE_COLAB_ENV=$(COLAB_ENV) COURSE_QUICK=1 $(BIN)/python -m pytest -v -p no:cacheprovider \
	    --durations=20 -n $(WORKERS) tests/colab; \
	fi

# Every mutant of every checker's reference must be refused (tests/mutation.py): prints one table,
# checker by checker, and the survivors. Long (minutes per training checker); CI runs a sample.
mutation: setup
	$(BIN)/python tests/mutation.py

lab: setup
	$(BIN)/jupyter lab notebooks/

bench: setup
	@for bench in benchmarks/bench_*.py; do echo "== $$bench"; $(BIN)/python $$bench || exit 1; done

# The course on an NVIDIA GPU (benchmarks/gpu_check.py): the device, unit tests, six lessons and the
# benchmark beside PyTorch CUDA, reported in $(GPU_OUT)/gpu_check.md. It uses the machine's own
# python3 (with PyTorch) and installs requirements-gpu.txt from $(GPU_WHEELS) into build/gpu-site/ (its
# own packages untouched) when that folder exists;
# `make gpu-wheels`, run where there is network, fills it with Python $(GPU_PYTHON) wheels. A dry run
# on the CPU: make gpu-check GPU_CHECK_ARGS="--tests-s 900 --lessons-s 600" with DEV=CPU.
GPU_OUT    ?= build/gpu-check
GPU_WHEELS ?= build/gpu-wheels
GPU_PYTHON ?= 3.12
GPU_CHECK_ARGS ?=
gpu-wheels:
	$(PYTHON) -m pip download -q --only-binary=:all: --python-version $(GPU_PYTHON) \
	  --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
	  --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d $(GPU_WHEELS) -r requirements-gpu.txt

gpu-check:
	@if [ -d $(GPU_WHEELS) ]; then \
	  python3 -m pip install -q --no-index --find-links $(GPU_WHEELS) --target build/gpu-site \
	    --upgrade -r requirements-gpu.txt || exit 1; \
	fi
	PYTHONPATH=$(CURDIR)/build/gpu-site:$(CURDIR) python3 benchmarks/gpu_check.py --out $(GPU_OUT) $(GPU_CHECK_ARGS)

# Optional: search tinygrad's kernel choices (BEAM) for MiniGPT again and merge them into
# minigpt/tuned_kernels.json, for other shapes or another CPU (see minigpt/tuning_search.py). The
# default arguments are those the shipped table was made with (about 25 minutes on 2 cores, best on
# a quiet machine): BEAM=2 on the baby GPT's training kernels with the candidates timed on two
# threads, then each kernel's fastest choice inside the step, of the table before and the search's,
# each with and without a THREAD split. Example for other shapes: make tune TUNE_ARGS="--vocab 65"
TUNE_ARGS ?= --vocab 100 --beam 2 --threads 2 --no-sampling --keep-faster-in-step
tune: setup
	$(BIN)/python -m minigpt.tuning_search $(TUNE_ARGS)

clean:
	rm -rf build .pytest_cache
