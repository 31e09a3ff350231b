# Two commands to start: `make serve` and `make test`. Everything else builds on them.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
LISTEN ?=
ACCESS_KEYS ?=
SMTP ?=
TSIG_KEYS ?=

.PHONY: help venv test typecheck lint format docs validate compile serve web publish plan hooks bench-compile bench-serve bench-email bench-publish bench-ixfr bench-import bench-web bench-spf clean fuzz soak

help:
	@echo "make serve          serve zones/ on 127.0.0.1:5353 and [::1]:5353: what is published, else lists/ compiled"
	@echo "                    LISTEN='127.0.0.1:5354 [::1]:5354' to listen elsewhere (port taken: ss -lunp 'sport = :5353')"
	@echo "                    ACCESS_KEYS=FILE for keyed zones, TSIG_KEYS=FILE for signed transfers (files outside git)"
	@echo "make web            the lookup page and JSON API on http://127.0.0.1:8080 of what zones/ holds"
	@echo "                    elsewhere: LISTEN of one address, e.g. 127.0.0.1:8081 or [::1]:8081 (two are refused)"
	@echo "                    SMTP=127.0.0.1:25, a mail relay (IP address and port), to take delisting and allowlisting requests"
	@echo "                    like serve: what publish made, else lists/ compiled first (make web on a fresh clone works)"
	@echo "make test           lint, type-check and run the whole test suite (creates .venv on first use)"
	@echo "make format         reformat the code and apply the linter's safe fixes (ruff)"
	@echo "make docs           rewrite the generated parts of README.md and docs/clients.md (error codes, keyed snippets)"
	@echo "make validate       check lists/ and print located problems"
	@echo "make compile        compile lists/ (work tree) into zones/, never over a publish (OUT=dir elsewhere)"
	@echo "make plan           what a publish of HEAD would change (COMMIT=rev to pick another)"
	@echo "make publish        publish the committed lists (COMMIT=rev, FORCE=1 past guard rails)"
	@echo "make hooks          install the git pre-commit hook that validates staged lists"
	@echo "make bench-compile  1M-entry compile benchmark -> bench/results/compile.md"
	@echo "make bench-serve    dnsperf against our server and rbldnsd -> bench/results/serve.md, then bench-email"
	@echo "make bench-email    a 1M-address email zone: compile, memory, hashed queries vs IP and rbldnsd -> bench/results/email.md"
	@echo "make bench-publish  a one-line change to a 1M feed until the server answers it -> bench/results/publish.md"
	@echo "make bench-ixfr     an NSD secondary of the 1M-entry zone after a change, AXFR vs IXFR -> bench/results/ixfr.md"
	@echo "make bench-import   import-rbldnsd of 1M-line ip4set and dnset files -> bench/results/import.md"
	@echo "make bench-web      publisher web on the 1M-entry zone: start-up, memory, lookups -> bench/results/web.md"
	@echo "make bench-spf      refresh-spf of 200 partners through unbound and NSD -> bench/results/spf.md"
	@echo "make fuzz           1M hostile UDP packets + TCP abuse at the server (<= 5 min) -> bench/results/fuzz.md"
	@echo "make soak           dnsperf 60 s at full rate while republishing 20+ times -> bench/results/soak.md"

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -e '.[test]'
	rm -f $(VENV)/.installed-*
	touch $@

venv: $(STAMP)

test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy
	$(PY) -m pytest -q

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: $(STAMP)
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

docs: $(STAMP)
	$(PY) -m publisher.cli.docs

typecheck: $(STAMP)
	$(PY) -m mypy

validate: $(STAMP)
	$(PY) -m publisher validate

compile: $(STAMP)
	$(PY) -m publisher compile $(if $(OUT),--out $(OUT))

# Serves what `publish` made when there is a publish; before the first one, the work tree compiled.
serve: $(STAMP)
	$(PY) -m publisher compile --unless-published
	$(PY) -m publisher serve$(foreach l,$(LISTEN), --listen $(l))$(if $(ACCESS_KEYS), --access-keys $(ACCESS_KEYS))$(if $(TSIG_KEYS), --tsig-keys $(TSIG_KEYS))

# Reads what zones/ holds (a publish, or what `make compile` / `make serve` wrote) and reloads on a publish.
# Like serve: what `publish` made when there is a publish; before the first one, the work tree compiled.
# publisher web listens on one address: LISTEN with two (as make serve takes) is refused, not cut.
web: $(STAMP)
	$(if $(word 2,$(LISTEN)),$(error make web listens on one address, LISTEN='$(LISTEN)' has $(words $(LISTEN)); give one, e.g. make web LISTEN=$(word 1,$(LISTEN))))
	$(PY) -m publisher compile --unless-published
	$(PY) -m publisher web$(if $(LISTEN), --listen $(LISTEN))$(if $(SMTP), --smtp $(SMTP))

publish: $(STAMP)
	$(PY) -m publisher publish $(if $(COMMIT),--commit $(COMMIT)) $(if $(FORCE),--force)

plan: $(STAMP)
	$(PY) -m publisher plan $(if $(COMMIT),--commit $(COMMIT))

hooks: $(STAMP)
	$(PY) -m publisher install-hook

bench-compile: $(STAMP)
	$(PY) bench/bench_compile.py --out bench/results/compile.md

bench-web: $(STAMP)
	$(PY) bench/bench_web.py --out bench/results/web.md

bench-serve: $(STAMP)
	$(PY) bench/bench_serve.py --out bench/results/serve.md
	$(PY) bench/bench_email.py --out bench/results/email.md

bench-email: $(STAMP)
	$(PY) bench/bench_email.py --out bench/results/email.md

bench-publish: $(STAMP)
	$(PY) bench/bench_publish.py --out bench/results/publish.md

bench-ixfr: $(STAMP)
	$(PY) bench/bench_ixfr.py --out bench/results/ixfr.md

bench-spf: $(STAMP)
	$(PY) bench/bench_spf.py --out bench/results/spf.md

bench-import: $(STAMP)
	$(PY) bench/bench_import.py --kinds ip4set,dnset --out bench/results/import.md

clean:
	rm -rf zones/gen-* zones/.tmp-* zones/current zones/*.zone zones/*.snap zones/*.rbldnsd zones/manifest.json

fuzz: $(STAMP)
	$(PY) bench/fuzz_net.py --out bench/results/fuzz.md

soak: $(STAMP)
	$(PY) bench/soak.py --out bench/results/soak.md
