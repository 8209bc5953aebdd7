# The two commands a new user needs: `make train` and `make test`.
# Both install the OpenCL pieces they lack first (scripts/setup.sh).
GO ?= go
BIN := ./mnist-cl
TRAINFLAGS ?=
# How long each fuzz target runs in `make test` (CI); `make fuzz` runs longer.
FUZZTIME ?= 10s
FUZZ := ./mnist:FuzzReadImages ./mnist:FuzzReadLabels ./internal/safetensors:FuzzRead ./internal/digit:FuzzDecode

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
		pkg=$${t%%:*}; fn=$${t##*:}; \
		echo "fuzz $$fn in $$pkg for $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	done

bench: setup
	$(GO) test -run '^$$' -bench . -benchtime 20x ./nn ./kernels

clean:
	rm -f $(BIN)
