# The two commands a new user needs: `make train` and `make test`.
# Both install the OpenCL pieces they lack first (scripts/setup.sh).
GO ?= go
BIN := ./mnist-cl
TRAINFLAGS ?=

.PHONY: setup build train test verify bench clean

setup:
	@bash scripts/setup.sh

build: setup
	$(GO) build -o $(BIN) ./cmd/mnist-cl

train: build
	$(BIN) train $(TRAINFLAGS)

verify: build
	$(BIN) verify

test: setup
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 15m ./...

bench: setup
	$(GO) test -run '^$$' -bench . -benchtime 20x ./nn ./kernels

clean:
	rm -f $(BIN)
