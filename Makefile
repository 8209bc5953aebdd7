# The two commands a new user needs: `make train` and `make test`.
# Both install the OpenCL pieces they lack first (scripts/setup.sh).
GO ?= go
BIN := ./mnist-cl
TRAINFLAGS ?=
# How long each fuzz target runs in `make test` (CI): a count of inputs per
# target (package:target:count), 2-8 s each on a 2-core machine. A
# count, not a duration: with a duration, Go's fuzzing coordinator can fail a
# run with a bare "context deadline exceeded" when its deadline passes while
# a worker is busy (golang/go#75804; seen here in CI-like runs under load),
# and a count has no deadline to race. `make fuzz FUZZTIME=5m` fuzzes each
# target for a duration instead.
FUZZTIME ?=
FUZZ := ./mnist:FuzzReadImages:8000x ./mnist:FuzzReadLabels:40000x \
	./internal/safetensors:FuzzRead:400000x ./internal/digit:FuzzDecode:300000x

.PHONY: setup build train test race fuzz verify bench clean

setup:
	@bash scripts/setup.sh

build: setup
	$(GO) build -o $(BIN) ./cmd/mnist-cl

train: build
	$(BIN) train $(TRAINFLAGS)

verify: build
	$(BIN) verify

test:
	@bash scripts/setup.sh test
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 15m ./...
	$(MAKE) --no-print-directory race
	$(MAKE) --no-print-directory fuzz

# The packages whose host code runs goroutines (fetch deadlines, signals).
race:
	$(GO) test -race -count=1 -timeout 10m ./mnist ./internal/atomicfile ./internal/safetensors ./internal/digit

fuzz:
	@for t in $(FUZZ); do \
		pkg=$${t%%:*}; rest=$${t#*:}; fn=$${rest%%:*}; budget=$${FUZZTIME:-$${rest#*:}}; \
		echo "fuzz $$fn in $$pkg for $$budget"; \
		$(GO) test -run '^$$' -fuzz "^$$fn\$$" -fuzztime $$budget $$pkg || exit 1; \
	done

bench: setup
	$(GO) test -run '^$$' -bench . -benchtime 20x ./nn ./kernels

clean:
	rm -f $(BIN)
