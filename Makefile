# Two commands for a fresh clone: `make release` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
UV     := $(VENV)/bin/uv
STAMP  := $(VENV)/.installed
RAW    ?= raw
OUT    ?= releases

export PREFECT_HOME ?= $(CURDIR)/.prefect
export PREFECT_SERVER_ANALYTICS_ENABLED ?= false
export PREFECT_LOGGING_LEVEL ?= WARNING

.PHONY: setup release test docs bench bench-1g bench-dup lock clean

setup: $(STAMP)

$(STAMP): pyproject.toml requirements.lock overrides.txt setup.py $(wildcard src/corpuspipe/stages/dedup/*.pyx src/corpuspipe/stages/dedup/*.h)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check "uv==0.13.9"
	$(UV) pip sync --quiet --compile-bytecode --python $(PY) requirements.lock
	$(UV) pip install --quiet --python $(PY) --no-deps -e .
	touch $(STAMP)

release: $(STAMP)
	$(VENV)/bin/corpuspipe release $(RAW) --out $(OUT)

test: $(STAMP)
	$(PY) -m pytest -q

# The docs site: regenerate the reference pages from the code, then build site/ (open site/index.html).
docs: $(STAMP)
	$(PY) -m corpuspipe.docgen
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict  # not --quiet: it hides the warnings that --strict counts

# Crawl-shaped corpus (bench/make_crawl.py, generated once; corpus.json is written last) through
# the real CLI (bench/run_crawl.py). BENCH_ARGS=--rerun also times an unchanged second run.
# The peer, datatrove's MinHash dedup, runs beside the release in the same bench run, in its own
# interpreter (it is never a corpuspipe dependency; see bench/peer_datatrove.py for the pins).
BENCH_ARGS ?=
PEER := bench/out/dt-venv/bin/python
$(PEER):
	$(PYTHON) -m venv bench/out/dt-venv
	bench/out/dt-venv/bin/pip install --quiet --disable-pip-version-check datatrove==0.10.1 regex tokenizers orjson "xxhash<4"

bench: $(STAMP) $(PEER)
	test -f bench/out/crawl100/corpus.json || $(PY) bench/make_crawl.py --mb 100 --out bench/out/crawl100 --seed 1
	$(PY) bench/run_crawl.py bench/out/crawl100 $(BENCH_ARGS)

bench-1g: $(STAMP) $(PEER)
	test -f bench/out/crawl1000/corpus.json || $(PY) bench/make_crawl.py --mb 1000 --out bench/out/crawl1000 --seed 1
	$(PY) bench/run_crawl.py bench/out/crawl1000 $(BENCH_ARGS)

# Dup-heavy: 50 MB where every essay comes with 80-120 near copies (the dedup reduce's worst case).
bench-dup: $(STAMP) $(PEER)
	test -f bench/out/dupheavy50/corpus.json || $(PY) bench/make_crawl.py --mb 50 --dup-heavy --out bench/out/dupheavy50 --seed 1
	$(PY) bench/run_crawl.py bench/out/dupheavy50 $(BENCH_ARGS)

# Re-resolve pinned versions after changing dependencies in pyproject.toml.
lock:
	$(UV) pip compile --quiet pyproject.toml --extra test --override overrides.txt --python-version 3.11 -o requirements.lock

clean:
	rm -rf $(VENV) .prefect releases .pytest_cache site
