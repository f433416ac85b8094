"""The dunning ladder as configuration (``tariffs/dunning_policy.toml``), validated on load."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from pipelines.common.money import money

BARRING_LEVELS = ("none", "outgoing", "soft", "hard")
CHANNELS = ("email", "sms", "letter", "call", "agency", "none")
ACTIONS = ("email_reminder", "sms_reminder", "outgoing_call_barring", "soft_suspension", "hard_disconnection",
           "agency_handover", "write_off")
POLICY_FILE = "dunning_policy.toml"


class PolicyError(ValueError):
    """The dunning policy file is not usable; the message names the field to fix."""


@dataclass(frozen=True)
class Step:
    step: int
    code: str
    action: str
    start_day: int
    min_debt: Decimal
    channel: str
    barring: str


NORMAL = Step(0, "NORMAL", "none", 0, Decimal("0"), "none", "none")


@dataclass(frozen=True)
class Policy:
    name: str
    currency: str
    clear_below: Decimal
    steps: tuple[Step, ...]                 # steps[0] is NORMAL; steps[i].step == i
    segment_max_step: dict[str, int]
    freeze_on: tuple[str, ...]
    version: str                            # digest of the file, recorded in manifests

    def step(self, number: int) -> Step:
        return self.steps[number]

    @property
    def top(self) -> int:
        return len(self.steps) - 1


def parse_policy(text: str) -> Policy:
    """A policy from TOML text; raises :class:`PolicyError` with the field that is wrong."""
    from pipelines.common.partitions import digest

    try:
        doc = tomllib.loads(text)
        head = doc["policy"]
        raw_steps = sorted(doc["step"], key=lambda s: s["step"])
    except (tomllib.TOMLDecodeError, KeyError, TypeError) as exc:
        raise PolicyError(f"dunning policy needs [policy] and [[step]] tables: {exc}") from exc
    steps = [NORMAL]
    for i, raw in enumerate(raw_steps, start=1):
        try:
            step = Step(int(raw["step"]), str(raw["code"]), str(raw["action"]), int(raw["start_day"]),
                        money(str(raw["min_debt"])), str(raw["channel"]), str(raw["barring"]))
        except (KeyError, ValueError) as exc:
            raise PolicyError(f"dunning step #{i} is incomplete or invalid: {exc}") from exc
        if step.step != i:
            raise PolicyError(f"dunning steps must be numbered 1..n without gaps; found {step.step} at position {i}")
        if step.action not in ACTIONS:
            raise PolicyError(f"step {i}: action {step.action!r} is not one of {ACTIONS}")
        if step.channel not in CHANNELS:
            raise PolicyError(f"step {i}: channel {step.channel!r} is not one of {CHANNELS}")
        if step.barring not in BARRING_LEVELS:
            raise PolicyError(f"step {i}: barring {step.barring!r} is not one of {BARRING_LEVELS}")
        if step.start_day <= steps[-1].start_day and i > 1:
            raise PolicyError(f"step {i}: start_day must increase along the ladder")
        steps.append(step)
    excl = doc.get("exclusions", {})
    return Policy(
        name=str(head.get("name", "dunning")), currency=str(head.get("currency", "EUR")),
        clear_below=money(str(head.get("clear_below", "0.01"))), steps=tuple(steps),
        segment_max_step={str(k): int(v) for k, v in excl.get("segment_max_step", {}).items()},
        freeze_on=tuple(excl.get("freeze_on", ())), version=digest(text),
    )


def load_policy(tariffs_dir: str, name: str = POLICY_FILE) -> Policy:
    path = Path(tariffs_dir) / name
    try:
        text = path.read_text()
    except OSError as exc:
        raise PolicyError(f"cannot read dunning policy {path}: {exc}") from exc
    return parse_policy(text)
