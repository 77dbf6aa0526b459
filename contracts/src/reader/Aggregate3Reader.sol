// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.20;

/**
 * @title Aggregate3Reader
 * @notice Our own minimal implementation of the Multicall3 read interface that primeguard uses:
 * `aggregate3((address target, bool allowFailure, bytes callData)[])` returning
 * `(bool success, bytes returnData)[]` in input order, and `getEthBalance(address)`. Written from
 * the published ABI, not from Multicall3's source. It exists so the tests and benchmarks can place
 * a contract with Multicall3's interface at the canonical Multicall3 address on a local anvil
 * (anvil_setCode) and exercise the agent's multicall3 read mode; production chains use the
 * Multicall3 deployed there.
 * @dev Semantics the agent relies on, matching Multicall3: a sub-call with allowFailure = true that
 * fails reports success = false and the batch goes on; a failing sub-call with allowFailure = false
 * reverts the whole batch; a call to an address without code succeeds with empty returnData (the
 * agent treats empty or short answers as failed reads).
 */
contract Aggregate3Reader {
    struct Call3 {
        address target;
        bool allowFailure;
        bytes callData;
    }

    struct Result {
        bool success;
        bytes returnData;
    }

    /// @notice Run every call in order; see the contract notes for failure handling.
    function aggregate3(Call3[] calldata calls) external payable returns (Result[] memory returnData) {
        returnData = new Result[](calls.length);
        for (uint256 i = 0; i < calls.length; ++i) {
            Call3 calldata c = calls[i];
            (bool success, bytes memory ret) = c.target.call(c.callData);
            require(success || c.allowFailure, "Aggregate3Reader: call failed");
            returnData[i] = Result(success, ret);
        }
    }

    /// @notice The native balance of `account`.
    function getEthBalance(address account) external view returns (uint256 balance) {
        balance = account.balance;
    }
}
