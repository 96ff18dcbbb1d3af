"""Draws and applies random mutations to the ground truth (``Sandbox.mutate``)."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Sequence

from rorclient.errors import ConfigError
from rorclient.sandbox._truth import GroundTruth, establishment_id
from rorclient.sandbox.mutations import (
    MUTATION_KINDS,
    Mutation,
    movable_units,
    move_unit,
    mutate_offer,
    new_establishment,
)

__all__ = ["apply_mutations"]

_ATTEMPTS = 60


def apply_mutations(
    truth: GroundTruth,
    count: int,
    kinds: Sequence[str] | None,
    rng: random.Random,
    at: dt.datetime,
    *,
    seed: int,
) -> list[Mutation]:
    """Apply ``count`` mutations of the given kinds (all when ``None``), each to a random establishment.

    With explicit ``kinds``, a kind no establishment can take (``reopening`` with nothing closed...)
    raises :class:`~rorclient.errors.ConfigError`; with ``kinds=None`` another kind is drawn instead.
    """
    if count < 0:
        raise ConfigError(f"the number of mutations cannot be negative, got {count}")
    chosen = tuple(kinds) if kinds is not None else MUTATION_KINDS
    unknown = [kind for kind in chosen if kind not in MUTATION_KINDS]
    if unknown or not chosen:
        raise ConfigError(
            f"unknown mutation kind(s) {', '.join(unknown) or '(none given)'}: "
            f"expected some of {', '.join(MUTATION_KINDS)}"
        )
    done: list[Mutation] = []
    for _ in range(count):
        pool = list(chosen)
        while True:
            kind = rng.choice(pool)
            mutation = _apply_one(truth, kind, rng, at, seed)
            if mutation is not None:
                done.append(mutation)
                break
            if kinds is not None or len(pool) == 1:
                raise ConfigError(f"no establishment of the sandbox can take a {kind} mutation")
            pool.remove(kind)
    return done


def _apply_one(
    truth: GroundTruth, kind: str, rng: random.Random, at: dt.datetime, seed: int
) -> Mutation | None:
    if kind == "new_establishment":
        for _ in range(_ATTEMPTS):
            offer = new_establishment(seed, truth.next_group(), at)
            if offer is not None and truth.offer(establishment_id(offer)) is None:
                truth.put(offer)
                return Mutation(kind=kind, establishment=establishment_id(offer), at=at)
        return None
    if kind == "move":
        return _move(truth, rng, at)
    for _ in range(_ATTEMPTS):
        offer = truth.random_offer(rng)
        try:
            changed, unit = mutate_offer(offer, kind, rng, at, new_unit_id=truth.new_unit_id)
        except ConfigError:
            continue
        truth.put(changed)
        return Mutation(kind=kind, establishment=establishment_id(offer), at=at, unit=unit)
    return None


def _move(truth: GroundTruth, rng: random.Random, at: dt.datetime) -> Mutation | None:
    if truth.count() < 2:
        return None
    for _ in range(_ATTEMPTS):
        source = truth.random_offer(rng)
        candidates = movable_units(source)
        target = truth.random_offer(rng)
        if (
            not candidates
            or establishment_id(target) == establishment_id(source)
            or target.establishments[0].closed
        ):
            continue
        unit = rng.choice(candidates)
        new_source, new_target = move_unit(source, target, unit.id, at)
        truth.put_many((new_source, new_target))
        return Mutation(
            kind="move",
            establishment=establishment_id(source),
            at=at,
            unit=unit.id,
            target_establishment=establishment_id(target),
        )
    return None
