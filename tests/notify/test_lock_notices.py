"""Who hears of a lock: everyone who may lock (the security group, admins) and the locked
user, once when it is placed and once when it is removed; the holder of each grant it ended
gets that grant's own "access ended" message; approvers of a request it closed are told."""

from __future__ import annotations

from notify_support import channels_yaml, file, granted, load, with_notifications
from receivers import HttpReceiver

from sekisho.bootstrap import Core
from sekisho.domain.actor import Actor

SECURITY = Actor("security01", "198.51.100.20")
ROUTES = (
    "    - {events: [lock.changed, grant.ended, request.decided, approval.needed], "
    "channels: [hook]}\n"
)


def test_a_lock_tells_its_responders_the_user_and_each_holder(
    core: Core, webhook: HttpReceiver
) -> None:
    load(core, with_notifications(channels_yaml(webhook=webhook), ROUTES))
    granted(core)
    core.locks.place(SECURITY, "user", "member01", "laptop stolen")
    core.new_dispatcher().run_pass()
    [placed] = webhook.bodies("lock.changed")
    assert (
        placed["title"] == "sekisho lock #1 on user member01: locked by security01: laptop stolen"
    )
    assert "It ended 1 grant(s) at once" in placed["summary"]
    told = {(r["user"], r["role"]) for r in placed["recipients"]}
    assert told == {("admin01", "locker"), ("security01", "locker"), ("member01", "locked")}
    [ended] = webhook.bodies("grant.ended")
    assert "locked by security01: laptop stolen" in ended["summary"]

    core.locks.remove(SECURITY, 1)
    core.new_dispatcher().run_pass()
    removed = webhook.bodies("lock.changed")[-1]
    assert removed["title"] == "sekisho lock #1 on user member01 removed"
    assert "Nothing it ended comes back" in removed["summary"]


def test_approvers_of_a_request_a_lock_closed_are_told_they_need_not_act(
    core: Core, webhook: HttpReceiver
) -> None:
    load(core, with_notifications(channels_yaml(webhook=webhook), ROUTES))
    filed = file(core)
    core.locks.place(SECURITY, "target", "prod-admin-console", "compromised")
    core.new_dispatcher().run_pass()
    closed = [b for b in webhook.bodies("request.decided") if b["request_id"] == filed.id]
    assert closed
    assert closed[-1]["title"] == f"Request #{filed.id} closed: locked by security01: compromised"
    roles = {(r["user"], r["role"]) for r in closed[-1]["recipients"]}
    assert ("leader01", "handled") in roles
    assert ("member01", "requester") in roles
