"""Deploy an Aave v3 market on anvil from ``@aave/core-v3``'s own build artifacts (development and
tests only): addresses provider, ACL manager, Pool (libraries linked) and PoolConfigurator behind
their proxies, AToken / debt token implementations, an interest rate strategy, and Aave's mock
``PriceOracle`` whose prices the caller sets (a price oracle the test controls)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from web3 import Web3

from primeguard.domain.errors import SandboxError
from primeguard.sandbox.published import aave_artifact

RAY = 10**27


def _link(art: dict[str, Any], libraries: dict[str, str]) -> str:
    code = art["bytecode"]
    for _file, libs in art["linkReferences"].items():
        for lib, refs in libs.items():
            if lib not in libraries:
                raise SandboxError(f"library {lib} not deployed")
            addr = libraries[lib].lower().removeprefix("0x")
            for ref in refs:
                at = 2 + ref["start"] * 2
                code = code[:at] + addr + code[at + ref["length"] * 2:]
    return str(code)


def _deploy(w3: Web3, sender: str, name: str, *args: Any, libraries: dict[str, str] | None = None) -> Any:
    art = aave_artifact(name)
    code = _link(art, libraries or {})
    tx = w3.eth.contract(abi=art["abi"], bytecode=code).constructor(*args).transact({"from": sender})
    receipt = w3.eth.wait_for_transaction_receipt(tx)
    if receipt["status"] != 1:
        raise SandboxError(f"deploying Aave {name} failed")
    return w3.eth.contract(address=receipt["contractAddress"], abi=art["abi"])


def _send(w3: Web3, fn: Any, sender: str) -> None:
    receipt = w3.eth.wait_for_transaction_receipt(fn.transact({"from": sender}))
    if receipt["status"] != 1:
        raise SandboxError(f"Aave setup call {fn.fn_name} reverted")


@dataclass
class AaveMarket:
    pool: Any
    configurator: Any
    oracle: Any
    provider: Any
    a_tokens: dict[str, str] = field(default_factory=dict)  # underlying → aToken
    variable_debt: dict[str, str] = field(default_factory=dict)  # underlying → variable debt token


@dataclass(frozen=True)
class ReserveSpec:
    """A reserve to list: underlying token, its decimals, oracle price (8 decimals, base USD) and
    risk parameters in basis points (ltv 0 → not usable as collateral)."""

    token: str
    decimals: int
    price: int
    ltv: int = 8000
    liquidation_threshold: int = 8500
    liquidation_bonus: int = 10500
    borrowable: bool = True


def deploy_aave_v3(w3: Web3, admin: str, reserves: list[ReserveSpec]) -> AaveMarket:
    """A working Aave v3 market with ``reserves`` listed, owned by ``admin`` (an unlocked account)."""
    provider = _deploy(w3, admin, "PoolAddressesProvider", "primeguard-sandbox", admin)
    _send(w3, provider.functions.setACLAdmin(admin), admin)
    acl = _deploy(w3, admin, "ACLManager", provider.address)
    _send(w3, acl.functions.addPoolAdmin(admin), admin)
    _send(w3, provider.functions.setACLManager(acl.address), admin)
    libs: dict[str, str] = {}
    for name in ("BorrowLogic", "BridgeLogic", "EModeLogic", "LiquidationLogic", "PoolLogic", "SupplyLogic",
                 "ConfiguratorLogic"):
        libs[name] = _deploy(w3, admin, name).address
    libs["FlashLoanLogic"] = _deploy(w3, admin, "FlashLoanLogic", libraries=libs).address
    pool_impl = _deploy(w3, admin, "Pool", provider.address, libraries=libs)
    _send(w3, provider.functions.setPoolImpl(pool_impl.address), admin)
    pool = w3.eth.contract(address=provider.functions.getPool().call(), abi=aave_artifact("Pool")["abi"])
    conf_impl = _deploy(w3, admin, "PoolConfigurator", libraries=libs)
    _send(w3, provider.functions.setPoolConfiguratorImpl(conf_impl.address), admin)
    configurator = w3.eth.contract(address=provider.functions.getPoolConfigurator().call(),
                                   abi=aave_artifact("PoolConfigurator")["abi"])
    oracle = _deploy(w3, admin, "PriceOracle")
    _send(w3, provider.functions.setPriceOracle(oracle.address), admin)
    a_impl = _deploy(w3, admin, "AToken", pool.address)
    s_impl = _deploy(w3, admin, "StableDebtToken", pool.address)
    v_impl = _deploy(w3, admin, "VariableDebtToken", pool.address)
    strategy = _deploy(w3, admin, "DefaultReserveInterestRateStrategy", provider.address,
                       RAY * 8 // 10, 0, RAY * 4 // 100, RAY * 75 // 100, RAY * 2 // 100, RAY * 75 // 100,
                       RAY * 2 // 100, RAY * 5 // 100, RAY * 2 // 10)
    zero = "0x0000000000000000000000000000000000000000"
    inputs = [(a_impl.address, s_impl.address, v_impl.address, r.decimals, strategy.address, r.token, admin, zero,
               f"aToken {i}", f"a{i}", f"variable debt {i}", f"vd{i}", f"stable debt {i}", f"sd{i}", b"")
              for i, r in enumerate(reserves)]
    _send(w3, configurator.functions.initReserves(inputs), admin)
    market = AaveMarket(pool, configurator, oracle, provider)
    for r in reserves:
        _send(w3, oracle.functions.setAssetPrice(r.token, r.price), admin)
        if r.ltv:
            _send(w3, configurator.functions.configureReserveAsCollateral(r.token, r.ltv, r.liquidation_threshold,
                                                                          r.liquidation_bonus), admin)
        if r.borrowable:
            _send(w3, configurator.functions.setReserveBorrowing(r.token, True), admin)
        data = pool.functions.getReserveData(r.token).call()
        market.a_tokens[r.token] = data[8]
        market.variable_debt[r.token] = data[10]
    return market
