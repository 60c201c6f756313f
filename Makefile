# Makefile — a thin wrapper over CMake: make, make demo, make test, make deps, make bench.
BUILD ?= build
JOBS  ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_FLAGS ?=

.PHONY: all build deps test demo bench clean

all: build

deps:
	@sh tools/install-deps.sh

$(BUILD)/Makefile: CMakeLists.txt
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS)

build: $(BUILD)/Makefile
	cmake --build $(BUILD) -j $(JOBS)

test: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVIGIL_WERROR=ON $(CMAKE_FLAGS)
	cmake --build $(BUILD) -j $(JOBS)
	@cd $(BUILD) && { ctest --output-on-failure -j $(JOBS); rc=$$?; \
	  grep -h '^SKIP: ' Testing/Temporary/LastTest.log 2>/dev/null || true; exit $$rc; }

demo: deps build
	@sh tools/demo.sh $(BUILD)

bench: deps build
	@sh tools/install-deps.sh --bench
	@/usr/bin/python3 tests/bench/run

clean:
	rm -rf $(BUILD)

# libFuzzer (tests/fuzz): builds the harnesses with clang in $(FUZZ_BUILD) and runs each for FUZZ_SECONDS on its
# corpus; FUZZ=name,... picks harnesses, FUZZ_MERGE=1 merges what they found into the corpora. make test replays them.
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 60
.PHONY: fuzz
fuzz: deps
	@sh tools/install-deps.sh --fuzz
	@FUZZ_SECONDS=$(FUZZ_SECONDS) JOBS=$(JOBS) sh tests/fuzz/run.sh $(FUZZ_BUILD)

# The detection-quality harness (tests/quality): the stock rules against generated scenes with exact truth and
# the real clips in ../shared/media (or VIGIL_MEDIA) when present; rewrites the scorecard docs/quality.md.
.PHONY: quality
quality: deps build
	VIGIL=$(abspath $(BUILD))/vigil VIGIL_BUILD=$(abspath $(BUILD)) /usr/bin/python3 tests/quality/run.py --write docs/quality.md
