"""A workload's artifact layout: rules that map S3 keys to the logical artifacts they hold.

Declared in the workload's ``pipeline.yaml`` (``artifacts:``). The duplicate check
judges each key by the first rule whose pattern matches it; a key no rule covers is
reported, never silently passed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

STATE = "state"
MANIFEST = "manifest"
DATA = "data"


@dataclass(frozen=True, kw_only=True)
class ArtifactRule:
    """Keys matching ``pattern`` hold ``part`` of the logical artifact ``logical``.

    ``logical`` is a ``str.format`` template over the pattern's named groups
    (all-digit groups are passed as ints, so ``{step:06d}`` works). Groups named
    ``run`` and ``step`` are the run id and training step. ``mutable`` keys are
    rewritten by design (an alias, a lease) and excluded from the one-version
    rule. ``references`` (manifests) names the JSON field of the object's body
    that lists the keys it needs; ``logical_from`` names a JSON field of the
    body whose value replaces the logical id's last segment (a registry record
    that names its run).
    """

    name: str
    pattern: re.Pattern[str]
    logical: str = ""
    part: str = DATA
    mutable: bool = False
    references: str = ""
    logical_from: str = ""

    def needs_body(self) -> bool:
        return bool(self.references or self.logical_from)


@dataclass(frozen=True, kw_only=True)
class MatchedKey:
    """A key as a rule reads it."""

    key: str
    rule: ArtifactRule
    groups: Mapping[str, str]
    logical_id: str

    @property
    def run_id(self) -> str:
        return self.groups.get("run", "")

    @property
    def step(self) -> int | None:
        raw = self.groups.get("step", "")
        return int(raw) if raw.isdigit() else None


@dataclass(frozen=True, kw_only=True)
class ArtifactLayout:
    """The ordered rules of one workload."""

    rules: tuple[ArtifactRule, ...]

    def match(self, key: str) -> MatchedKey | None:
        """The first rule covering ``key``, read; ``None`` when no rule does."""
        for rule in self.rules:
            found = rule.pattern.match(key)
            if found is None:
                continue
            groups = {k: v for k, v in found.groupdict().items() if v is not None}
            values: dict[str, object] = {k: int(v) if v.isdigit() else v for k, v in groups.items()}
            logical = rule.logical.format(**values) if rule.logical else ""
            return MatchedKey(key=key, rule=rule, groups=groups, logical_id=logical)
        return None

    def body_pattern(self) -> str:
        """A regex of the keys whose bodies the inventory must read ('' when none)."""
        # One regex of several rules: their group names would clash, and only the match matters here.
        patterns = [re.sub(r"\(\?P<\w+>", "(?:", r.pattern.pattern) for r in self.rules if r.needs_body()]
        return "|".join(f"(?:{p})" for p in patterns)


def compile_rule(*, name: str, pattern: str, logical: str = "", part: str = DATA, mutable: bool = False,
                 references: str = "", logical_from: str = "") -> ArtifactRule:
    """An ``ArtifactRule`` from declared strings; raises ``ValueError`` naming the problem."""
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"artifact rule {name!r}: pattern {pattern!r} is not a valid regex ({exc})") from None
    groups = set(compiled.groupindex)
    for field_name in _template_fields(logical):
        if field_name not in groups:
            raise ValueError(f"artifact rule {name!r}: logical {logical!r} uses {{{field_name}}}, which the "
                             f"pattern does not capture (groups: {', '.join(sorted(groups)) or 'none'})")
    if not mutable and not logical:
        raise ValueError(f"artifact rule {name!r}: give it a logical id template, or mark it mutable: true")
    return ArtifactRule(name=name, pattern=compiled, logical=logical, part=part, mutable=mutable,
                        references=references, logical_from=logical_from)


def _template_fields(template: str) -> Sequence[str]:
    import string

    return [f.split(".")[0].split("[")[0] for _, f, _, _ in string.Formatter().parse(template) if f]
