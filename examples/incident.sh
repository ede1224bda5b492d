#!/usr/bin/env bash
# "member01's laptop is stolen": the kill switch, end to end, against a running `sekisho demo`.
#
#   bash examples/incident.sh
#
# member01 holds two grants and has the production console open through the gateway. One
# command from security01 ends all of it, and everything afterwards says why.
set -euo pipefail

DEMO=${SEKISHO_DEMO_DIR:-.demo}
LOCAL_PORT=${LOCAL_PORT:-18444}
export SEKISHO_SERVER=${SEKISHO_SERVER:-http://127.0.0.1:8470}
export SEKISHO_DEMO_DIR=$DEMO
if ! command -v sekisho >/dev/null; then PATH="$(pwd)/.venv/bin:$PATH"; fi

as() { who=$1; shift; SEKISHO_CONFIG_DIR="$DEMO/home/$who" sekisho "$@"; }
login() {
  sekisho demo password "$1" \
    | as "$1" login --user "$1" --password-stdin --otp "$(sekisho demo code "$1")"
}
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
expect_refused() { if "$@"; then echo "expected a refusal" >&2; exit 1; fi; }
request() {
  as member01 request create --template AddUserToGroup --group ProdMemberWorkGroup \
    --for 1h --reason "$1" --info target="payment admin console" --info change="$1" \
    --info rollback="none" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])'
}

step "0. member01 holds two grants and has the production console open"
login member01
login leader01
for reason in "Rotate the merchant key" "Check the settlement batch"; do
  id=$(request "$reason")
  as leader01 request approve "$id" --comment "OK"
done
as member01 grant list --active
as member01 forward prod-admin-console --local-port "$LOCAL_PORT" > "$DEMO/incident-forward.log" 2>&1 &
FORWARD=$!
for _ in $(seq 1 50); do grep -q "^Forwarding" "$DEMO/incident-forward.log" && break; sleep 0.1; done
curl -sS --cacert "$DEMO/pki/ca.crt" "https://localhost:$LOCAL_PORT/" | grep -o "<title>[^<]*</title>"

step "1. security01 locks member01: one command"
login security01
as security01 lock user member01 --reason "laptop stolen"

step "2. the forward stops and prints why"
wait "$FORWARD" || true
tail -1 "$DEMO/incident-forward.log"
if curl -sS -m 5 --cacert "$DEMO/pki/ca.crt" "https://localhost:$LOCAL_PORT/" >/dev/null 2>&1; then
  echo "the console is still reachable after the lock" >&2; exit 1
fi
echo "the console is no longer reachable"

step "3. every path says why"
expect_refused as security01 can member01 connect prod-admin-console
expect_refused as security01 can member01 assume prod/Prod_MemberRole
expect_refused as member01 whoami                   # the stolen laptop's token ended with the lock
# The right password and a fresh code (the app's next one: a code is good once): still locked.
expect_refused as member01 login --user member01 --password-stdin \
  --otp "$(sekisho demo code member01 --next)" < <(sekisho demo password member01)
login admin01
expect_refused as admin01 request create --template AddUserToGroup --group ProdMemberWorkGroup \
  --user member01 --for 1h --reason "on their behalf" --info target=x --info change=y \
  --info rollback=z
as security01 lock list

step "4. the audit trail tells it"
as security01 audit list --user member01 --since 1h

step "5. unlocking restores nothing: access is asked for again"
as security01 unlock 1
expect_refused as security01 can member01 assume prod/Prod_MemberRole
