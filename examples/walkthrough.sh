#!/usr/bin/env bash
# The seed's scenario, end to end, against a running `sekisho demo` (make demo).
#
#   bash examples/walkthrough.sh            # a 2-minute grant; the script waits for its end
#   DURATION=20s bash examples/walkthrough.sh
#
# Each person keeps their own token (SEKISHO_CONFIG_DIR), as on their own laptop, and logs in
# with password + TOTP code; `sekisho demo code` plays their authenticator app.
set -euo pipefail

DEMO=${SEKISHO_DEMO_DIR:-.demo}
DURATION=${DURATION:-2m}
LOCAL_PORT=${LOCAL_PORT:-18443}
export SEKISHO_SERVER=${SEKISHO_SERVER:-http://127.0.0.1:8470}
export SEKISHO_DEMO_DIR=$DEMO
if ! command -v sekisho >/dev/null; then PATH="$(pwd)/.venv/bin:$PATH"; fi

as() { who=$1; shift; SEKISHO_CONFIG_DIR="$DEMO/home/$who" sekisho "$@"; }
login() {
  sekisho demo password "$1" \
    | as "$1" login --user "$1" --password-stdin --otp "$(sekisho demo code "$1")"
}
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
expect_denied() { if "$@"; then echo "expected a refusal" >&2; exit 1; fi; }

step "1. member01 cannot switch into production, nor open the production console"
login member01
expect_denied as member01 can member01 assume prod/Prod_MemberRole
expect_denied as member01 forward prod-admin-console --local-port "$LOCAL_PORT"

step "2. member01 files a change request for $DURATION"
REQUEST=$(as member01 request create --template AddUserToGroup --group ProdMemberWorkGroup \
  --for "$DURATION" --reason "Rotate the payment console API key" \
  --info target="payment admin console" --info change="rotate the merchant key" \
  --info rollback="restore the previous key" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
echo "filed request #$REQUEST"

step "3. leader01 (ChangeApprovalGroup) approves with a comment"
login leader01
as leader01 request list --to-approve
as leader01 request approve "$REQUEST" --comment "OK, go ahead"
as leader01 request show "$REQUEST"

step "4. member01 now can, until the end time"
as member01 can member01 assume prod/Prod_MemberRole
as member01 whoami
as member01 user show member01

step "4b. member01 opens the production admin console through the gateway"
as member01 forward prod-admin-console --local-port "$LOCAL_PORT" > "$DEMO/forward.log" 2>&1 &
FORWARD=$!
for _ in $(seq 1 50); do grep -q "^Forwarding" "$DEMO/forward.log" && break; sleep 0.1; done
cat "$DEMO/forward.log"
# The console's certificate comes from the sekisho CA (a browser would trust `sekisho ca export`).
curl -sS --cacert "$DEMO/pki/ca.crt" "https://localhost:$LOCAL_PORT/" | grep -o "<title>[^<]*</title>"

step "5. at the end time the grant ends by itself"
END=$(as member01 grant list --active --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["end_at"])')
python3 - "$END" <<'EOF'
import sys, time
from datetime import datetime, timezone
left = (datetime.fromisoformat(sys.argv[1]) - datetime.now(timezone.utc)).total_seconds()
print(f"waiting {max(0, left):.0f}s for the grant to end at {sys.argv[1]} ...")
time.sleep(max(0, left) + 1)
EOF
expect_denied as member01 can member01 assume prod/Prod_MemberRole
wait "$FORWARD" || true
cat "$DEMO/forward.log" | tail -1                  # access ended at ...: grant #1 ended (expired)
if curl -sS -m 5 --cacert "$DEMO/pki/ca.crt" "https://localhost:$LOCAL_PORT/" >/dev/null 2>&1; then
  echo "the console is still reachable after the end" >&2; exit 1
fi
echo "the console is no longer reachable"
as member01 grant list
as member01 session list

step "6. the auditor: who entered production, when, for which change?"
login auditor01
as auditor01 audit list --request "$REQUEST"
as auditor01 audit verify
