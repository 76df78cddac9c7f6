.PHONY: test demo lint unit image control-plane-up control-plane-down bench clean

test:            ## everything: deps, control plane, ruff, mypy, unit + integration + e2e
	bash hack/test.sh

demo:            ## the local demo: control plane, operator, a canary that promotes and one that rolls back
	bash hack/demo.sh

lint:
	bash hack/ensure-deps.sh && .venv/bin/ruff check . && .venv/bin/mypy

unit:
	bash hack/ensure-deps.sh && .venv/bin/pytest tests/unit

image:           ## the container image without Docker (buildah on Debian's packages), cached by input hash
	bash hack/ensure-deps.sh && bash hack/build-image.sh

control-plane-up:
	bash hack/ensure-deps.sh && hack/control-plane.sh up

control-plane-down:
	hack/control-plane.sh down

bench:
	bash hack/ensure-deps.sh && bash bench/run

clean:
	hack/control-plane.sh down || true
	rm -rf .venv .pytest_cache .mypy_cache .ruff_cache
