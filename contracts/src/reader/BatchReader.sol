// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.20;

/**
 * @title BatchReader
 * @notice Answers many balance, allowance and oracle reads in one eth_call. A read that fails
 * (target reverts, is not a contract, returns short data) is reported with ok = false instead of
 * reverting the whole batch, so one broken token or feed cannot blind the agent to the rest.
 * Results come back in input order; tokenBalances is token-major (see there), allowances is one
 * result per (token, owner, spender) triple. A failed read yields value 0 with ok = false.
 * @dev Gas per read, measured with eth_estimateGas on anvil 1.7.1 (cancun, cold accounts and slots
 * as in a real eth_call): ~3.2k native balance, ~4.7k ERC-20 balanceOf, ~5.7k allowance, ~19k
 * latestRoundData + decimals on a distinct feed (~5k when the feed repeats). 5,000 balanceOf reads
 * cost ~17.7M gas and return in ~0.3 s, so one eth_call under a 50M gas cap carries ~10,000 reads.
 * The caller chunks reads to stay under the node's call gas cap.
 */
contract BatchReader {
    struct Round {
        bool ok;
        uint80 roundId;
        int256 answer;
        uint256 startedAt;
        uint256 updatedAt;
        uint80 answeredInRound;
        uint8 decimals;
    }

    /// @notice Native balance of each wallet.
    function nativeBalances(address[] calldata wallets) external view returns (uint256[] memory balances) {
        balances = new uint256[](wallets.length);
        for (uint256 i = 0; i < wallets.length; ++i) {
            balances[i] = wallets[i].balance;
        }
    }

    /// @notice balanceOf for every (token, wallet) pair, token-major:
    /// result[t * wallets.length + w] is tokens[t].balanceOf(wallets[w]).
    function tokenBalances(address[] calldata tokens, address[] calldata wallets)
        external
        view
        returns (uint256[] memory balances, bool[] memory ok)
    {
        uint256 n = wallets.length;
        balances = new uint256[](tokens.length * n);
        ok = new bool[](tokens.length * n);
        for (uint256 t = 0; t < tokens.length; ++t) {
            bool isContract = tokens[t].code.length > 0;
            for (uint256 w = 0; w < n; ++w) {
                if (!isContract) continue;
                (bool success, uint256 value) = _readUint(tokens[t], abi.encodeWithSelector(0x70a08231, wallets[w]));
                balances[t * n + w] = value;
                ok[t * n + w] = success;
            }
        }
    }

    /// @notice allowance(owner, spender) for each triple (tokens[i], owners[i], spenders[i]).
    function allowances(address[] calldata tokens, address[] calldata owners, address[] calldata spenders)
        external
        view
        returns (uint256[] memory values, bool[] memory ok)
    {
        require(tokens.length == owners.length && owners.length == spenders.length, "BatchReader: length mismatch");
        values = new uint256[](tokens.length);
        ok = new bool[](tokens.length);
        for (uint256 i = 0; i < tokens.length; ++i) {
            if (tokens[i].code.length == 0) continue;
            (ok[i], values[i]) = _readUint(tokens[i], abi.encodeWithSelector(0xdd62ed3e, owners[i], spenders[i]));
        }
    }

    /// @notice latestRoundData and decimals of each feed; ok = false when either call fails.
    function latestRounds(address[] calldata feeds) external view returns (Round[] memory rounds) {
        rounds = new Round[](feeds.length);
        for (uint256 i = 0; i < feeds.length; ++i) {
            rounds[i] = _round(feeds[i]);
        }
    }

    /// @notice Code size of each address (0 = EOA or empty), to tell wallets from contracts.
    function codeSizes(address[] calldata accounts) external view returns (uint256[] memory sizes) {
        sizes = new uint256[](accounts.length);
        for (uint256 i = 0; i < accounts.length; ++i) {
            sizes[i] = accounts[i].code.length;
        }
    }

    /// @notice Arbitrary read-only calls: (ok, returndata) per (targets[i], data[i]). A call to an
    /// address without code, or one that reverts, gives ok = false and empty data; the batch goes on.
    /// Used for reads whose shape varies (token metadata, Permit2 allowances, operator flags,
    /// vault and lending views): the caller decodes each answer tolerantly.
    function calls(address[] calldata targets, bytes[] calldata data)
        external
        view
        returns (bool[] memory ok, bytes[] memory results)
    {
        require(targets.length == data.length, "BatchReader: length mismatch");
        ok = new bool[](targets.length);
        results = new bytes[](targets.length);
        for (uint256 i = 0; i < targets.length; ++i) {
            if (targets[i].code.length == 0) continue;
            (bool success, bytes memory ret) = targets[i].staticcall(data[i]);
            if (success) {
                ok[i] = true;
                results[i] = ret;
            }
        }
    }

    function _round(address feed) private view returns (Round memory r) {
        if (feed.code.length == 0) return r;
        (bool okDec, bytes memory dec) = feed.staticcall(abi.encodeWithSelector(0x313ce567));
        (bool okRound, bytes memory data) = feed.staticcall(abi.encodeWithSelector(0xfeaf968c));
        if (!okDec || dec.length < 32 || !okRound || data.length < 160) return r;
        // Decode as raw words and range-check by hand: abi.decode into uint80/uint8 would revert the
        // whole batch on an out-of-range word from a broken feed.
        uint256 decimals = abi.decode(dec, (uint256));
        (uint256 roundId, int256 answer, uint256 startedAt, uint256 updatedAt, uint256 answeredInRound) =
            abi.decode(data, (uint256, int256, uint256, uint256, uint256));
        if (decimals > type(uint8).max || roundId > type(uint80).max || answeredInRound > type(uint80).max) {
            return r;
        }
        // forge-lint: disable-next-line(unsafe-typecast)
        r.decimals = uint8(decimals); // range-checked above
        // forge-lint: disable-next-line(unsafe-typecast)
        r.roundId = uint80(roundId); // range-checked above
        // forge-lint: disable-next-line(unsafe-typecast)
        r.answeredInRound = uint80(answeredInRound); // range-checked above
        r.answer = answer;
        r.startedAt = startedAt;
        r.updatedAt = updatedAt;
        r.ok = true;
    }

    function _readUint(address target, bytes memory callData) private view returns (bool, uint256) {
        (bool success, bytes memory data) = target.staticcall(callData);
        if (!success || data.length < 32) return (false, 0);
        return (true, abi.decode(data, (uint256)));
    }
}
