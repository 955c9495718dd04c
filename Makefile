# The course's commands. `make course` runs every lesson; `make test` runs the checks CI runs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# tinygrad runs each kernel on one core, so two test workers use both cores of a small machine.
WORKERS ?= 2

.PHONY: setup course test lab bench tune clean

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

lab: setup
	$(BIN)/jupyter lab notebooks/

bench: setup
	@for bench in benchmarks/bench_*.py; do echo "== $$bench"; $(BIN)/python $$bench || exit 1; done

# Optional: search tinygrad's kernel choices (BEAM) for MiniGPT again and merge them into
# minigpt/tuned_kernels.json, for other shapes or another CPU (minutes; see minigpt/tuning_search.py).
# Example: make tune TUNE_ARGS="--vocab 65 --batch-size 32"
tune: setup
	$(BIN)/python -m minigpt.tuning_search $(TUNE_ARGS)

clean:
	rm -rf build .pytest_cache
