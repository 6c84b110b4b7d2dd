"""Care actions: which treatments each segmented customer gets, by a versioned policy that is data.

The policy (``insights/policy.yaml``) holds rules (conditioned rules first, then the per-segment headline plan:
``<segment>/<sub_reason>`` before ``<segment>/default``), a catalogue of treatments with their channel,
eligibility, fallback, mutual exclusions and cost, nightly cost caps, and the champion/challenger split.
Loading the policy checks it as a whole: unknown treatments, missing defaults and rules holding treatments that
exclude each other are errors; rules that can match nobody and rules that partly overlap with different
treatments are reported (logged and kept in :attr:`ActionPolicy.problems`).

Glossary: dpd = days past due; control = the held-out group that gets business as usual.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

log = logging.getLogger(__name__)

POLICY_PATH = Path(__file__).with_name("policy.yaml")
SEGMENTS = ("hardship", "forgetful", "intent_to_default", "needs_review")
CHANNELS = ("call", "sms", "app_push", "review")
ELIGIBILITY_KEYS = ("min_clean_history_months", "verified_hardship", "min_days_past_due", "max_days_past_due")
_NO_LIMIT = 10**9

ACTION_COLUMNS = [
    "customer_id", "segment", "sub_reason", "rule_id", "rule_why", "experiment_group", "planned_treatments",
    "treatments", "dropped_treatments", "cost", "expected_benefit", "cost_rank", "cap_status",
]


@dataclass(frozen=True)
class Treatment:
    """One thing the collections team can do, where it goes, who may get it and what it costs."""

    code: str
    channel: str
    params: Mapping[str, Any] = field(default_factory=dict)
    eligibility: Mapping[str, Any] = field(default_factory=dict)
    fallback: str | None = None
    conflicts_with: tuple[str, ...] = ()
    cost_cap: str | None = None
    interest_share_of_overdue: float = 0.0
    expected_cure_uplift: float = 0.0
    label_en: str = ""
    label_zh: str = ""


@dataclass(frozen=True)
class Rule:
    """Who a rule applies to and what it gives; ``sub_reasons`` None means any sub-reason."""

    rule_id: str
    segment: str
    treatments: tuple[str, ...]
    sub_reasons: frozenset[str] | None = None
    min_days_past_due: int = 0
    max_days_past_due: int = _NO_LIMIT
    why: str = ""

    def matches(self, segment: str, sub_reason: str, days_past_due: int) -> bool:
        """Return True when a customer with these attributes falls under the rule."""
        return (segment == self.segment
                and (self.sub_reasons is None or sub_reason in self.sub_reasons)
                and self.min_days_past_due <= days_past_due <= self.max_days_past_due)


@dataclass(frozen=True)
class PolicyProblem:
    """Something wrong or suspicious in a policy; errors stop the load, warnings are reported."""

    severity: str  # error | warning
    kind: str  # unknown_treatment | missing_default | treatment_conflict | matches_nobody | overlap | ...
    rule_id: str
    detail: str

    def __str__(self) -> str:
        return f"{self.severity} {self.kind} [{self.rule_id}]: {self.detail}"


@dataclass(frozen=True)
class ActionPolicy:
    """A checked action policy; ``rules`` are in the order they are tried."""

    version: str
    currency: str
    rules: tuple[Rule, ...]
    treatments: Mapping[str, Treatment]
    verified_hardship_reasons: frozenset[str]
    cost_caps: Mapping[str, float]
    control_share: Mapping[str, float]
    control_treatments: tuple[str, ...]
    salt: str
    problems: tuple[PolicyProblem, ...] = ()
    segment_labels: Mapping[str, Mapping[str, str]] = field(default_factory=dict)


# --- loading and checking --------------------------------------------------------------------------


def _treatment(code: str, body: Mapping[str, Any]) -> Treatment:
    cost = body.get("cost") or {}
    return Treatment(
        code=code, channel=str(body.get("channel", "")), params=dict(body.get("params") or {}),
        eligibility=dict(body.get("eligibility") or {}), fallback=body.get("fallback"),
        conflicts_with=tuple(body.get("conflicts_with") or ()), cost_cap=cost.get("cap"),
        interest_share_of_overdue=float(cost.get("interest_share_of_overdue", 0.0)),
        expected_cure_uplift=float(body.get("expected_cure_uplift", 0.0)),
        label_en=str(body.get("label_en", code.replace("_", " "))), label_zh=str(body.get("label_zh", "")),
    )


def policy_rules(raw: Mapping[str, Any]) -> list[Rule]:
    """Return the policy's rules in the order they are tried: conditioned rules, sub-reason plans, defaults."""
    explicit = [
        Rule(rule_id=str(body.get("id", f"rule_{number}")), segment=str(body.get("segment", "")),
             treatments=tuple(body.get("treatments") or ()),
             sub_reasons=frozenset(body["sub_reasons"]) if body.get("sub_reasons") else None,
             min_days_past_due=int(body.get("min_days_past_due", 0)),
             max_days_past_due=int(body.get("max_days_past_due", _NO_LIMIT)), why=str(body.get("why", "")))
        for number, body in enumerate(raw.get("rules") or [], start=1)
    ]
    segments = raw.get("segments") or {}
    by_reason = [
        Rule(rule_id=f"{segment}/{reason}", segment=str(segment), treatments=tuple(steps),
             sub_reasons=frozenset([reason]), why=f"{segment} with call sub-reason {reason}")
        for segment, body in segments.items() for reason, steps in (body.get("sub_reasons") or {}).items()
    ]
    defaults = [Rule(rule_id=f"{segment}/default", segment=str(segment), treatments=tuple(body.get("default") or ()),
                     why=f"{segment}: the segment's default plan")
                for segment, body in segments.items()]
    return explicit + by_reason + defaults


def _covers(outer: Rule, inner: Rule) -> bool:
    reasons = outer.sub_reasons is None or (inner.sub_reasons is not None and inner.sub_reasons <= outer.sub_reasons)
    return (outer.segment == inner.segment and reasons and outer.min_days_past_due <= inner.min_days_past_due
            and inner.max_days_past_due <= outer.max_days_past_due)


def _overlaps(one: Rule, other: Rule) -> bool:
    reasons = one.sub_reasons is None or other.sub_reasons is None or bool(one.sub_reasons & other.sub_reasons)
    return (one.segment == other.segment and reasons and one.min_days_past_due <= other.max_days_past_due
            and other.min_days_past_due <= one.max_days_past_due)


def _rule_problems(rule: Rule, treatments: Mapping[str, Treatment],
                   known_sub_reasons: Mapping[str, frozenset[str]] | None) -> list[PolicyProblem]:
    problems = []
    if rule.segment not in SEGMENTS:
        problems.append(PolicyProblem("warning", "matches_nobody", rule.rule_id,
                                      f"segment {rule.segment!r} is not one of {', '.join(SEGMENTS)}"))
    if rule.min_days_past_due > rule.max_days_past_due:
        problems.append(PolicyProblem("warning", "matches_nobody", rule.rule_id,
                                      f"min_days_past_due {rule.min_days_past_due} > max {rule.max_days_past_due}"))
    # a decided segment carries only its own intent's sub-reasons; needs_review may carry any
    if known_sub_reasons is not None and rule.sub_reasons is not None and rule.segment in known_sub_reasons:
        allowed = known_sub_reasons[rule.segment]
        unknown = sorted(rule.sub_reasons - allowed)
        if unknown and not rule.sub_reasons & allowed:
            problems.append(PolicyProblem("warning", "matches_nobody", rule.rule_id,
                                          f"sub-reason(s) {', '.join(unknown)} never occur with {rule.segment}"))
        elif unknown:
            problems.append(PolicyProblem("warning", "unknown_sub_reason", rule.rule_id,
                                          f"sub-reason(s) {', '.join(unknown)} never occur with {rule.segment}"))
    if not rule.treatments:
        problems.append(PolicyProblem("error", "no_treatment", rule.rule_id, "the rule gives no treatment"))
    for code in rule.treatments:
        if code not in treatments:
            problems.append(PolicyProblem("error", "unknown_treatment", rule.rule_id,
                                          f"treatment {code!r} is not in the treatments catalogue"))
    for code in rule.treatments:
        clash = [other for other in rule.treatments if other in (treatments[code].conflicts_with
                                                                 if code in treatments else ())]
        if clash:
            problems.append(PolicyProblem("error", "treatment_conflict", rule.rule_id,
                                          f"{code} may not be offered together with {', '.join(clash)}"))
    return problems


def policy_problems(rules: Sequence[Rule], treatments: Mapping[str, Treatment],
                    known_sub_reasons: Mapping[str, frozenset[str]] | None = None) -> list[PolicyProblem]:
    """Return every problem of a rule list: unknown or clashing treatments, dead rules, ambiguous overlaps."""
    problems: list[PolicyProblem] = []
    seen: dict[str, int] = {}
    for rule in rules:
        seen[rule.rule_id] = seen.get(rule.rule_id, 0) + 1
    problems += [PolicyProblem("error", "duplicate_rule_id", rule_id, f"used by {count} rules")
                 for rule_id, count in seen.items() if count > 1]
    for segment in SEGMENTS:
        if not any(r.rule_id == f"{segment}/default" and r.treatments for r in rules):
            problems.append(PolicyProblem("error", "missing_default", f"{segment}/default",
                                          f"segment {segment} has no default plan"))
    for code, treatment in treatments.items():
        if treatment.channel not in CHANNELS:
            problems.append(PolicyProblem("error", "bad_channel", code,
                                          f"channel {treatment.channel!r} is not one of {', '.join(CHANNELS)}"))
        if treatment.fallback and treatment.fallback not in treatments:
            problems.append(PolicyProblem("error", "unknown_treatment", code,
                                          f"fallback {treatment.fallback!r} is not in the catalogue"))
        unknown_keys = sorted(set(treatment.eligibility) - set(ELIGIBILITY_KEYS))
        if unknown_keys:
            problems.append(PolicyProblem("error", "unknown_eligibility", code,
                                          f"unknown eligibility key(s) {', '.join(unknown_keys)}"))
    for position, rule in enumerate(rules):
        problems += _rule_problems(rule, treatments, known_sub_reasons)
        earlier = rules[:position]
        shadow = next((q for q in earlier if _covers(q, rule)), None)
        if shadow is not None:
            problems.append(PolicyProblem("warning", "matches_nobody", rule.rule_id,
                                          f"every customer it covers is taken first by {shadow.rule_id}"))
            continue
        for other in earlier:
            # an earlier rule inside this one is a deliberate exception; a partial overlap is ambiguous
            partial = _overlaps(other, rule) and not _covers(rule, other)
            explicit = "/" not in other.rule_id and "/" not in rule.rule_id
            if partial and explicit and set(other.treatments) != set(rule.treatments):
                problems.append(PolicyProblem(
                    "warning", "conflict", rule.rule_id,
                    f"overlaps {other.rule_id} with different treatments; {other.rule_id} wins by order"))
    return problems


def action_policy_from_mapping(raw: Mapping[str, Any], known_sub_reasons: Mapping[str, frozenset[str]] | None = None,
                               where: str = "policy") -> ActionPolicy:
    """Return the checked policy of a parsed YAML mapping; raise ValueError listing every error."""
    if not isinstance(raw, Mapping) or "version" not in raw or "segments" not in raw:
        raise ValueError(f"{where} needs 'version' and 'segments'")
    treatments = {str(code): _treatment(str(code), body or {}) for code, body in (raw.get("treatments") or {}).items()}
    rules = policy_rules(raw)
    experiment = raw.get("experiment") or {}
    control_treatments = tuple(experiment.get("control_treatments") or ())
    problems = policy_problems(rules, treatments, known_sub_reasons)
    problems += [PolicyProblem("error", "unknown_treatment", "experiment", f"control treatment {code!r} unknown")
                 for code in control_treatments if code not in treatments]
    caps = {str(name): float((body or {}).get("nightly_limit", 0)) for name, body in
            (raw.get("cost_caps") or {}).items()}
    problems += [PolicyProblem("error", "unknown_cost_cap", t.code, f"cost cap {t.cost_cap!r} is not defined")
                 for t in treatments.values() if t.cost_cap and t.cost_cap not in caps]
    shares = {str(k): float(v) for k, v in (experiment.get("control_share") or {}).items()}
    problems += [PolicyProblem("error", "bad_control_share", segment, f"share {share} is not within [0, 1)")
                 for segment, share in shares.items() if not 0 <= share < 1]
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        raise ValueError(f"{where} has {len(errors)} error(s):\n" + "\n".join(f"  {p}" for p in errors))
    for problem in problems:
        log.warning("policy %s: %s", raw["version"], problem)
    return ActionPolicy(
        version=str(raw["version"]), currency=str(raw.get("currency", "")), rules=tuple(rules),
        treatments=treatments, verified_hardship_reasons=frozenset(raw.get("verified_hardship_reasons") or ()),
        cost_caps=caps, control_share=shares, control_treatments=control_treatments,
        salt=str(experiment.get("salt", "")), problems=tuple(problems),
        segment_labels={str(k): dict(v or {}) for k, v in (raw.get("segment_labels") or {}).items()},
    )


def load_action_policy(path: Path | str | None = None,
                       known_sub_reasons: Mapping[str, frozenset[str]] | None = None) -> ActionPolicy:
    """Return the checked action policy of ``path`` (default: the packaged ``insights/policy.yaml``)."""
    chosen = Path(path) if path else POLICY_PATH
    if not chosen.is_file():
        raise FileNotFoundError(f"policy file not found: {chosen}")
    return action_policy_from_mapping(yaml.safe_load(chosen.read_text(encoding="utf-8")), known_sub_reasons,
                                      str(chosen))


def taxonomy_sub_reasons(sub_reasons: pd.DataFrame) -> dict[str, frozenset[str]]:
    """Return the taxonomy's sub-reasons per intent (from ``Taxonomy.sub_reasons``)."""
    return {str(intent): frozenset(group["sub_reason"]) for intent, group in sub_reasons.groupby("intent")}


# --- per customer ----------------------------------------------------------------------------------


def matching_rule(segment: str, sub_reason: str, days_past_due: int, policy: ActionPolicy) -> Rule:
    """Return the first rule of the policy that matches the customer (every segment has a default)."""
    for rule in policy.rules:
        if rule.matches(segment, sub_reason, days_past_due):
            return rule
    raise ValueError(f"no rule matches segment {segment!r}")


def control_bucket(customer_id: str, salt: str) -> float:
    """Return a number in [0, 1) fixed by the customer id and salt (the first 8 bytes of a SHA-256)."""
    digest = hashlib.sha256(f"{salt}:{customer_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def is_control(customer_id: str, segment: str, policy: ActionPolicy) -> bool:
    """Return True when the customer is held out as control for their segment."""
    return control_bucket(customer_id, policy.salt) < policy.control_share.get(segment, 0.0)


def _is_verified_hardship(row: Mapping[str, Any], policy: ActionPolicy) -> bool:
    return (row.get("segment") == "hardship" and row.get("behaviour_signal") == "hardship"
            and row.get("call_intent") == "hardship" and row.get("sub_reason") in policy.verified_hardship_reasons)


def ineligibility(treatment: Treatment, row: Mapping[str, Any], policy: ActionPolicy) -> str | None:
    """Return why the customer may not get ``treatment`` (None when eligible)."""
    rules = treatment.eligibility
    months = int(row.get("clean_history_months") or 0)
    dpd = int(row.get("days_past_due") or 0)
    if "min_clean_history_months" in rules and months < int(rules["min_clean_history_months"]):
        return f"clean history {months} < {int(rules['min_clean_history_months'])} months"
    if rules.get("verified_hardship") and not _is_verified_hardship(row, policy):
        return "hardship reason not verified (call and repayment behaviour must both show it)"
    if "min_days_past_due" in rules and dpd < int(rules["min_days_past_due"]):
        return f"{dpd} days past due < {int(rules['min_days_past_due'])}"
    if "max_days_past_due" in rules and dpd > int(rules["max_days_past_due"]):
        return f"{dpd} days past due > {int(rules['max_days_past_due'])}"
    return None


def treatment_cost(treatment: Treatment, amount_overdue: float) -> float:
    """Return the estimated cost of offering ``treatment`` (e.g. the interest it waives)."""
    if not treatment.cost_cap:
        return 0.0
    percent = float(treatment.params.get("percent", 100)) / 100
    return round(max(0.0, amount_overdue) * treatment.interest_share_of_overdue * percent, 2)


def _eligible_treatments(planned: Sequence[str], row: Mapping[str, Any], policy: ActionPolicy
                         ) -> tuple[list[str], list[str]]:
    kept: list[str] = []
    dropped: list[str] = []
    for code in planned:
        why = ineligibility(policy.treatments[code], row, policy)
        if why is None:
            kept.append(code)
            continue
        dropped.append(f"{code}: {why}")
        fallback = policy.treatments[code].fallback
        if fallback and fallback not in planned and fallback not in kept and \
                ineligibility(policy.treatments[fallback], row, policy) is None:
            kept.append(fallback)
    return kept, dropped


class _ActionMaker:
    """Makes customer actions under one policy, each distinct case worked out once.

    The rule depends on (segment, sub-reason, days past due) only, the eligible treatments on (rule, clean
    history months, days past due, verified hardship) only: a night has few distinct cases.
    """

    def __init__(self, policy: ActionPolicy) -> None:
        self.policy = policy
        self._rules: dict[tuple[str, str, int], Rule] = {}
        self._eligible: dict[tuple[Any, ...], tuple[list[str], list[str]]] = {}

    def _rule(self, segment: str, sub_reason: str, dpd: int) -> Rule:
        key = (segment, sub_reason, dpd)
        if key not in self._rules:
            self._rules[key] = matching_rule(segment, sub_reason, dpd, self.policy)
        return self._rules[key]

    def _eligible_treatments(self, rule: Rule, row: Mapping[str, Any], dpd: int) -> tuple[list[str], list[str]]:
        # ineligibility() reads nothing of the row but these
        key = (rule.treatments, int(row.get("clean_history_months") or 0), dpd,
               _is_verified_hardship(row, self.policy))
        if key not in self._eligible:
            self._eligible[key] = _eligible_treatments(list(rule.treatments), row, self.policy)
        return self._eligible[key]

    def action(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """Return :func:`customer_action` of ``row``."""
        policy = self.policy
        segment, sub_reason = str(row["segment"]), str(row.get("sub_reason") or "")
        dpd = int(row.get("days_past_due") or 0)
        rule = self._rule(segment, sub_reason, dpd)
        why = f"{rule.why} (segment {segment}" + (f", sub-reason {sub_reason}" if sub_reason else "") + \
            f", {dpd} days past due)"
        group = "control" if is_control(str(row["customer_id"]), segment, policy) else "treatment"
        planned = list(rule.treatments)
        if group == "control":
            treatments, dropped = list(policy.control_treatments), [f"{code}: held out as control" for code in planned]
        else:
            treatments, dropped = self._eligible_treatments(rule, row, dpd)
        amount = float(row.get("amount_overdue") or 0.0)
        costed = [policy.treatments[code] for code in treatments if policy.treatments[code].cost_cap]
        cost = sum(treatment_cost(t, amount) for t in costed)
        uplift = sum(t.expected_cure_uplift for t in costed)
        benefit = float(row.get("confidence") or 0.0) * amount * uplift - cost if costed else 0.0
        return {
            "customer_id": row["customer_id"], "segment": segment, "sub_reason": sub_reason,
            "rule_id": rule.rule_id, "rule_why": why, "experiment_group": group,
            "planned_treatments": ";".join(planned), "treatments": ";".join(treatments),
            "dropped_treatments": " | ".join(dropped), "cost": round(cost, 2), "expected_benefit": round(benefit, 2),
            "cost_rank": None, "cap_status": "offered" if costed else "",
        }


def customer_action(row: Mapping[str, Any], policy: ActionPolicy) -> dict[str, Any]:
    """Return one customer's action before the cost cap: rule, group, treatments, dropped ones, cost, benefit."""
    return _ActionMaker(policy).action(row)


def with_cost_caps(actions: pd.DataFrame, policy: ActionPolicy) -> pd.DataFrame:
    """Return the actions with every nightly cap respected.

    Per cap, customers with a costed treatment are ranked by expected benefit (ties: customer id); offers are
    made in rank order while they fit in what is left of the cap; the others lose the costed treatment and are
    marked ``excluded_by_cap``.
    """
    result = actions.copy()
    for cap, limit in policy.cost_caps.items():
        codes = {code for code, t in policy.treatments.items() if t.cost_cap == cap}
        texts = result["treatments"]
        holding = [text for text in texts.unique() if codes & set(str(text).split(";"))]
        ranked = result[texts.isin(holding)].sort_values(["expected_benefit", "customer_id"], ascending=[False, True])
        left = limit
        excluded: list[Any] = []
        kept_treatments: list[str] = []
        notes: list[str] = []
        for rank, (index, cost, text, dropped) in enumerate(zip(
                ranked.index, ranked["cost"].tolist(), ranked["treatments"].tolist(),
                ranked["dropped_treatments"].tolist(), strict=True), start=1):
            if cost <= left:
                left -= cost
                continue
            kept = [c for c in str(text).split(";") if c not in codes]
            lost = [c for c in str(text).split(";") if c in codes]
            note = " | ".join(f"{code}: nightly {cap} cap of {limit:g} reached (rank {rank})" for code in lost)
            excluded.append(index)
            kept_treatments.append(";".join(kept))
            notes.append(" | ".join(x for x in (dropped, note) if x))
        result.loc[ranked.index, "cost_rank"] = range(1, len(ranked) + 1)
        if excluded:
            result.loc[excluded, "treatments"] = kept_treatments
            result.loc[excluded, "dropped_treatments"] = notes
            result.loc[excluded, "cap_status"] = "excluded_by_cap"
            result.loc[excluded, "cost"] = 0.0
        log.info("cost cap %s: %d offered for %.2f of %.2f, %d excluded", cap,
                 int((result.loc[ranked.index, "cap_status"] == "offered").sum()), limit - left, limit,
                 int((result.loc[ranked.index, "cap_status"] == "excluded_by_cap").sum()))
    return result


_ACTION_INPUTS = ("customer_id", "segment", "sub_reason", "confidence", "days_past_due", "amount_overdue",
                  "clean_history_months", "call_intent", "behaviour_signal")


def care_actions(customers: pd.DataFrame, policy: ActionPolicy) -> pd.DataFrame:
    """Return one action row per segmented customer (columns :data:`ACTION_COLUMNS`), caps applied.

    ``customers`` needs customer_id, segment, sub_reason, confidence, days_past_due, amount_overdue and, for
    eligibility, clean_history_months, call_intent and behaviour_signal.
    """
    used = [column for column in _ACTION_INPUTS if column in customers.columns]
    maker = _ActionMaker(policy)
    rows = [maker.action(dict(zip(used, values, strict=True)))
            for values in zip(*(customers[column].tolist() for column in used), strict=True)]
    actions = pd.DataFrame(rows, columns=ACTION_COLUMNS).astype({"cost_rank": "Int64"})
    if actions.empty:
        return actions
    return with_cost_caps(actions.sort_values("customer_id").reset_index(drop=True), policy)


def rules_fired(actions: pd.DataFrame, policy: ActionPolicy) -> pd.DataFrame:
    """Return per rule how many customers it took tonight (zero rows included: the rules that matched nobody)."""
    counts = actions["rule_id"].value_counts() if len(actions) else pd.Series(dtype="int64")
    return pd.DataFrame({"rule_id": [r.rule_id for r in policy.rules],
                         "customers": [int(counts.get(r.rule_id, 0)) for r in policy.rules]})
