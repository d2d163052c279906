#!/usr/bin/env bash
# Container entrypoint: runs the API (`credit serve`) and the dashboard (`credit ui`) together.
#
#   - refuses to start without CREDIT_API_KEYS (keys never live in the image), and without dashboard
#     accounts, CREDIT_UI_USERS or the file CREDIT_UI_USERS_FILE (`credit ui-account` prints the entries);
#   - SIGTERM / SIGINT: forwarded to both children, waits for them (at most CREDIT_STOP_GRACE
#     seconds, then SIGKILL), exits 0;
#   - if either child exits on its own, the other is stopped and the script exits non-zero
#     (the child's code, or 1), so the container restarts instead of serving half an app.
#
# Environment (defaults for the image): CREDIT_DB, CREDIT_MODEL_DIR, CREDIT_HOST (API bind, 0.0.0.0),
# CREDIT_PORT (8000), CREDIT_UI_HOST (dashboard bind, 0.0.0.0), CREDIT_UI_PORT (8080),
# CREDIT_API_KEYS ("key1:officer,key2:admin"), CREDIT_UI_KEY (the dashboard's key, default the first
# admin key), CREDIT_UI_USERS, CREDIT_STOP_GRACE (40). Run by hand outside Docker with the same
# variables; `credit` must be on PATH (CREDIT_BIN overrides it).
set -uo pipefail

log() { printf 'entrypoint: %s\n' "$*" >&2; }

if [ -z "${CREDIT_API_KEYS:-}" ]; then
    log "CREDIT_API_KEYS is not set: refusing to start (pass it at run time, e.g. docker run -e CREDIT_API_KEYS='k1:officer,k2:admin')"
    exit 64
fi

CREDIT_BIN=${CREDIT_BIN:-credit}
API_HOST=${CREDIT_HOST:-0.0.0.0}
API_PORT=${CREDIT_PORT:-8000}
UI_HOST=${CREDIT_UI_HOST:-0.0.0.0}
UI_PORT=${CREDIT_UI_PORT:-8080}
GRACE=${CREDIT_STOP_GRACE:-40}

if [ -z "${CREDIT_UI_USERS:-}" ] && [ ! -f "${CREDIT_UI_USERS_FILE:-.credit-ui-users}" ]; then
    log "no dashboard accounts: set CREDIT_UI_USERS (entries printed by \`credit ui-account NAME --role officer\`) or mount CREDIT_UI_USERS_FILE; refusing to start"
    exit 64
fi

# the dashboard talks to the API over loopback inside the container
export CREDIT_API_URL="${CREDIT_API_URL:-http://127.0.0.1:${API_PORT}}"
export CREDIT_HOST="$API_HOST" CREDIT_PORT="$API_PORT" CREDIT_UI_PORT="$UI_PORT"

api_pid=""
ui_pid=""
stopping=0

stop_children() {
    local sig=$1
    for pid in $api_pid $ui_pid; do
        kill "-$sig" "$pid" 2>/dev/null || true
    done
}

on_signal() {
    if [ "$stopping" = 0 ]; then
        stopping=1
        log "received $1: stopping API and dashboard"
        stop_children TERM
    fi
}
trap 'on_signal TERM' TERM
trap 'on_signal INT' INT

"$CREDIT_BIN" serve &
api_pid=$!
"$CREDIT_BIN" ui --host "$UI_HOST" --port "$UI_PORT" &
ui_pid=$!
log "API pid $api_pid on $API_HOST:$API_PORT, dashboard pid $ui_pid on $UI_HOST:$UI_PORT"

# wait -n returns when a child exits, or early (status > 128) when a trapped signal arrives
rc=0
while [ "$stopping" = 0 ]; do
    wait -n "$api_pid" "$ui_pid"
    rc=$?
    if [ "$stopping" = 1 ]; then
        break
    fi
    for pid in $api_pid $ui_pid; do
        if ! kill -0 "$pid" 2>/dev/null; then
            name=API
            [ "$pid" = "$ui_pid" ] && name=dashboard
            log "the $name (pid $pid) exited with code $rc: stopping the other service"
            stopping=2
        fi
    done
done

if [ "$stopping" = 2 ]; then
    stop_children TERM
fi

# grace period: whatever still runs after GRACE seconds is killed (bash reaps exited children itself)
alive() {
    local pid
    for pid in $api_pid $ui_pid; do
        kill -0 "$pid" 2>/dev/null && return 0
    done
    return 1
}
deadline=$((SECONDS + GRACE))
killed=0
while alive; do
    if [ "$killed" = 0 ] && [ "$SECONDS" -ge "$deadline" ]; then
        log "grace period (${GRACE}s) over: killing the remaining children"
        stop_children KILL
        killed=1
    fi
    sleep 0.2
done
wait 2>/dev/null || true

if [ "$stopping" = 1 ]; then
    log "stopped"
    exit 0
fi
[ "$rc" = 0 ] && rc=1
exit "$rc"
