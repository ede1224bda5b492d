"""Operations: one verb-noun class per use case, the one write path every interface calls.

Each takes only the ports and operations it uses; `execute` checks and changes in one unit of
work and records domain events on it (`sekisho.domain.events`); the effect handlers write the
timeline, audit and outbox rows (`sekisho.effects`). `docs/architecture.md` shows the shape.
"""
