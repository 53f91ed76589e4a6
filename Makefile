# Two commands do all the set-up on a fresh Debian machine: `make demo` and `make test`.
# Every target is idempotent: it installs only what is missing.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
RUNTIME_DEBS := espeak-ng libportaudio2 ffmpeg
TEST_DEBS    := $(RUNTIME_DEBS) pulseaudio pulseaudio-utils libasound2-plugins alsa-utils asterisk-core-sounds-en-g722
# The rest of the VAD benchmark's corpus of real speech (bench/CORPUS.md), and TEN VAD's runtime.
BENCH_DEBS   := asterisk-core-sounds-fr-g722 asterisk-core-sounds-it-g722 asterisk-core-sounds-es-g722 \
                asterisk-core-sounds-ru-g722 codec2-examples libc++1

.PHONY: demo test lint venv system-deps test-deps assets bench clean

demo: system-deps $(STAMP)
	@tools/demo.sh

test: test-deps $(STAMP)
	tools/run-tests.sh

# Style and types only: needs the venv, not the audio stack.
lint: $(STAMP)
	$(BIN)/ruff check voice_guide tests bench tools
	$(BIN)/ruff format --check voice_guide tests bench tools
	$(BIN)/mypy

system-deps:
	@tools/system-deps.sh $(RUNTIME_DEBS)

test-deps:
	@tools/system-deps.sh $(TEST_DEBS) python3-venv

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev,neural]'
	@touch $@

assets: $(STAMP)
	$(BIN)/python -m voice_guide.sound.assets audio_assets

bench: test-deps $(STAMP)
	@tools/system-deps.sh $(BENCH_DEBS)
	$(BIN)/pip install -q -e '.[dev,bench]'
	tools/run-bench.sh

clean:
	rm -rf $(VENV) .pulse .pytest_cache .mypy_cache .ruff_cache demo.wav build dist
