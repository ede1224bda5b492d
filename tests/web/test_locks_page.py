"""The locks page: those who may lock place and lift locks; bad input comes back beside its
field with nothing changed; others are not offered the page."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient
from test_pages import count, errors_beside, post

from sekisho.bootstrap import Core
from sekisho.domain.access import Verb
from sekisho.store.tables import LockRow

SignIn = Callable[[str], TestClient]


def test_security_locks_a_user_and_unlocks_from_the_page(sign_in: SignIn, core: Core) -> None:
    client = sign_in("security01")
    page = client.get("/locks")
    assert page.status_code == 200
    assert "Place a lock" in page.text
    assert 'href="/locks"' in page.text  # in the navigation
    done = post(
        client, "/locks", "/locks", kind="user", subject="member01", reason="laptop <stolen>"
    )
    assert done.status_code == 303
    shown = client.get(done.headers["location"]).text
    assert "Lock #1 on member01 is in force" in shown
    assert "laptop &lt;stolen&gt;" in shown  # shown as text, never as markup
    decision = core.authz.decide("member01", Verb.CONNECT, "prod-admin-console")
    assert decision.reason == "locked by security01: laptop <stolen>"
    lifted = post(client, "/locks/1/unlock", "/locks")
    shown = client.get(lifted.headers["location"]).text
    assert "Lock #1 on member01 removed" in shown
    assert "removed by security01" in shown


def test_bad_input_comes_back_beside_the_field(sign_in: SignIn, core: Core) -> None:
    client = sign_in("security01")
    answer = post(client, "/locks", "/locks", kind="user", subject="nobody", reason="x")
    assert answer.status_code == 422
    assert "the model has no user" in errors_beside(answer.text, "subject-errors")
    assert 'value="nobody"' in answer.text
    too_long = post(
        client, "/locks", "/locks", kind="user", subject="member01", reason="x", **{"for": "soon"}
    )
    assert too_long.status_code == 422
    assert "is not a duration" in errors_beside(too_long.text, "duration-errors")
    assert count(core, LockRow) == 0


def test_people_who_may_not_lock_are_not_offered_it(sign_in: SignIn, core: Core) -> None:
    member = sign_in("member01")
    assert 'href="/locks"' not in member.get("/requests/mine").text
    assert member.get("/locks").status_code == 403
    auditor = sign_in("auditor01")
    page = auditor.get("/locks")
    assert page.status_code == 200
    assert "Place a lock" not in page.text
