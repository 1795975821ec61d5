# napari-virtual-aperture — all set-up goes through this file.
#   make demo    create .venv, install, run the main job headless on the built-in sample
#   make test    install the Debian packages GUI tests need (when missing), create .venv, run pytest
#                (everything: slow and GUI tests too; this is what CI runs)
#   make test-fast  the quick loop while developing: no `slow`, no `gui` tests
#   make lint    ruff check, ruff format --check, mypy (model/, io/, compute/)
#   make docs    build the documentation site (mkdocs, strict) into site/
#   make napari  open napari with the plugin and the built-in sample loaded
#   make bench   run the benchmarks (prints ratios measured in the same run)

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

.PHONY: demo test test-fast lint docs napari bench install system-deps constraints clean screenshots

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

demo: install
	$(VENV)/bin/virtual-aperture demo --out $(DEMO_OUT)

napari: system-deps install
	$(PY) -m virtual_aperture._napari.launch

bench: install
	$(PY) benchmarks/run.py

screenshots: system-deps install
	for s in docs/make_*screenshot*.py; do \
		xvfb-run -a -s "-screen 0 1600x1000x24" $(PY) $$s || exit 1; \
	done

constraints:
	$(PIP) freeze --exclude-editable | grep -v -i napari-virtual-aperture > constraints.txt

clean:
	rm -rf $(VENV) $(DEMO_OUT) .pytest_cache .mypy_cache .ruff_cache build dist site
