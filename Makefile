# napari-virtual-aperture — all set-up goes through this file.
#   make demo    create .venv, install, run the main job headless on the built-in sample
#   make test    install the Debian packages GUI tests need (when missing), create .venv, run pytest
#                (everything: slow and GUI tests too; this is what CI runs)
#   make test-fast  the quick loop while developing: no `slow`, no `gui` tests
#   make lint    ruff check, ruff format --check, mypy (model/, io/, compute/)
#   make docs    build the documentation site (mkdocs, strict) into site/
#   make napari  open napari with the plugin and the built-in sample loaded
#   make bench   run the benchmarks (prints ratios measured in the same run)
#   make test-min  the fast non-GUI tests in .venv-min, with the LOWEST version of every declared
#                dependency (core + hdf5 + distributed extras + test tools): proves pyproject's ranges

SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
PYTEST_ARGS ?=
DEMO_OUT ?= demo_output
export QT_API ?= pyqt6

APT_PKGS := xvfb xauth libgl1-mesa-dri libegl1 libxkbcommon-x11-0 libxcb-cursor0 libxcb-icccm4 \
	libxcb-image0 libxcb-keysyms1 libxcb-randr0 libxcb-render-util0 libxcb-shape0 \
	libxcb-xinerama0 libxcb-xfixes0 libdbus-1-3 libfontconfig1

.PHONY: demo test test-fast test-min lint docs napari bench install system-deps constraints clean screenshots

VENV_MIN ?= .venv-min
MIN_EXTRAS := hdf5 distributed
MIN_ALSO := pytest pytest-timeout hyperspy
MIN_TESTS ?= tests/test_io_formats.py tests/test_io_errors.py tests/test_io_lazy.py tests/test_io_tilt_store.py \
	tests/test_io_real_files.py tests/test_compute_exec.py tests/test_compute_sums.py \
	tests/test_compute_cli_detectors.py tests/test_model.py

$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -c constraints.txt -e ".[all,test,dev]"
	touch $@

install: $(VENV)/.installed

system-deps:
	@missing=""; for p in $(APT_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

test: system-deps install
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: install
	$(PY) -m pytest -m "not slow and not gui" $(PYTEST_ARGS)

lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

docs: install
	$(PY) -m mkdocs build --strict

# uv's lowest-direct resolution installs, for each requirement as declared, the lowest release that
# exists and resolves (a bound naming no release, e.g. tifffile>=2024.1, gets 2024.1.30); the
# --check step then fails if any installed version is not the declared lower bound's release.
test-min:
	test -x $(VENV_MIN)/bin/python || $(PYTHON) -m venv $(VENV_MIN)
	$(VENV_MIN)/bin/pip install -q --upgrade uv
	$(PYTHON) .ci/min_versions.py $(MIN_EXTRAS) --also $(MIN_ALSO) > $(VENV_MIN)/requirements-min.txt
	$(VENV_MIN)/bin/uv pip install -q --python $(VENV_MIN)/bin/python --resolution lowest-direct \
		-r $(VENV_MIN)/requirements-min.txt
	$(VENV_MIN)/bin/uv pip install -q --python $(VENV_MIN)/bin/python --no-deps -e .
	$(VENV_MIN)/bin/python .ci/min_versions.py $(MIN_EXTRAS) --also $(MIN_ALSO) --check
	$(VENV_MIN)/bin/python -m pytest -m "not gui and not slow" $(PYTEST_ARGS) $(MIN_TESTS)

demo: install
	$(VENV)/bin/virtual-aperture demo --out $(DEMO_OUT)

napari: system-deps install
	$(PY) -m virtual_aperture._napari.launch

bench: install
	$(PY) benchmarks/run.py

# the napari widgets under Xvfb; the report page (headless Chromium) from the demo's report when present
screenshots: system-deps install
	for s in docs/make_screenshots.py docs/make_grains_screenshots.py docs/make_indexing_screenshots.py \
		docs/make_solve_screenshot.py; do \
		xvfb-run -a -s "-screen 0 1600x1000x24" $(PY) $$s || exit 1; \
	done
	if [ -f $(DEMO_OUT)/grain_2/report.html ]; then $(PY) docs/make_report_screenshot.py $(DEMO_OUT)/grain_2/report.html; fi

constraints:
	$(PIP) freeze --exclude-editable | grep -v -i napari-virtual-aperture > constraints.txt

clean:
	rm -rf $(VENV) $(VENV_MIN) $(DEMO_OUT) .pytest_cache .mypy_cache .ruff_cache build dist site
