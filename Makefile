# sagastream: the two commands a newcomer needs are `make demo` and `make test`.
# Both install what is missing (a Python venv with the local broker under
# .local/), start the broker unless KAFKA_BOOTSTRAP_SERVERS points at a
# cluster, and stop what they started.

export CARGO_BUILD_JOBS ?= 2

.PHONY: demo test bench lint fmt build broker-start broker-stop clean

## Run the pipeline on generated traffic against a local broker, print a summary, stop.
demo:
	scripts/demo.sh

## Install and start what the tests need, then run lint, the whole suite and a demo smoke run.
test:
	scripts/test.sh

## The escrow saga beside Kafka Streams, Quix Streams and the copy-loop ceiling, on a fresh local broker; then its latency under load.
bench:
	scripts/bench.sh

## rustfmt and clippy, as CI runs them.
lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --locked -- -D warnings
	cargo clippy -p sagastream-runtime -p sagastream-probe -p sagastream-ingest --features test-hooks --all-targets --locked -- -D warnings

fmt:
	cargo fmt --all

build:
	cargo build --workspace --locked

broker-start:
	scripts/broker.sh start

broker-stop:
	scripts/broker.sh stop

## Stop the broker and remove build output and the venv.
clean: broker-stop
	cargo clean
	rm -rf .local
