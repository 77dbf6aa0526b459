"""Every message type the dYdX chain registers has a fund-moving classification with a reason.

``recorded/v4chain_app_msgs.json`` lists the type URLs of each file of v4-chain's
``protocol/app/msgs/`` (the keys of its Go maps, at the commit named inside); the package's
``msgs.json`` classifies them. Pure: no I/O beyond reading the two files.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from primeguard.domain.model import FUND_MOVING, Capability
from primeguard.venues.dydx.analysis import (
    FUND_MOVING_MESSAGES,
    GRANT_MESSAGES,
    MESSAGE_TABLE,
    MESSAGE_TABLE_SOURCE,
    ORDER_MESSAGES,
    UNCLASSIFIED,
    classify_message,
)

RECORDED = json.loads((Path(__file__).parent / "recorded" / "v4chain_app_msgs.json").read_text())
GROUP_FILES = ("normal_msgs.go", "nested_msgs.go", "app_injected_msgs.go", "internal_msgs.go",
               "unsupported_msgs.go", "unregistered_msgs.go")
REGISTERED = sorted({u for f in GROUP_FILES for u in RECORDED["files"][f]})


def test_table_names_its_source():
    assert MESSAGE_TABLE_SOURCE["repository"] == "dydxprotocol/v4-chain"
    assert MESSAGE_TABLE_SOURCE["directory"] == "protocol/app/msgs/"
    assert MESSAGE_TABLE_SOURCE["commit"] == RECORDED["source"]["commit"]


@pytest.mark.parametrize("url", REGISTERED)
def test_every_registered_message_is_classified(url):
    row = classify_message(url)
    assert row.cls != UNCLASSIFIED, f"{url} is registered on the chain but not classified"
    assert row.reason.strip()
    assert url in RECORDED["files"][row.source_file], "the table names the file the type came from"


def test_table_has_nothing_the_chain_does_not_list():
    assert set(MESSAGE_TABLE) == set(REGISTERED)
    # all_msgs.go (the app's whole interface registry) is the union of the group files.
    assert set(RECORDED["files"]["all_msgs.go"]) == set(REGISTERED) - set(RECORDED["files"]["unregistered_msgs.go"])


def test_classes_follow_the_file_a_message_comes_from():
    for url, row in MESSAGE_TABLE.items():
        name = url.rsplit(".", 1)[-1]
        if name.endswith("Response") or not name.startswith("Msg"):
            assert row.cls == "not_a_message", url
        elif row.source_file in ("app_injected_msgs.go", "internal_msgs.go", "unsupported_msgs.go",
                                 "unregistered_msgs.go"):
            assert row.cls == "not_user_sendable", url  # a user's key can never send these
        else:
            assert row.cls not in ("not_a_message", "not_user_sendable"), url


def test_fund_moving_rows_carry_fund_moving_capabilities():
    for url, caps in FUND_MOVING_MESSAGES.items():
        assert caps, url
        assert caps & (FUND_MOVING | {Capability.GRANT}), url
    for url, row in MESSAGE_TABLE.items():
        if not row.fund_moving:
            assert row.capabilities == frozenset(), url


def test_known_fund_movers_and_grants():
    for url in ("/dydxprotocol.sending.MsgWithdrawFromSubaccount", "/dydxprotocol.sending.MsgCreateTransfer",
                "/dydxprotocol.sending.MsgDepositToSubaccount", "/cosmos.bank.v1beta1.MsgSend",
                "/cosmos.bank.v1beta1.MsgMultiSend", "/ibc.applications.transfer.v1.MsgTransfer",
                "/cosmos.authz.v1beta1.MsgExec", "/cosmos.distribution.v1beta1.MsgSetWithdrawAddress",
                "/dydxprotocol.vault.MsgDepositToMegavault"):
        assert url in FUND_MOVING_MESSAGES, url
    assert {"/cosmos.authz.v1beta1.MsgGrant", "/dydxprotocol.accountplus.MsgAddAuthenticator",
            "/cosmos.feegrant.v1beta1.MsgGrantAllowance"} == GRANT_MESSAGES
    for url in ORDER_MESSAGES:
        assert classify_message(url).cls == "trading_only"


def test_unclassified_type_fails_closed():
    row = classify_message("/cosmos.vesting.v1beta1.MsgCreateVestingAccount")  # not registered on dYdX
    assert row.cls == UNCLASSIFIED and row.fund_moving and row.source_file is None
    assert row.capabilities == {Capability.UNKNOWN}
