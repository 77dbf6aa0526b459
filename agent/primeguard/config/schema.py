"""Config schema (pydantic, unknown keys rejected).

Secrets are never inline in production: a :class:`SecretRef` names an environment variable or a
file. ``value`` exists for throwaway sandbox keys only and is refused when ``production: true``.

Every number is bounded: durations (``*_s``) are finite, positive where zero makes no sense and
capped at a sensible maximum per field; counts and sizes have a ceiling; NaN and infinity are
refused. Two holdings at the same place (wallet/vault at one chain and address, one CEX
sub-account, one dYdX address + subaccount) are refused: their collateral would count twice.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from pydantic import AwareDatetime, Field, field_validator, model_validator

from primeguard.config.alerts import AlertsConfig, EmailChannelConfig, SecretRefField
from primeguard.config.base import Identifier, SecretRef, Strict
from primeguard.domain.errors import InputError
from primeguard.domain.model import Holder, Loan, LoanEvent
from primeguard.domain.money import parse_address
from primeguard.risk.interest import InterestTerms, RateFixing, UtilizationCurve

MINUTE, HOUR, DAY = 60, 3600, 86400
MAX_CHAIN_ID = 4_611_686_018_427_387_867  # EIP-2294: the largest chain id wallets and nodes accept
MAX_DYDX_SUBACCOUNT = 128_000  # dYdX v4 subaccount numbers are 0..128000


class LocatedValueError(ValueError):
    """A cross-field problem that knows where it is: ``loc`` is a path below the model that raised
    it (``("wallets", 3, "address")``). The loader appends it to pydantic's location, so the error
    names the exact field and line instead of the model's first line."""

    def __init__(self, message: str, loc: tuple[str | int, ...]) -> None:
        super().__init__(message)
        self.loc = loc


def _checked_address(value: str) -> str:
    try:
        return parse_address(value)
    except InputError as exc:
        raise ValueError(str(exc)) from exc


class ChainConfig(Strict):
    id: Identifier
    chain_id: int = Field(gt=0, le=MAX_CHAIN_ID)
    rpc_url: str
    ws_url: str | None = None
    batch_reader: str | None = None  # BatchReader contract address (batch_mode deployed)
    # How reads are batched (primeguard.venues.evm.batch): auto = deployed BatchReader if configured,
    # else Multicall3, else BatchReader by eth_call state override, else one call per read.
    batch_mode: Literal["auto", "multicall3", "state_override", "deployed", "per_call"] = "auto"
    call_gas_cap: int = Field(default=30_000_000, gt=0, le=1_000_000_000)
    timeout_s: float = Field(default=5.0, gt=0, le=5 * MINUTE, allow_inf_nan=False)
    # Latest block older than this → the node is lagging: the chain is a blind spot. None for dev
    # chains that only mine on demand (anvil without --block-time).
    max_block_age_s: int | None = Field(default=120, gt=0, le=DAY)

    _addr = field_validator("batch_reader")(lambda v: None if v is None else _checked_address(v))

    @model_validator(mode="after")
    def _deployed_needs_reader(self) -> ChainConfig:
        if self.batch_mode == "deployed" and self.batch_reader is None:
            raise LocatedValueError("batch_mode deployed needs a batch_reader address", ("batch_mode",))
        return self


class TokenConfig(Strict):
    """An ERC-20 on one chain. ``asset`` is the priced asset (WETH → ETH)."""

    symbol: str
    chain: Identifier
    address: str
    decimals: int = Field(ge=0, le=77)
    asset: str

    _addr = field_validator("address")(_checked_address)


class FeedConfig(Strict):
    """A Chainlink-style USD feed for ``asset`` on ``chain``."""

    asset: str
    chain: Identifier
    address: str
    decimals: int = Field(ge=0, le=36)
    heartbeat_s: int = Field(gt=0, le=7 * DAY)

    _addr = field_validator("address")(_checked_address)


Money = Annotated[Decimal, Field(ge=0, le=Decimal(10) ** 15, allow_inf_nan=False)]
Rate = Annotated[Decimal, Field(ge=0, le=10, allow_inf_nan=False)]
UnitFraction = Annotated[Decimal, Field(ge=0, le=1, allow_inf_nan=False)]
COMPOUNDING_S: dict[str, int | None] = {"simple": None, "daily": DAY, "hourly": HOUR}


class LoanFlowConfig(Strict):
    """A draw or a repayment of ``amount`` (loan asset, > 0) at ``at``."""

    at: AwareDatetime
    amount: Annotated[Decimal, Field(gt=0, le=Decimal(10) ** 15, allow_inf_nan=False)]


class FixedInterestConfig(Strict):
    """A fixed annual rate (ACT/365)."""

    kind: Literal["fixed"]
    rate: Rate
    compounding: Literal["simple", "daily", "hourly"] = "simple"


class UtilizationFixingConfig(Strict):
    at: AwareDatetime
    utilization: UnitFraction


class UtilizationInterestConfig(Strict):
    """A kinked utilization curve (ACT/365): ``base_rate + slope_below × u`` up to
    ``optimal_utilization``, then ``+ slope_above`` per unit of utilization above it. The
    utilization is the outstanding principal ÷ ``facility_limit`` (a credit line: every draw moves
    the rate), or the lending pool's, given as dated ``pool_utilization`` fixings."""

    kind: Literal["utilization"]
    base_rate: Rate
    slope_below: Rate
    slope_above: Rate
    optimal_utilization: Annotated[Decimal, Field(gt=0, lt=1, allow_inf_nan=False)]
    facility_limit: Annotated[Decimal, Field(gt=0, le=Decimal(10) ** 15, allow_inf_nan=False)] | None = None
    pool_utilization: tuple[UtilizationFixingConfig, ...] = Field(default=(), max_length=10_000)
    compounding: Literal["simple", "daily", "hourly"] = "simple"

    @model_validator(mode="after")
    def _one_source(self) -> UtilizationInterestConfig:
        if (self.facility_limit is None) == (not self.pool_utilization):
            raise ValueError("give exactly one of facility_limit or pool_utilization")
        return self


InterestConfig = Annotated[FixedInterestConfig | UtilizationInterestConfig, Field(discriminator="kind")]


class LoanConfig(Strict):
    """A loan: ``principal`` drawn at ``start`` (required, with a timezone), later ``draws`` and
    ``repayments``, and ``interest`` terms (``annual_rate`` alone is a fixed simple rate)."""

    principal: Money
    asset: str = "USDC"
    annual_rate: Rate = Decimal("0")
    start: AwareDatetime
    draws: tuple[LoanFlowConfig, ...] = Field(default=(), max_length=10_000)
    repayments: tuple[LoanFlowConfig, ...] = Field(default=(), max_length=10_000)
    interest: InterestConfig | None = None

    @field_validator("principal", "annual_rate")
    @classmethod
    def _finite(cls, v: Decimal) -> Decimal:
        if not v.is_finite():
            raise ValueError("must be a finite number")
        return v

    @model_validator(mode="after")
    def _coherent(self) -> LoanConfig:
        if self.interest is not None and self.annual_rate != 0:
            raise LocatedValueError("give either annual_rate or interest, not both", ("annual_rate",))
        start = self.start
        for name in ("draws", "repayments"):
            for i, flow in enumerate(getattr(self, name)):
                if start is not None and flow.at < start:
                    raise LocatedValueError(f"{name}.{i}: {flow.at.isoformat()} is before the loan's start "
                                            f"{start.isoformat()}", (name, i, "at"))
        return self

    def to_loan(self, client_id: str) -> tuple[Loan, InterestTerms]:
        """The domain loan (principal, start, draws and repayments in time order) and its terms."""
        events = sorted([LoanEvent(d.at, d.amount) for d in self.draws]
                        + [LoanEvent(r.at, -r.amount) for r in self.repayments], key=lambda e: e.at)
        spec = self.interest
        rate = self.annual_rate
        if spec is None:
            terms = InterestTerms()
        elif isinstance(spec, FixedInterestConfig):
            rate = spec.rate
            terms = InterestTerms(compounding_period_s=COMPOUNDING_S[spec.compounding])
        else:
            curve = UtilizationCurve(spec.base_rate, spec.slope_below, spec.slope_above, spec.optimal_utilization)
            terms = InterestTerms(
                compounding_period_s=COMPOUNDING_S[spec.compounding], curve=curve,
                fixings=tuple(RateFixing(f.at, utilization=f.utilization) for f in spec.pool_utilization),
                facility_limit=spec.facility_limit)
            if spec.pool_utilization:  # before the first fixing: the curve at the first utilization
                rate = curve.rate(min(spec.pool_utilization, key=lambda f: f.at).utilization)
        return Loan(client_id, self.principal, self.asset, rate, self.start, tuple(events)), terms


class ClientContacts(Strict):
    """Where the client is told about a margin call (its own route, not the desk's alert channels).

    ``webhook``: the client's HTTPS endpoint, a secret reference (its URL usually carries a token;
    only scheme and host are ever logged or stored). ``email``: addresses, sent through the SMTP
    server of the alerts email channel named ``email_via``.
    """

    webhook: SecretRefField | None = None
    email: tuple[str, ...] = Field(default=(), max_length=32)
    email_via: Identifier | None = None

    @model_validator(mode="after")
    def _email_route(self) -> ClientContacts:
        for addr in self.email:
            if "@" not in addr or any(c.isspace() for c in addr):
                raise ValueError(f"{addr!r} is not an email address")
        if self.email and self.email_via is None:
            raise ValueError("email needs email_via: the name of an alerts email channel (its SMTP server sends)")
        return self


class ClientConfig(Strict):
    id: Identifier
    name: str = ""
    tier: str = "standard"
    loan: LoanConfig | None = None
    contacts: ClientContacts | None = None


class WalletConfig(Strict):
    id: Identifier
    client: Identifier
    chain: Identifier
    address: str
    kind: Literal["eoa", "safe", "contract"] = "eoa"
    label: str = ""

    _addr = field_validator("address")(_checked_address)


class CredentialConfig(Strict):
    """An API key primeguard knows about. ``holder`` says who holds it (client, monitor...)."""

    id: Identifier
    holder: Holder
    api_key: SecretRef
    secret: SecretRef
    passphrase: SecretRef | None = None  # OKX


class CexAccountConfig(Strict):
    id: Identifier
    client: Identifier
    venue: Literal["binance", "okx", "bybit"]
    base_url: str | None = None  # None → the venue's production URL
    sub_account: str  # Binance sub-account email, OKX subAcct name, Bybit sub uid
    monitor: Identifier  # credential id primeguard reads with
    operator: Identifier | None = None  # credential id used for circuit-breaker levers
    credentials: tuple[CredentialConfig, ...] = Field(default=(), max_length=64)
    max_age_s: int = Field(default=120, gt=0, le=DAY)

    @model_validator(mode="after")
    def _refs(self) -> CexAccountConfig:
        ids = [c.id for c in self.credentials]
        for i, cid in enumerate(ids):
            if cid in ids[:i]:
                raise LocatedValueError(f"duplicate credential id {cid!r} in account {self.id}",
                                        ("credentials", i, "id"))
        for ref in (self.monitor, self.operator):
            if ref is not None and ref not in ids:
                raise ValueError(f"credential reference {ref!r} is not among this account's credentials")
        return self


DYDX_MAINNET_USDC_DENOM = "ibc/8E27BA2D5493AF5636760E354E46004562C46AB7EC0CC4C1CA14E9E20E2545B5"


class DydxBrokerKeyConfig(Strict):
    """The prime broker's own key for acting on a client's dYdX account (circuit-breaker levers).

    ``key`` is a secret: a BIP-39 mnemonic (Cosmos derivation path) or a 32-byte hex private key.
    ``authenticator_id`` names the client's ``x/accountplus`` authenticator that holds the broker's
    public key (a permissioned key); ``None`` means the key is the account's own owner key.
    Freed USDC goes to ``sweep_address``/``sweep_subaccount`` (the broker's subaccount) through
    ``MsgCreateTransfer``."""

    key: SecretRef
    authenticator_id: int | None = Field(default=None, ge=0, le=2**63 - 1)
    chain_id: str = Field(default="dydx-mainnet-1", pattern=r"^[a-z0-9][a-z0-9-]{0,48}$")
    fee_denom: str = Field(default=DYDX_MAINNET_USDC_DENOM, min_length=1, max_length=128)
    gas_limit: int = Field(default=1_000_000, gt=0, le=100_000_000)
    sweep_address: str | None = Field(default=None, pattern=r"^dydx1[02-9ac-hj-np-z]{38,58}$")
    sweep_subaccount: int = Field(default=0, ge=0, le=MAX_DYDX_SUBACCOUNT)


class DydxAccountConfig(Strict):
    id: Identifier
    client: Identifier
    address: str = Field(pattern=r"^dydx1[02-9ac-hj-np-z]{38,58}$")
    subaccounts: tuple[Annotated[int, Field(ge=0, le=MAX_DYDX_SUBACCOUNT)], ...] = Field(
        default=(0,), min_length=1, max_length=1024)
    indexer_url: str
    node_grpc: str | None = None  # host:port of a node's gRPC; None → no authenticator scan
    v3_stark_key_holders: tuple[Holder, ...] = ()  # legacy v3 keys someone still holds
    max_age_s: int = Field(default=120, gt=0, le=DAY)
    timeout_s: float = Field(default=5.0, gt=0, le=5 * MINUTE, allow_inf_nan=False)
    broker: DydxBrokerKeyConfig | None = None  # the PB's key for the levers; None → levers refuse


class KnownSpenderConfig(Strict):
    """A contract the PB knows and accepts as an ERC-20 spender (exchange router, vault...)."""

    address: str
    label: str
    chain: Identifier | None = None  # None: on every chain

    _addr = field_validator("address")(_checked_address)


class KnownDelegateConfig(Strict):
    """A contract the PB accepts as an EIP-7702 delegate of a client EOA (an audited smart-account
    implementation). Any other delegate is a critical finding: sweeper delegations drain wallets."""

    address: str
    label: str
    chain: Identifier | None = None  # None: on every chain

    _addr = field_validator("address")(_checked_address)


class ScanConfig(Strict):
    """On-chain capability scan: Approval logs in bounded ranges, resumable, reorg-safe."""

    from_block: int = Field(default=0, ge=0, le=2**63 - 1)
    log_chunk_blocks: int = Field(default=10_000, gt=0, le=1_000_000)
    reorg_depth: int = Field(default=64, ge=0, le=10_000)  # re-scan this many blocks each run
    cursor_file: str | None = None  # JSON cursor when no database is configured


class VaultConfig(Strict):
    """A CollateralVault holding a client's collateral. Its balances count in the sweep: the loaded
    config lists it among ``wallets`` as a ``contract`` wallet with the vault's id (do not list it
    there yourself: a wallet at a vault's chain and address is refused as counted twice)."""

    id: Identifier
    client: Identifier
    chain: Identifier
    address: str

    _addr = field_validator("address")(_checked_address)


class DefiPositionConfig(Strict):
    """Collateral a wallet holds inside a DeFi protocol, valued through the protocol's own views:

    - ``erc4626``: ``address`` is the vault; value = ``convertToAssets(balanceOf(wallet))`` of its
      underlying (which must be a listed token, for its price);
    - ``aave_v3``: ``address`` is the Pool; every reserve's aToken balance (supplied) and variable
      debt balance (borrowed: a liability), plus ``getUserAccountData`` for the health factor;
    - ``wsteth``: ``address`` is wstETH; value = ``getStETHByWstETH(balanceOf(wallet))`` priced as
      ``asset`` (default ETH).

    ``haircut_class`` (default: the protocol name) picks the position's haircut in the policy."""

    id: Identifier
    wallet: Identifier
    protocol: Literal["erc4626", "aave_v3", "wsteth"]
    address: str
    asset: str | None = None
    haircut_class: Identifier | None = None

    _addr = field_validator("address")(_checked_address)

    @property
    def klass(self) -> str:
        return self.haircut_class or self.protocol


class CustodyConfig(Strict):
    """Signing keys for on-chain custody: encrypted keystores, password from env/file/prompt."""

    treasury_keystore: str
    guardian_keystore: str | None = None
    # The vaults' compliance role: proposes and removes allowlisted destinations on chain.
    compliance_keystore: str | None = None
    password: SecretRef | None = None  # None: prompt on a terminal
    gas_limit: int = Field(default=250_000, gt=21_000, le=30_000_000)
    receipt_timeout_s: float = Field(default=60, gt=0, le=HOUR, allow_inf_nan=False)


class ScreeningOracleConfig(Strict):
    """An on-chain sanctions oracle (``isSanctioned(address) -> bool``) on one configured chain."""

    chain: Identifier
    address: str

    _addr = field_validator("address")(_checked_address)


class ScreeningConfig(Strict):
    """Where destinations are screened: on-chain oracles per chain and the imported local lists.

    ``advisory`` names sources (``oracle:<chain>`` or ``lists``) whose failure to answer does not
    deny; a hit from any source always denies. Results are cached ``ttl_s`` seconds (execution
    always asks again).
    """

    oracles: tuple[ScreeningOracleConfig, ...] = Field(default=(), max_length=64)
    local_lists: bool = True
    advisory: tuple[str, ...] = Field(default=(), max_length=64)
    ttl_s: int = Field(default=300, ge=0, le=DAY)


class PlaybookConfig(Strict):
    """Deprecated: the policy's ``ladder_plan`` says how each ladder action runs. Read only when the
    policy in force has no ladder_plan (dry_run by default, needs_approval, automatic)."""

    modes: dict[str, Literal["dry_run", "needs_approval", "automatic"]] = Field(default_factory=dict, max_length=256)


class StoreConfig(Strict):
    url: str = "sqlite:///primeguard.db"


class FileAnchorSink(Strict):
    """Append one JSON line per anchor to ``path`` (relative to the config's folder). Point it at a
    place the database's operators cannot rewrite (another host's mount, WORM storage)."""

    kind: Literal["file"]
    path: str = Field(min_length=1)


class LogAnchorSink(Strict):
    """One structured ``audit-anchor {json}`` line on the ``primeguard.audit.anchor`` logger
    (ship the log off the host and keep it)."""

    kind: Literal["log"]


class WebhookAnchorSink(Strict):
    """POST each anchor as JSON to ``url`` (a secret: it may carry a token)."""

    kind: Literal["webhook"]
    url: SecretRef
    timeout_s: float = Field(default=5.0, gt=0, le=60, allow_inf_nan=False)


AnchorSink = Annotated[FileAnchorSink | LogAnchorSink | WebhookAnchorSink, Field(discriminator="kind")]


class AnchorsConfig(Strict):
    """Where the audit chain's head (seq, hash, time) is published outside the database, and when:
    every ``every_s`` seconds by the daemon, and after each CLI command that wrote to the store."""

    sinks: tuple[AnchorSink, ...] = ()
    every_s: float = Field(default=300.0, ge=1, le=86_400, allow_inf_nan=False)
    after_cli_writes: bool = True


class AuditConfig(Strict):
    anchors: AnchorsConfig = AnchorsConfig()


class PrimeguardConfig(Strict):
    """The whole agent config."""

    version: Literal[1] = 1
    production: bool = False
    policy_dir: str = "policies"
    store: StoreConfig = StoreConfig()
    audit: AuditConfig = AuditConfig()
    chains: tuple[ChainConfig, ...] = ()
    tokens: tuple[TokenConfig, ...] = ()
    feeds: tuple[FeedConfig, ...] = ()
    clients: tuple[ClientConfig, ...] = ()
    wallets: tuple[WalletConfig, ...] = ()
    cex_accounts: tuple[CexAccountConfig, ...] = ()
    dydx_accounts: tuple[DydxAccountConfig, ...] = ()
    known_spenders: tuple[KnownSpenderConfig, ...] = ()
    known_delegates: tuple[KnownDelegateConfig, ...] = ()
    vaults: tuple[VaultConfig, ...] = ()
    defi_positions: tuple[DefiPositionConfig, ...] = ()
    custody: CustodyConfig | None = None
    screening: ScreeningConfig | None = None
    alerts: AlertsConfig = AlertsConfig()
    playbooks: PlaybookConfig = PlaybookConfig()
    scan: ScanConfig = ScanConfig()

    @model_validator(mode="after")
    def _integrity(self) -> PrimeguardConfig:
        chains = {c.id for c in self.chains}
        clients = {c.id for c in self.clients}
        _unique("chains", [c.id for c in self.chains])
        _unique("clients", clients_list := [c.id for c in self.clients])
        del clients_list
        account_ids = [w.id for w in self.wallets] + [a.id for a in self.cex_accounts] + [
            d.id for d in self.dydx_accounts
        ]
        _unique("accounts", account_ids)
        for c in self.clients:
            via = c.contacts.email_via if c.contacts else None
            if via is not None and not isinstance(self.alerts.channel(via), EmailChannelConfig):
                raise ValueError(f"client {c.id}: contacts.email_via {via!r} is not an alerts email channel")
        for t in self.tokens:
            if t.chain not in chains:
                raise ValueError(f"token {t.symbol}: unknown chain {t.chain!r}")
        for o in self.screening.oracles if self.screening else ():
            if o.chain not in chains:
                raise ValueError(f"screening oracle: unknown chain {o.chain!r}")
        for f in self.feeds:
            if f.chain not in chains:
                raise ValueError(f"feed for {f.asset}: unknown chain {f.chain!r}")
        for acct in (*self.wallets, *self.cex_accounts, *self.dydx_accounts):
            if acct.client not in clients:
                raise ValueError(f"account {acct.id}: unknown client {acct.client!r}")
        for w in (*self.wallets, *self.vaults):
            if w.chain not in chains:
                raise ValueError(f"wallet {w.id}: unknown chain {w.chain!r}")
        for v in self.vaults:
            if v.client not in clients:
                raise ValueError(f"vault {v.id}: unknown client {v.client!r}")
        _unique("accounts and vaults", [*account_ids, *(v.id for v in self.vaults)])
        _unique("defi_positions", [p.id for p in self.defi_positions])
        wallet_ids = {w.id for w in self.wallets}
        for i, pos in enumerate(self.defi_positions):
            if pos.wallet not in wallet_ids:
                raise LocatedValueError(f"DeFi position {pos.id}: unknown wallet {pos.wallet!r}",
                                        ("defi_positions", i, "wallet"))
        self._no_double_counting()
        if self.production:
            for a in self.cex_accounts:
                for c in a.credentials:
                    for ref in (c.api_key, c.secret, c.passphrase):
                        if ref is not None and ref.value is not None:
                            raise ValueError(f"credential {c.id}: inline secret values are not allowed in production")
            for sink in self.audit.anchors.sinks:
                if isinstance(sink, WebhookAnchorSink) and sink.url.value is not None:
                    raise ValueError("audit anchor webhook: inline url is not allowed in production")
            for ch in self.alerts.channels:
                for name in ("url", "username", "password"):
                    ref = getattr(ch, name, None)
                    if ref is not None and getattr(ref, "value", None) is not None:
                        raise ValueError(f"alert channel {ch.name}: inline {name} is not allowed in production")
        # A vault's balances count in the sweep exactly once: as a contract wallet with its id.
        derived = tuple(WalletConfig(id=v.id, client=v.client, chain=v.chain, address=v.address,
                                     kind="contract", label="collateral vault") for v in self.vaults)
        object.__setattr__(self, "wallets", (*self.wallets, *derived))  # frozen model: set once, here
        return self

    def _no_double_counting(self) -> None:
        """Refuse two holdings at one place: a wallet or vault at the same (chain, address), one CEX
        sub-account (venue, endpoint, sub-account) or one dYdX (address, subaccount) twice."""
        where: dict[tuple[str, ...], str] = {}

        def claim(key: tuple[str, ...], name: str, loc: tuple[str | int, ...], what: str) -> None:
            if key in where:
                raise LocatedValueError(f"{name} is {what} as {where[key]}: its collateral would be counted twice",
                                        loc)
            where[key] = name

        for i, w in enumerate(self.wallets):
            claim(("evm", w.chain, w.address.lower()), f"wallet {w.id}", ("wallets", i, "address"),
                  f"at the same chain {w.chain} and address")
        for i, v in enumerate(self.vaults):
            claim(("evm", v.chain, v.address.lower()), f"vault {v.id}", ("vaults", i, "address"),
                  f"at the same chain {v.chain} and address")
        for i, a in enumerate(self.cex_accounts):
            claim(("cex", a.venue, (a.base_url or "").rstrip("/").lower(), a.sub_account.strip().lower()),
                  f"CEX account {a.id}", ("cex_accounts", i, "sub_account"), f"the same {a.venue} sub-account")
        for i, d in enumerate(self.dydx_accounts):
            for k, sub in enumerate(d.subaccounts):
                claim(("dydx", d.address, str(sub)), f"dYdX account {d.id} subaccount {sub}",
                      ("dydx_accounts", i, "subaccounts", k), "the same dYdX address and subaccount")

    def tokens_on(self, chain: str) -> list[TokenConfig]:
        return [t for t in self.tokens if t.chain == chain]

    def feed_budgets(self) -> dict[str, int]:
        """Freshness budget per oracle quote source id (``chain:address``): the feed's heartbeat."""
        return {f"{f.chain}:{f.address}": f.heartbeat_s for f in self.feeds}

    def feeds_on(self, chain: str) -> list[FeedConfig]:
        return [f for f in self.feeds if f.chain == chain]


def _unique(what: str, ids: list[str]) -> None:
    seen: set[str] = set()
    for i in ids:
        if i in seen:
            raise ValueError(f"duplicate id {i!r} in {what}")
        seen.add(i)
