// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.20;

/**
 * @title SandboxSanctionsList
 * @notice Stand-in for an on-chain sanctions oracle: the same read interface as the one the agent
 * queries in production (`isSanctioned(address) -> bool`), with a sanctioned set the sandbox's
 * scenario writes.
 * @dev The sandbox places the runtime code at the oracle's configured address with anvil_setCode,
 * so the owner is set by {initialize} (callable once), not by a constructor.
 */
contract SandboxSanctionsList {
    address private _owner;
    bool private _initialized;
    mapping(address addr => bool listed) private _sanctioned;

    event SanctionedAdded(address indexed addr);
    event SanctionedRemoved(address indexed addr);

    error SandboxSanctionsListUnauthorized(address caller);
    error SandboxSanctionsListAlreadyInitialized();

    modifier onlyOwner() {
        if (msg.sender != _owner) revert SandboxSanctionsListUnauthorized(msg.sender);
        _;
    }

    /// @notice Set the owner (the only one who may change the set). Callable once.
    function initialize(address owner_) external {
        if (_initialized) revert SandboxSanctionsListAlreadyInitialized();
        _initialized = true;
        _owner = owner_;
    }

    /// @notice Mark each of `addrs` sanctioned.
    function addToSanctionsList(address[] calldata addrs) external onlyOwner {
        for (uint256 i = 0; i < addrs.length; ++i) {
            _sanctioned[addrs[i]] = true;
            emit SanctionedAdded(addrs[i]);
        }
    }

    /// @notice Clear each of `addrs` from the set.
    function removeFromSanctionsList(address[] calldata addrs) external onlyOwner {
        for (uint256 i = 0; i < addrs.length; ++i) {
            _sanctioned[addrs[i]] = false;
            emit SanctionedRemoved(addrs[i]);
        }
    }

    /// @notice Whether `addr` is on the list.
    function isSanctioned(address addr) external view returns (bool) {
        return _sanctioned[addr];
    }

    function owner() external view returns (address) {
        return _owner;
    }
}
