# Two commands set everything up on a fresh Debian bookworm machine:
#   make demo   installs what is needed, builds, and ingests real data from Debian packages
#   make test   installs, builds, and runs the tests (make test-fast: those that need no downloaded data)
SHELL := /bin/bash
SWIFT ?= swift
BUILD_FLAGS ?=
RELEASE = .build/release/medcat
DEMO = .deps/demo

.PHONY: all setup build release test test-fast demo bench gpu-bundle clean manifests

all: build

setup:
	./tools/setup.sh

manifests:
	python3 tools/embed-manifests.py

build: setup manifests
	$(SWIFT) build $(BUILD_FLAGS)

release: setup manifests
	$(SWIFT) build -c release $(BUILD_FLAGS)

# The suites are XCTest; the closing line sums them up ("tests: N passed, N failed"). test-fast
# leaves out the tests that read the real data in .deps/data (see docs/testing.md).
test: setup manifests
	$(SWIFT) build --build-tests $(BUILD_FLAGS)
	set -o pipefail; $(SWIFT) test --skip-build --disable-swift-testing $(TEST_SELECTION) $(BUILD_FLAGS) 2>&1 | tee .build/test.log
	@awk '/^Test Case .* passed/ {p++} /^Test Case .* failed/ {f++} END {printf "tests: %d passed, %d failed\n", p, f}' .build/test.log

test-fast: TEST_SELECTION = --skip RealData
test-fast: test

# Ingests real data (Colin27 + AAL, ITK's examples, fundus photographs), prints and exports the
# catalog, fine-tunes LiteMedSAM and compares the models in a leaderboard (tools/demo.sh).
demo: release
	./tools/demo.sh $(RELEASE)

bench: release
	./bench/run.sh $(RELEASE)

# What tools/gpu-check.sh runs on a GPU machine without Swift: .build/gpu-bundle.
gpu-bundle: setup
	./tools/gpu-bundle.sh

clean:
	rm -rf .build $(DEMO)
