"""The access model as code: one YAML file -> a checked `sekisho.domain.access.AccessModel`.

    model = load_file("examples/jump-account.yaml")   # or InvalidModel with every problem
    problems = check_text(text)                        # [] when valid
    console.print(render_reachability(model))          # who reaches what, and how

The format is documented in docs/model.md; every rule id is in `sekisho.model.rules.RULES`.
"""

from sekisho.model.loader import check_text, load_file, load_text
from sekisho.model.reach import (
    ApprovalStep,
    PersonReach,
    PersonRoute,
    Reach,
    RequestRoute,
    StandingAccess,
    people_reach,
    reachability,
    reachability_json,
    render_reachability,
)
from sekisho.model.rules import RULES

__all__ = [
    "RULES",
    "ApprovalStep",
    "PersonReach",
    "PersonRoute",
    "Reach",
    "RequestRoute",
    "StandingAccess",
    "check_text",
    "load_file",
    "load_text",
    "people_reach",
    "reachability",
    "reachability_json",
    "render_reachability",
]
