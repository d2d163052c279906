# Recipes; run them through ./dev on a fresh machine (it makes .venv first).
set dotenv-load := false

# this list
default:
    @just --list

# Implementation note (not shown by `just --list`, which shows the comment line right above a recipe):
# the long-running recipes `exec` the server, so a SIGTERM sent to just reaches the server itself;
# ./dev runs demo, serve and ui without just in between, so a requested stop exits 0.

# the main job: generate data, ingest, train, compile, then serve API and dashboard
demo *ARGS:
    exec credit demo {{ARGS}}

# a dependency audit, then the whole test suite with line coverage and the 25 slowest tests (what CI runs)
test *ARGS: system-deps
    -just audit
    python -m pytest --cov=app --cov=ui --cov-report=term:skip-covered --durations=25 {{ARGS}}

# the edit-run loop: every test except the slow, browser and whole-program (integration) ones
test-fast *ARGS:
    python -m pytest -m "not slow and not browser and not integration" -p no:cacheprovider -q --durations=10 {{ARGS}}

# the tests that need no shared pipeline (nothing generated, trained or compiled first)
test-unit *ARGS:
    python -m pytest -m unit -p no:cacheprovider -q --durations=10 {{ARGS}}

# known vulnerabilities in the locked dependencies (pip-audit); reports, does not fail the tests
audit:
    #!/bin/sh
    # verdict first; the packages the vulnerability service could not look up are counted and listed in .audit.txt
    timeout 300 pip-audit --progress-spinner off -r requirements.lock --no-deps --disable-pip \
        > .audit.txt 2>&1 || echo "pip-audit: findings below"
    locked=$(grep -c '==' requirements.lock)
    skipped=$(grep -c 'could not be audited' .audit.txt || true)
    if [ "$skipped" -ge "$locked" ]; then
        echo "pip-audit: not audited: none of the $locked locked packages could be looked up (vulnerability service unreachable?)"
    else
        grep -m 1 -E 'known vulnerabilit|Found [0-9]+ ' .audit.txt || tail -n 3 .audit.txt
        [ "$skipped" -gt 0 ] && echo "pip-audit: $skipped of $locked locked packages could not be audited (vulnerability service unreachable?)"
    fi
    echo "pip-audit: full report in .audit.txt"

# refresh requirements.lock from the current .venv
lock:
    pip freeze --exclude-editable | grep -v '^lleaves' > requirements.lock

# Debian packages the tests need: chromium for the dashboard (and the letters' PDF), sqlite3 for the C extension, poppler-utils to check a PDF
system-deps:
    #!/bin/sh
    set -e
    missing=""
    command -v chromium >/dev/null || missing="$missing chromium"
    command -v sqlite3 >/dev/null || missing="$missing sqlite3"
    command -v wrk >/dev/null || missing="$missing wrk"
    command -v pdfinfo >/dev/null || missing="$missing poppler-utils"
    [ -f /usr/include/sqlite3ext.h ] || missing="$missing libsqlite3-dev"
    [ -z "$missing" ] && exit 0
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
    echo "installing Debian packages:$missing (apt-get; output in .apt.log, shown if it fails)" >&2
    if ! { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing; } > .apt.log 2>&1; then
        cat .apt.log >&2
        echo "apt-get failed (needs root or sudo): install$missing yourself, then run ./dev test again" >&2
        exit 1
    fi

# benchmarks (add --quick for the short correctness pass CI runs)
bench *ARGS:
    credit bench {{ARGS}}

# full Kaggle-scale ingest benchmark (307,511 clients; about 15 minutes)
bench-full:
    credit bench --full

# the manual as a site in site/ (MkDocs + Material); fails on a broken link or anchor
docs *ARGS:
    NO_MKDOCS_2_WARNING=1 mkdocs build --strict {{ARGS}}

# ruff and hadolint
lint:
    ruff check .
    ruff format --check .
    hadolint Dockerfile

# format and fix what ruff can
fmt:
    ruff format .
    ruff check --fix .

# the API on 127.0.0.1:8000
serve *ARGS:
    exec credit serve {{ARGS}}

# the dashboard on 127.0.0.1:8080, against the API
ui *ARGS:
    exec credit ui {{ARGS}}

# Datasette on 127.0.0.1:8001: browse the database and run score() / decision() in SQL, read-only
datasette *ARGS:
    exec datasette "${CREDIT_DB:-data/credit.db}" --load-extension "${CREDIT_MODEL_DIR:-compiled}/score.so:sqlite3_score_init" --host 127.0.0.1 --port 8001 {{ARGS}}

# build the container image
docker-build:
    docker build -t pret-a-depenser .

# run the container image (API on 8000, dashboard on 8080)
docker-run:
    docker run --rm -p 8000:8000 -p 8080:8080 -e CREDIT_API_KEYS pret-a-depenser
