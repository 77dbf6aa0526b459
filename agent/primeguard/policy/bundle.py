"""Compile an in-memory bundle of policy files (relative path -> text) into a :class:`PolicySet`.

Pure: no file access. :mod:`primeguard.policy.loader` reads directories into bundles.

Three passes, each reporting ``file:line: what is wrong``:

1. **parse** every file with the strict, line-tracking YAML reader;
2. **validate** each file against the model for its ``kind`` (pydantic, unknown keys rejected);
   error locations are mapped back to lines through the parsed node tree;
3. **integrity**: ids unique across the set, every reference (file ids, tiers, clients) resolves,
   no duplicate allowlist destination, exactly one ``risk_limits`` file.

Only then is the set compiled. Validation happens before anything can become active (the
``propose``/``approve`` flow loads a version before storing it), as in zodiac-roles' integrity pass.

The content hash is SHA-256 over a canonical JSON rendering of the policy files (relative path ->
text, line endings normalised), so the same files hash the same on every machine and the store's
``sha256(content)`` of :func:`canonical_content` equals :attr:`PolicySet.hash`.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from types import MappingProxyType
from typing import Any

from eth_utils.address import to_checksum_address
from pydantic import BaseModel, ValidationError

from primeguard.domain.errors import PolicyLoadError
from primeguard.domain.model import Capability, VenueKind
from primeguard.domain.money import checksum_or_none
from primeguard.policy.policyset import (
    BUILTIN_BLIND,
    BUILTIN_DEFAULT_DENY,
    BUILTIN_INPUT,
    BUILTIN_NO_POLICY,
    AllowEntry,
    AllowKey,
    ApprovalRuleC,
    CapabilityRuleC,
    CompiledScope,
    DefiClassC,
    GuardsC,
    KnownDelegateC,
    LadderPlanC,
    LimitRuleC,
    Origin,
    PlanStepC,
    PolicySet,
    RuleInfo,
    RuleKind,
)
from primeguard.policy.schema import (
    CAPABILITY_SETS,
    KINDS,
    MODEL_BY_KIND,
    AllowlistFile,
    ApprovalsFile,
    CapabilityRulesFile,
    HaircutsFile,
    LadderPlanFile,
    PlanStep,
    RiskLimitsFile,
    Scope,
    WithdrawalLimitsFile,
    field_vocabulary,
)
from primeguard.policy.yamlsrc import Path_, Source, YamlSourceError, parse

CANONICAL_FORMAT = "primeguard-policy/1"
TEST_SUFFIXES = ("_test.yaml", "_test.yml")
_VOCABULARY = field_vocabulary()


class PolicyLoadErrors(PolicyLoadError):
    """The first load problem as the message; ``errors`` holds every problem found."""

    def __init__(self, message: str, *, file: str, line: int | None, errors: list[PolicyLoadError]) -> None:
        super().__init__(message, file=file, line=line)
        self.errors = errors


def is_policy_file(name: str) -> bool:
    return name.endswith((".yaml", ".yml")) and not name.endswith(TEST_SUFFIXES)


def is_test_file(name: str) -> bool:
    return name.endswith(TEST_SUFFIXES)


def canonical_content(files: Mapping[str, str]) -> str:
    """The text whose SHA-256 is the policy version's hash (see module docstring)."""
    normalised = {name: text.replace("\r\n", "\n") for name, text in sorted(files.items())}
    return json.dumps({"format": CANONICAL_FORMAT, "files": normalised}, sort_keys=True, ensure_ascii=False,
                      separators=(",", ":"))


def content_hash(files: Mapping[str, str]) -> str:
    return hashlib.sha256(canonical_content(files).encode("utf-8")).hexdigest()


def files_from_canonical(content: str) -> dict[str, str]:
    """Inverse of :func:`canonical_content` (for versions kept as one text, e.g. in the database)."""
    data = json.loads(content)
    if not isinstance(data, dict) or data.get("format") != CANONICAL_FORMAT or not isinstance(data.get("files"), dict):
        raise PolicyLoadError("not a canonical policy bundle", file="<bundle>")
    return {str(k): str(v) for k, v in data["files"].items()}


def load_bundle(files: Mapping[str, str], *, root: str = "") -> PolicySet:
    """Load a policy from relative path -> text.

    Raises:
        PolicyLoadErrors: the first problem (ordered by file and line); ``.errors`` lists all.
    """
    policy, errors = check_bundle(files, root=root)
    if errors or policy is None:
        first = errors[0]
        more = f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
        raise PolicyLoadErrors(first.reason + more, file=first.file, line=first.line, errors=errors)
    return policy


def check_bundle(files: Mapping[str, str], *, root: str = "") -> tuple[PolicySet | None, list[PolicyLoadError]]:
    """Like :func:`load_bundle` but returns every problem instead of raising (for ``policy lint``)."""
    ctx = _Context(root=root)
    for rel in sorted(files):
        ctx.parse_file(rel, files[rel])
    if not ctx.errors:
        ctx.integrity()
    if ctx.errors:
        return None, sorted(ctx.errors, key=lambda e: (e.file, e.line or 0))
    return ctx.compile(files), []


def display_name(root: str, rel: str) -> str:
    return f"{root.rstrip('/')}/{rel}" if root else rel


@dataclass
class _Parsed:
    rel: str
    source: Source
    kind: str
    model: Any


@dataclass
class _Context:
    root: str
    errors: list[PolicyLoadError] = field(default_factory=list)
    parsed: list[_Parsed] = field(default_factory=list)
    by_id: dict[str, _Parsed] = field(default_factory=dict)

    # --- pass 1 and 2 --------------------------------------------------------------------------

    def name(self, rel: str) -> str:
        return display_name(self.root, rel)

    def error(self, rel: str, line: int | None, message: str) -> None:
        self.errors.append(PolicyLoadError(message, file=self.name(rel), line=line))

    def at(self, p: _Parsed, path: Path_, message: str) -> None:
        self.error(p.rel, p.source.line_of(path), message)

    def parse_file(self, rel: str, text: str) -> None:
        try:
            source = parse(self.name(rel), text)
        except YamlSourceError as exc:
            self.error(rel, exc.line, exc.message)
            return
        data = source.data
        if not isinstance(data, dict):
            self.error(rel, 1, f"a policy file must be a mapping with version/kind/id, not a {type(data).__name__}")
            return
        kind = data.get("kind")
        if kind is None:
            self.error(rel, 1, f"missing required key 'kind' (one of: {', '.join(KINDS)})")
            return
        if kind not in MODEL_BY_KIND:
            hint = difflib.get_close_matches(str(kind), KINDS, n=1)
            extra = f"; did you mean {hint[0]!r}?" if hint else ""
            self.error(rel, source.line_of(("kind",)), f"kind: unknown policy kind {kind!r} "
                       f"(one of: {', '.join(KINDS)}){extra}")
            return
        model_cls: type[BaseModel] = MODEL_BY_KIND[str(kind)]
        try:
            model = model_cls.model_validate(data)
        except ValidationError as exc:
            errs = exc.errors()
            locs = [tuple(e["loc"]) for e in errs]
            for err, loc in zip(errs, locs, strict=True):
                # pydantic adds a consequential "too short" on a container whose item failed;
                # report the item's own error only.
                if err.get("type") == "too_short" and any(o[: len(loc)] == loc and o != loc for o in locs):
                    continue
                self.error(rel, source.line_of_loc(loc), validation_message(err, loc))
            return
        p = _Parsed(rel, source, str(kind), model)
        fid: str = getattr(model, "id")  # noqa: B009 - every file model has a FileHeader id
        if fid in self.by_id:
            other = self.by_id[fid]
            self.at(p, ("id",), f"id: file id {fid!r} is already used by {self.name(other.rel)}:"
                    f"{other.source.line_of(('id',))}")
            return
        self.by_id[fid] = p
        self.parsed.append(p)

    # --- pass 3: integrity ---------------------------------------------------------------------

    def of_kind(self, kind: str) -> list[_Parsed]:
        return [p for p in self.parsed if p.kind == kind]

    def ref(self, p: _Parsed, path: Path_, target: str, kind: str) -> _Parsed | None:
        found = self.by_id.get(target)
        if found is None or found.kind != kind:
            known = [q.model.id for q in self.of_kind(kind)]
            what = f"a {found.kind} file" if found else "not defined"
            hint = difflib.get_close_matches(target, known, n=1)
            extra = f"; did you mean {hint[0]!r}?" if hint else ""
            self.at(p, path, f"{_dotted(path)}: unknown {kind} reference {target!r} ({what}; known: "
                    f"{', '.join(known) or 'none'}){extra}")
            return None
        return found

    def integrity(self) -> None:
        risk_files = self.of_kind("risk_limits")
        if len(risk_files) != 1:
            if not risk_files:
                first = self.parsed[0].rel if self.parsed else "<policy>"
                self.error(first, 1, "the policy set needs exactly one risk_limits file (found none)")
            else:
                # We cannot know which one was meant: name every one of them.
                for p in risk_files:
                    others = ", ".join(self.name(q.rel) for q in risk_files if q is not p)
                    self.at(p, ("kind",), f"kind: a second risk_limits file (also: {others}); the policy set "
                            f"needs exactly one")
            return
        risk = risk_files[0]
        rmodel: RiskLimitsFile = risk.model
        self.ref(risk, ("haircuts",), rmodel.haircuts, "haircuts")
        tiers = _unique_ids(self, risk, ("tiers",), [t.id for t in rmodel.tiers], "tier")
        if rmodel.default_tier not in tiers:
            self.at(risk, ("default_tier",), f"default_tier: unknown tier {rmodel.default_tier!r} "
                    f"(tiers: {', '.join(tiers)})")
        clients = _unique_ids(self, risk, ("clients",), [c.id for c in rmodel.clients], "client")
        for i, t in enumerate(rmodel.tiers):
            problem = t.ladder.order_problem()
            if problem is not None:
                band, message = problem
                self.at(risk, ("tiers", i, "ladder", band), f"tiers.{i}.ladder.{band}: {message}")
        for i, c in enumerate(rmodel.clients):
            if c.tier not in tiers:
                self.at(risk, ("clients", i, "tier"), f"clients.{i}.tier: unknown tier {c.tier!r} for client "
                        f"{c.id!r} (tiers: {', '.join(tiers)})")

        if rmodel.liquidity is not None:
            known = {"stable", "major", "alt", *rmodel.liquidity.classes}
            for asset, cls in rmodel.liquidity.assets.items():
                if cls not in known:
                    self.at(risk, ("liquidity", "assets", asset), f"liquidity.assets.{asset}: unknown liquidity "
                            f"class {cls!r} (classes: {', '.join(sorted(known))})")
        _unique_ids(self, risk, ("venue_limits",), [v.venue for v in rmodel.venue_limits], "venue limit")
        for hp in self.of_kind("haircuts"):
            hmodel: HaircutsFile = hp.model
            _unique_ids(self, hp, ("assets",), [a.asset.upper() for a in hmodel.assets], "asset")
            _unique_ids(self, hp, ("defi_classes",), [c.name for c in hmodel.defi_classes], "DeFi haircut class")

        # Rule ids (entries, guards, limits, approvals, capability rules) share one namespace with
        # file ids, so a decision's rule_ids are unambiguous. Duplicates are reported at every site.
        claims: dict[str, list[tuple[_Parsed, Path_]]] = {fid: [(p, ("id",))] for fid, p in self.by_id.items()}

        def claim(p: _Parsed, path: Path_, rid: str) -> None:
            claims.setdefault(rid, []).append((p, path))

        limits_files = self.of_kind("withdrawal_limits")
        if len(limits_files) > 1:
            for p in limits_files:
                others = ", ".join(self.name(q.rel) for q in limits_files if q is not p)
                self.at(p, ("kind",), f"kind: a second withdrawal_limits file (also: {others}); a policy set "
                        f"has at most one")
        for lp in limits_files[:1]:
            lmodel: WithdrawalLimitsFile = lp.model
            if lmodel.risk_limits != rmodel.id:
                self.ref(lp, ("risk_limits",), lmodel.risk_limits, "risk_limits")
            if lmodel.approvals is not None:
                self.ref(lp, ("approvals",), lmodel.approvals, "approvals")
            for i, aid in enumerate(lmodel.allowlists):
                self.ref(lp, ("allowlists", i), aid, "withdrawal_allowlist")
            for gname in ("price", "ladder", "ltv", "venue_whitelist", "financing", "stress"):
                gspec = getattr(lmodel.guards, gname)
                if gspec is not None:
                    claim(lp, ("guards", gname, "id"), gspec.id)
            for i, rule in enumerate(lmodel.limits):
                claim(lp, ("limits", i, "id"), rule.id)
                self.scope_refs(lp, ("limits", i, "scope"), rule.scope, tiers, clients)

        for ap in self.of_kind("approvals"):
            amodel: ApprovalsFile = ap.model
            for i, arule in enumerate(amodel.rules):
                claim(ap, ("rules", i, "id"), arule.id)
                self.scope_refs(ap, ("rules", i, "scope"), arule.scope, tiers, clients)
                if arule.approvers is not None:
                    _unique_ids(self, ap, ("rules", i, "approvers"), list(arule.approvers), "approver")

        seen_keys: dict[AllowKey, list[tuple[_Parsed, Path_]]] = {}
        for wp in self.of_kind("withdrawal_allowlist"):
            wmodel: AllowlistFile = wp.model
            for i, e in enumerate(wmodel.entries):
                path: Path_ = ("entries", i)
                claim(wp, (*path, "id"), e.id)
                if e.client not in clients:
                    self.at(wp, (*path, "client"), f"entries.{i}.client: unknown client {e.client!r} "
                            f"(declare it under clients: in {self.name(risk.rel)})")
                is_hex = e.address.lower().startswith("0x")
                if e.venue is VenueKind.EVM and not is_hex:
                    self.at(wp, (*path, "address"), f"entries.{i}.address: an evm entry needs a 0x address")
                address = normalise_address(e.address)
                for asset in e.asset_list:
                    key: AllowKey = (e.client, e.venue, e.chain, asset.upper(), address)
                    seen_keys.setdefault(key, []).append((wp, (*path, "address")))

        for key, sites in seen_keys.items():
            for p, path in sites if len(sites) > 1 else ():
                others = ", ".join(f"{self.name(q.rel)}:{q.source.line_of(qp)}" for q, qp in sites
                                   if not (q is p and qp == path)) or "this same entry (asset listed twice)"
                client, venue, chain, asset, address = key
                self.at(p, path, f"{_dotted(path[:-1])}: duplicate allowlist destination ({client}, {venue}, "
                        f"{chain}, {asset}, {address}) already at {others}")

        for cp in self.of_kind("capability_rules"):
            cmodel: CapabilityRulesFile = cp.model
            spender_keys = [f"{normalise_address(s.address)}@{s.chain or '*'}" for s in cmodel.known_spenders]
            _unique_ids(self, cp, ("known_spenders",), spender_keys, "known spender")
            delegate_keys = [f"{normalise_address(d.address)}@{d.chain or '*'}" for d in cmodel.known_delegates]
            _unique_ids(self, cp, ("known_delegates",), delegate_keys, "known delegate")
            for i, crule in enumerate(cmodel.rules):
                claim(cp, ("rules", i, "id"), crule.id)
                for j, cid in enumerate(crule.applies_to.clients or ()):
                    if cid not in clients:
                        self.at(cp, ("rules", i, "applies_to", "clients", j),
                                f"rules.{i}.applies_to.clients.{j}: unknown client {cid!r}")

        plan_files = self.of_kind("ladder_plan")
        if len(plan_files) > 1:
            for p in plan_files:
                others = ", ".join(self.name(q.rel) for q in plan_files if q is not p)
                self.at(p, ("kind",), f"kind: a second ladder_plan file (also: {others}); a policy set has at most one")
        for pp in plan_files[:1]:
            pmodel: LadderPlanFile = pp.model
            for spath, step in _plan_steps(pmodel):
                claim(pp, (*spath, "id"), step.id)
                for j, tier_name in enumerate(step.tiers):
                    if tier_name not in tiers:
                        self.at(pp, (*spath, "tiers", j), f"{_dotted((*spath, 'tiers', j))}: unknown tier "
                                f"{tier_name!r} (tiers: {', '.join(tiers)})")
                for j, client_name in enumerate(step.clients):
                    if client_name not in clients:
                        self.at(pp, (*spath, "clients", j), f"{_dotted((*spath, 'clients', j))}: unknown client "
                                f"{client_name!r}")
            for rung, steps in pmodel.rungs.items():
                seen: dict[tuple[str, frozenset[str], frozenset[str]], int] = {}
                for i, step in enumerate(steps):
                    same = (step.lever, frozenset(step.tiers), frozenset(step.clients))
                    if same in seen:
                        self.at(pp, ("rungs", rung, i, "lever"), f"rungs.{rung}.{i}.lever: lever {step.lever!r} is "
                                f"already planned at {rung} for the same clients (rungs.{rung}.{seen[same]})")
                    seen.setdefault(same, i)

        for rid, sites in claims.items():
            for p, path in sites if len(sites) > 1 else ():
                others = ", ".join(f"{self.name(q.rel)}:{q.source.line_of(qp)}" for q, qp in sites
                                   if not (q is p and qp == path))
                self.at(p, path, f"{_dotted(path)}: rule id {rid!r} is already used at {others}")

    def scope_refs(self, p: _Parsed, path: Path_, scope: Scope, tiers: list[str], clients: list[str]) -> None:
        for j, t in enumerate(scope.tiers or ()):
            if t not in tiers:
                self.at(p, (*path, "tiers", j), f"{_dotted((*path, 'tiers', j))}: unknown tier {t!r} "
                        f"(tiers: {', '.join(tiers)})")
        for j, c in enumerate(scope.clients or ()):
            if c not in clients:
                self.at(p, (*path, "clients", j), f"{_dotted((*path, 'clients', j))}: unknown client {c!r}")

    # --- compile -------------------------------------------------------------------------------

    def origin(self, p: _Parsed, path: Path_) -> Origin:
        return Origin(self.name(p.rel), p.source.line_of(path))

    def compile(self, files: Mapping[str, str]) -> PolicySet:
        risk_p = self.of_kind("risk_limits")[0]
        risk: RiskLimitsFile = risk_p.model
        hair_p = self.by_id[risk.haircuts]
        hair: HaircutsFile = hair_p.model
        rules: dict[str, RuleInfo] = {}

        def info(rid: str, kind: RuleKind, origin: Origin, description: str = "", shadow: bool = False) -> None:
            rules[rid] = RuleInfo(rid, kind, origin, description, shadow)

        builtin_origin = Origin("<builtin>", 0)
        info(BUILTIN_DEFAULT_DENY, "builtin", builtin_origin, "withdrawals are denied unless an allowlist entry allows")
        info(BUILTIN_INPUT, "builtin", builtin_origin, "amount, address and asset must be valid")
        info(BUILTIN_BLIND, "builtin", builtin_origin, "a client that cannot be fully seen cannot withdraw")
        info(BUILTIN_NO_POLICY, "builtin", builtin_origin, "no withdrawal_limits file: nothing is allowed")
        for p in self.parsed:
            info(p.model.id, "file", self.origin(p, ("id",)), p.model.description)
        for i, t in enumerate(risk.tiers):
            rules[f"tier:{t.id}"] = RuleInfo(f"tier:{t.id}", "tier", self.origin(risk_p, ("tiers", i)), t.description)

        entries: list[AllowEntry] = []
        allowlist: dict[AllowKey, AllowEntry] = {}
        guards: GuardsC | None = None
        limits: list[LimitRuleC] = []
        approvals: list[ApprovalRuleC] = []
        limits_files = self.of_kind("withdrawal_limits")
        if limits_files:
            lp = limits_files[0]
            lm: WithdrawalLimitsFile = lp.model
            g = lm.guards
            guards = GuardsC(
                file_id=lm.id, price_id=g.price.id, price_max_age_s=g.price.max_age_s,
                ladder_id=g.ladder.id, allow_states=frozenset(g.ladder.allow_states), ladder_shadow=g.ladder.shadow,
                ltv_id=g.ltv.id, ltv_max=g.ltv.max_post_ltv, ltv_shadow=g.ltv.shadow,
                whitelist_id=g.venue_whitelist.id, unverifiable_venues=frozenset(g.venue_whitelist.unverifiable_venues),
                whitelist_shadow=g.venue_whitelist.shadow,
                financing_id=g.financing.id if g.financing else None,
                financing_shadow=g.financing.shadow if g.financing else False,
                stress_id=g.stress.id if g.stress else None,
                stress_shadow=g.stress.shadow if g.stress else False,
                screening_id=g.screening.id if g.screening else None,
                screening_advisory=frozenset(g.screening.advisory) if g.screening else frozenset(),
            )
            for gname in ("price", "ladder", "ltv", "venue_whitelist", "financing", "stress", "screening"):
                gspec = getattr(g, gname)
                if gspec is not None:
                    info(gspec.id, "guard", self.origin(lp, ("guards", gname)), f"{gname} guard",
                         getattr(gspec, "shadow", False))
            for i, r in enumerate(lm.limits):
                o = self.origin(lp, ("limits", i))
                limits.append(LimitRuleC(
                    r.id, r.description, _scope(r.scope), r.per_tx_usd,
                    r.velocity.window_s if r.velocity else None, r.velocity.max_usd if r.velocity else None,
                    r.shadow, o,
                    window=timedelta(seconds=r.velocity.window_s) if r.velocity else None,
                    per_tx_text=f"${r.per_tx_usd:,.2f}" if r.per_tx_usd is not None else "",
                    velocity_text=f"${r.velocity.max_usd:,.2f}" if r.velocity else "",
                    window_text=window_text(r.velocity.window_s) if r.velocity else "",
                ))
                info(r.id, "limit", o, r.description, r.shadow)
            if lm.approvals is not None:
                ap = self.by_id[lm.approvals]
                am: ApprovalsFile = ap.model
                for i, a in enumerate(am.rules):
                    o = self.origin(ap, ("rules", i))
                    approvals.append(ApprovalRuleC(
                        a.id, a.description, a.above_usd, a.required, frozenset(a.roles),
                        frozenset(a.approvers) if a.approvers is not None else None, _scope(a.scope), a.shadow, o,
                        roles_text="/".join(sorted(a.roles)), above_text=f"${a.above_usd:,.0f}",
                    ))
                    info(a.id, "approval", o, a.description, a.shadow)
            for aid in lm.allowlists:
                wp = self.by_id[aid]
                wm: AllowlistFile = wp.model
                lock = timedelta(seconds=wm.timelock_s)
                for i, e in enumerate(wm.entries):
                    o = self.origin(wp, ("entries", i))
                    address = normalise_address(e.address)
                    for asset in e.asset_list:
                        entry = AllowEntry(
                            e.id, wm.id, e.client, e.venue, e.chain, asset.upper(), address, e.address, e.memo,
                            e.label, e.added_by, e.added_at, e.added_at + lock, e.expires_at, o,
                            f"the destination is allowlisted by entry {e.id} ({e.label}, added by {e.added_by}, "
                            f"until {e.expires_at.date().isoformat()})",
                        )
                        entries.append(entry)
                        allowlist[entry.key] = entry
                    info(e.id, "allowlist_entry", o, e.label)
        # Entries of allowlists no withdrawal_limits file uses are still listed (lint, diff), not indexed.
        used = set(limits_files[0].model.allowlists) if limits_files else set()
        for wp in self.of_kind("withdrawal_allowlist"):
            if wp.model.id in used:
                continue
            for i, e in enumerate(wp.model.entries):
                info(e.id, "allowlist_entry", self.origin(wp, ("entries", i)), e.label)

        cap_rules: list[CapabilityRuleC] = []
        for cp in self.of_kind("capability_rules"):
            cm: CapabilityRulesFile = cp.model
            spenders = frozenset((normalise_address(s.address), s.chain) for s in cm.known_spenders)
            for i, c in enumerate(cm.rules):
                o = self.origin(cp, ("rules", i))
                names = c.forbid or c.allow_only or ()
                caps: set[Capability] = set()
                for n in names:
                    caps |= CAPABILITY_SETS[n] if n in CAPABILITY_SETS else {Capability(n)}
                if c.allow_only is not None:
                    caps = set(Capability) - caps  # allow_only: everything else is forbidden
                modules = frozenset(normalise_address(m) for m in (c.safe_allowed_modules or ()))
                cap_rules.append(CapabilityRuleC(c, frozenset(caps), spenders, modules, o))
                info(c.id, "capability", o, c.description, c.shadow)

        plan: LadderPlanC | None = None
        for pp in self.of_kind("ladder_plan")[:1]:
            steps: list[PlanStepC] = []
            for spath, step in _plan_steps(pp.model):
                o = self.origin(pp, spath)
                rung = str(spath[1]) if spath[0] == "rungs" else "capability"
                steps.append(PlanStepC(step.id, rung, step.lever, step.mode, frozenset(step.tiers),
                                       frozenset(step.clients), o, step.description))
                info(step.id, "plan_step", o, step.description or steps[-1].describe(), step.mode == "shadow")
            plan = LadderPlanC(pp.model.id, tuple(steps))

        haircuts = {a.asset.upper(): a.haircut for a in hair.assets}
        defi_classes = {c.name: DefiClassC(c.name, c.haircut, self.origin(hair_p, ("defi_classes", i, "name")), c.note)
                        for i, c in enumerate(hair.defi_classes)}
        delegates = tuple(KnownDelegateC(normalise_address(d.address), d.chain, d.label,
                                         self.origin(cp, ("known_delegates", i)))
                          for cp in self.of_kind("capability_rules")
                          for i, d in enumerate(cp.model.known_delegates))
        return PolicySet(
            hash=content_hash(files),
            files=MappingProxyType(dict(files)),
            sources=MappingProxyType({p.rel: p.source for p in self.parsed}),
            file_ids=MappingProxyType({p.model.id: p.rel for p in self.parsed}),
            kinds=MappingProxyType({p.model.id: p.kind for p in self.parsed}),
            models=MappingProxyType({p.model.id: p.model for p in self.parsed}),
            risk=risk,
            tiers=MappingProxyType({t.id: t for t in risk.tiers}),
            client_tiers=MappingProxyType({c.id: c.tier for c in risk.clients}),
            haircuts=MappingProxyType(haircuts),
            low_liquidity_assets=frozenset(a.asset.upper() for a in hair.assets if a.low_liquidity),
            default_haircut=hair.default,
            known_assets=frozenset(haircuts),
            entries=tuple(entries),
            allowlist=MappingProxyType(allowlist),
            guards=guards,
            limits=tuple(limits),
            approval_rules=tuple(approvals),
            capability_rules=tuple(cap_rules),
            rules=MappingProxyType(rules),
            root=self.root,
            defi_classes=MappingProxyType(defi_classes),
            known_delegates=delegates,
            plan=plan,
        )


def _plan_steps(plan: LadderPlanFile) -> list[tuple[Path_, PlanStep]]:
    """Every step of a plan file with its path: rungs in ladder order, then capability steps."""
    order = ("warn", "margin_call", "halt", "liquidate")
    out: list[tuple[Path_, PlanStep]] = []
    for rung in sorted(plan.rungs, key=order.index):
        out.extend((("rungs", rung, i), step) for i, step in enumerate(plan.rungs[rung]))
    out.extend((("capability", i), step) for i, step in enumerate(plan.capability))
    return out


def window_text(seconds: int) -> str:
    """A velocity window for people: 86400 -> "1d", 3600 -> "1h"."""
    if seconds % 86400 == 0:
        return f"{seconds // 86400}d"
    if seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    return f"{seconds}s"


def normalise_address(address: str) -> str:
    """EVM hex addresses in checksum form (the allowlist key); anything else unchanged."""
    if address.lower().startswith("0x") and len(address) == 42:
        return checksum_or_none(address.lower()) or str(to_checksum_address(address))  # the latter raises: not hex
    return address


def _scope(scope: Scope) -> CompiledScope:
    return CompiledScope(
        clients=frozenset(scope.clients) if scope.clients is not None else None,
        tiers=frozenset(scope.tiers) if scope.tiers is not None else None,
        venues=frozenset(scope.venues) if scope.venues is not None else None,
        chains=frozenset(scope.chains) if scope.chains is not None else None,
        assets=frozenset(a.upper() for a in scope.assets) if scope.assets is not None else None,
    )


def _unique_ids(ctx: _Context, p: _Parsed, path: Path_, ids: list[str], what: str) -> list[str]:
    seen: dict[str, int] = {}
    for i, x in enumerate(ids):
        if x in seen:
            ctx.at(p, (*path, i), f"{_dotted((*path, i))}: duplicate {what} {x!r} (first at line "
                   f"{p.source.line_of((*path, seen[x]))})")
        else:
            seen[x] = i
    return list(seen)


def _dotted(path: Path_) -> str:
    return ".".join(str(x) for x in path) or "(top level)"


def validation_message(err: Any, loc: tuple[Any, ...], vocabulary: frozenset[str] = _VOCABULARY) -> str:
    """A pydantic error as one readable sentence, prefixed with the dotted field path."""
    kind = err.get("type", "")
    where = ".".join(str(x) for x in loc if not (isinstance(x, str) and ("[" in x or x.startswith("function-"))))
    where = where or "(top level)"
    if kind == "extra_forbidden":
        key = str(loc[-1]) if loc else "?"
        hint = difflib.get_close_matches(key, sorted(vocabulary), n=1)
        extra = f"; did you mean {hint[0]!r}?" if hint else ""
        return f"{where}: unknown key {key!r}{extra}"
    if kind == "missing":
        return f"{where}: missing required key {str(loc[-1])!r}"
    msg = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
    value = err.get("input")
    if kind in ("decimal_parsing", "decimal_type", "int_parsing", "int_type", "bool_type", "bool_parsing",
                "datetime_parsing", "datetime_type", "timezone_aware", "float_parsing") and not isinstance(
            value, dict | list):
        shown = value.isoformat() if isinstance(value, date) else repr(value)
        msg = f"{msg} (got {shown})"
    return f"{where}: {msg}"


__all__ = [
    "CANONICAL_FORMAT",
    "PolicyLoadErrors",
    "canonical_content",
    "check_bundle",
    "content_hash",
    "files_from_canonical",
    "is_policy_file",
    "is_test_file",
    "load_bundle",
    "normalise_address",
]
