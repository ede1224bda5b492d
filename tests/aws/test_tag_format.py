"""The TTL tag on IAM in the form the seed's TTL checker reads (`provider.tag_format`), against
a real moto server: `YYYYMMDDhhmm` in the model's zone (Asia/Tokyo), rounded up to the minute,
by default; ISO 8601 when asked. The reconciler and `user show` read both."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from aws_support import World, aws_model_text

from sekisho.bootstrap import Core
from sekisho.clock import ManualClock
from sekisho.domain.actor import Actor
from sekisho.domain.grants import GrantStatus
from sekisho.domain.timespec import parse_ttl_tag, seed_tag
from sekisho.model import check_text, load_text
from sekisho.server import build_app
from sekisho.services.reconcile import Kind
from sekisho.store.tables import GrantRow
from support import LEADER, MEMBER, People, draft, serving

WORK = "ProdMemberWorkGroup"
LEADERS = "ProdLeaderWorkGroup"
TOKYO = ZoneInfo("Asia/Tokyo")  # the example model's zone
SEKISHO = [sys.executable, "-c", "from sekisho.cli.main import main; main()"]


def with_tag_format(text: str, form: str) -> str:
    return text.replace("  type: aws_iam\n", f"  type: aws_iam\n  tag_format: {form}\n", 1)


def grant_until(core: Core, clock: ManualClock, end: datetime) -> int:
    """member01 asks, leader01 approves: a grant ending at `end`."""
    seconds = int((end - clock.now()).total_seconds())
    request = core.workflow.file(MEMBER, draft(duration=f"{seconds}s"))
    done = core.workflow.approve(LEADER, request.id, "ok")
    assert done.grant is not None, [t.message for t in done.timeline]
    assert done.grant.end_at == end
    return done.grant.id


def test_iam_holds_the_seeds_form_rounded_up_to_the_minute(
    aws_core: Core, world: World, clock: ManualClock
) -> None:
    """An end at 09:16:30 UTC is 18:16:30 in Tokyo: tagged 18:17, never before the end."""
    end = datetime(2026, 11, 29, 9, 16, 30, tzinfo=UTC)
    grant_until(aws_core, clock, end)
    assert world.tags("member01") == {WORK: "202611291817"}
    # The seed's checker reads it in Japan time: not before the end, and within a minute.
    read = parse_ttl_tag("202611291817", TOKYO)
    assert read is not None
    assert end <= read < end + timedelta(minutes=1)
    # The reconciler takes the seed's form as right: nothing to retag.
    assert aws_core.reconciler.run(dry_run=True).findings == []

    clock.set(end)  # ... and the end comes at the grant's end, not the tag's
    aws_core.sweeper.run_due()
    assert world.members(WORK) == set()
    assert WORK not in world.tags("member01")


def test_an_end_on_the_minute_is_tagged_that_minute(
    aws_core: Core, world: World, clock: ManualClock
) -> None:
    grant_until(aws_core, clock, datetime(2026, 11, 29, 9, 16, tzinfo=UTC))
    assert world.tags("member01") == {WORK: "202611291816"}


def test_tag_format_iso_writes_iso_8601(aws_core: Core, world: World, clock: ManualClock) -> None:
    aws_core.models.load(
        with_tag_format(aws_model_text(world.moto.url), "iso"), "aws.yaml", Actor.system("test")
    )
    grant_until(aws_core, clock, datetime(2026, 11, 29, 9, 16, 30, tzinfo=UTC))
    assert world.tags("member01") == {WORK: "2026-11-29T09:16:30Z"}
    assert aws_core.reconciler.run(dry_run=True).findings == []


def test_the_reconciler_retags_the_other_form_into_the_configured_one(
    aws_core: Core, world: World, clock: ManualClock
) -> None:
    """Tags sekisho wrote before (ISO 8601) are rewritten, so the seed's checker can read them."""
    grant_until(aws_core, clock, datetime(2026, 11, 29, 11, tzinfo=UTC))
    iam = world.client("iam")
    iam.tag_user(UserName="member01", Tags=[{"Key": WORK, "Value": "2026-11-29T11:00:00Z"}])
    report = aws_core.reconciler.run()
    assert [(f.kind, f.user) for f, _ in report.done] == [(Kind.WRONG_TAG, "member01")]
    assert world.tags("member01") == {WORK: "202611292000"}  # 11:00 UTC is 20:00 in Tokyo


def test_the_first_run_imports_tags_of_either_form(
    aws_core: Core, world: World, clock: ManualClock
) -> None:
    iam = world.client("iam")
    iam.add_user_to_group(GroupName=WORK, UserName="member01")
    iam.tag_user(UserName="member01", Tags=[{"Key": WORK, "Value": "202611292000"}])  # Tokyo
    iam.add_user_to_group(GroupName=WORK, UserName="member02")
    iam.tag_user(UserName="member02", Tags=[{"Key": WORK, "Value": "2026-11-29T12:30:00Z"}])
    report = aws_core.reconciler.run()
    assert sorted((f.kind, f.user) for f, _ in report.done) == [
        (Kind.IMPORT, "member01"),
        (Kind.IMPORT, "member02"),
    ]
    with aws_core.db.read() as s:
        ends = {g.user: g.end_at for g in s.query(GrantRow) if g.status == GrantStatus.ACTIVE}
    assert ends == {
        "member01": datetime(2026, 11, 29, 11, tzinfo=UTC),
        "member02": datetime(2026, 11, 29, 12, 30, tzinfo=UTC),
    }
    assert aws_core.reconciler.run(dry_run=True).findings == []  # both right as they are


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_user_show_prints_tags_of_either_form(
    aws_core: Core, world: World, clock: ManualClock
) -> None:
    grant_until(aws_core, clock, datetime(2026, 11, 29, 9, 16, 30, tzinfo=UTC))
    # A tag an earlier sekisho wrote, for a group member01 is no longer in.
    old = "2026-11-28T10:00:00Z"
    world.client("iam").tag_user(UserName="member01", Tags=[{"Key": LEADERS, "Value": old}])
    token = People(aws_core).token("member01")
    with serving(build_app(aws_core, scheduler=False)) as url:  # no reconciler to clean it
        shown = subprocess.run(
            [*SEKISHO, "user", "show", "member01"],
            env={**os.environ, "SEKISHO_SERVER": url, "SEKISHO_TOKEN": token, "COLUMNS": "200"},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert shown.returncode == 0, shown.stderr
    rows = {
        line.split("│")[1].strip(): line.split("│")[2].strip()
        for line in shown.stdout.splitlines()
        if line.count("│") == 3
    }
    assert rows == {WORK: "202611291817", "-": old}, shown.stdout


def test_tag_format_is_checked_with_its_line() -> None:
    text = with_tag_format(aws_model_text("http://127.0.0.1:1"), "yyyymmdd")
    line = text.splitlines().index("  tag_format: yyyymmdd") + 1
    ((rule, at, message),) = [(p.rule, p.line, p.message) for p in check_text(text)]
    assert (rule, at) == ("invalid_choice", line)
    assert "seed" in message
    assert "iso" in message
    assert load_text(aws_model_text("http://127.0.0.1:1")).provider.tag_format == "seed"
    local = load_text(aws_model_text("http://127.0.0.1:1").replace("type: aws_iam", "type: local"))
    assert local.provider.tag_format == "iso"  # sekisho's own directory: nothing else reads it


@pytest.mark.parametrize(
    ("end", "zone", "tag"),
    [
        (datetime(2026, 11, 29, 9, 16, 30, tzinfo=UTC), "Asia/Tokyo", "202611291817"),
        (datetime(2026, 11, 29, 9, 16, 0, 1, tzinfo=UTC), "Asia/Tokyo", "202611291817"),
        (datetime(2026, 12, 31, 14, 59, 59, tzinfo=UTC), "Asia/Tokyo", "202701010000"),
        # New York's clocks go back at 02:00 on 2026-11-01: 01:30 comes twice, and the seed's
        # form cannot say which. An end in the second 01:30 is tagged 02:00, not 01:30 (that
        # reads as the first one, an hour early).
        (datetime(2026, 11, 1, 6, 30, tzinfo=UTC), "America/New_York", "202611010200"),
        (datetime(2026, 11, 1, 5, 30, tzinfo=UTC), "America/New_York", "202611010130"),
    ],
)
def test_the_seeds_form_never_ends_before_the_grant(end: datetime, zone: str, tag: str) -> None:
    assert seed_tag(end, ZoneInfo(zone)) == tag
    read = parse_ttl_tag(tag, ZoneInfo(zone))
    assert read is not None
    assert read >= end
