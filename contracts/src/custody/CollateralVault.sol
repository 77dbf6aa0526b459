// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.20;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";

/**
 * @title CollateralVault
 * @notice Holds a prime broker's on-chain collateral and lets it leave only to allowlisted
 * destinations, within a per-asset velocity limit, while not paused. The chain enforces this even
 * if the agent's (treasury) key is stolen.
 *
 * Roles:
 * - admin (DEFAULT_ADMIN_ROLE): grants roles, sets velocity limits, unpauses;
 * - compliance: proposes allowlist additions (active only after the timelock), cancels pending
 *   ones, removes entries (immediately);
 * - treasury: initiates withdrawals;
 * - guardian (the agent): may only pause.
 *
 * @dev A vault rather than a Safe guard + module: a Safe module bypasses Safe 1.4.1's transaction
 * guard (module guards arrived in 1.5.0, which the registry here does not carry), so "a stolen key
 * cannot send elsewhere" is only true if the rule lives where the money is. The timelock is
 * immutable so no role can shorten it; an asset with no velocity limit cannot be withdrawn at all
 * (fail closed). `asset == address(0)` means native ETH.
 */
contract CollateralVault is AccessControl, Pausable {
    using SafeERC20 for IERC20;

    bytes32 public constant COMPLIANCE_ROLE = keccak256("COMPLIANCE_ROLE");
    bytes32 public constant TREASURY_ROLE = keccak256("TREASURY_ROLE");
    bytes32 public constant GUARDIAN_ROLE = keccak256("GUARDIAN_ROLE");

    struct Limit {
        uint256 maxPerWindow;
        uint64 window;
        uint64 windowStart;
        uint256 spent;
    }

    uint64 private immutable _timelock;
    mapping(bytes32 key => uint64 activatesAt) private _allowlist;
    mapping(address asset => Limit) private _limits;

    event DestinationProposed(address indexed asset, address indexed destination, uint64 activatesAt, address by);
    event DestinationCancelled(address indexed asset, address indexed destination, address by);
    event DestinationRemoved(address indexed asset, address indexed destination, address by);
    event VelocityLimitSet(address indexed asset, uint256 maxPerWindow, uint64 window, address by);
    event Withdrawn(address indexed asset, address indexed destination, uint256 amount, bytes32 indexed ref);

    error CollateralVaultNotAllowlisted(address asset, address destination);
    error CollateralVaultNotYetActive(address asset, address destination, uint64 activatesAt);
    error CollateralVaultAlreadyListed(address asset, address destination);
    error CollateralVaultNotPending(address asset, address destination);
    error CollateralVaultVelocityExceeded(address asset, uint256 requested, uint256 remaining);
    error CollateralVaultInvalidAmount();
    error CollateralVaultInvalidDestination();
    error CollateralVaultInvalidLimit();
    error CollateralVaultNativeTransferFailed();

    constructor(address admin, uint64 timelockSeconds) {
        _timelock = timelockSeconds;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
    }

    receive() external payable {}

    // --- allowlist -------------------------------------------------------------------------------

    /// @notice Propose `destination` for `asset`; it becomes usable after the timelock.
    function proposeDestination(address asset, address destination) external onlyRole(COMPLIANCE_ROLE) {
        if (destination == address(0) || destination == address(this)) revert CollateralVaultInvalidDestination();
        bytes32 key = _key(asset, destination);
        if (_allowlist[key] != 0) revert CollateralVaultAlreadyListed(asset, destination);
        uint64 activeFrom = uint64(block.timestamp) + _timelock;
        _allowlist[key] = activeFrom;
        emit DestinationProposed(asset, destination, activeFrom, msg.sender);
    }

    /// @notice Cancel a proposal that has not become active yet.
    function cancelDestination(address asset, address destination) external onlyRole(COMPLIANCE_ROLE) {
        bytes32 key = _key(asset, destination);
        uint64 activeFrom = _allowlist[key];
        if (activeFrom == 0 || activeFrom <= block.timestamp) revert CollateralVaultNotPending(asset, destination);
        delete _allowlist[key];
        emit DestinationCancelled(asset, destination, msg.sender);
    }

    /// @notice Remove a destination at once (active or pending).
    function removeDestination(address asset, address destination) external onlyRole(COMPLIANCE_ROLE) {
        bytes32 key = _key(asset, destination);
        if (_allowlist[key] == 0) revert CollateralVaultNotAllowlisted(asset, destination);
        delete _allowlist[key];
        emit DestinationRemoved(asset, destination, msg.sender);
    }

    // --- limits and pause --------------------------------------------------------------------------

    /// @notice At most `maxPerWindow` of `asset` may leave per `window` seconds (fixed windows).
    function setVelocityLimit(address asset, uint256 maxPerWindow, uint64 window)
        external
        onlyRole(DEFAULT_ADMIN_ROLE)
    {
        if (window == 0) revert CollateralVaultInvalidLimit();
        Limit storage l = _limits[asset];
        l.maxPerWindow = maxPerWindow;
        l.window = window;
        emit VelocityLimitSet(asset, maxPerWindow, window, msg.sender);
    }

    /// @notice Stop every outflow. The guardian (the agent) may do this and nothing else.
    function pause() external {
        if (!hasRole(GUARDIAN_ROLE, msg.sender) && !hasRole(DEFAULT_ADMIN_ROLE, msg.sender)) {
            revert AccessControlUnauthorizedAccount(msg.sender, GUARDIAN_ROLE);
        }
        _pause();
    }

    function unpause() external onlyRole(DEFAULT_ADMIN_ROLE) {
        _unpause();
    }

    // --- withdrawals -------------------------------------------------------------------------------

    /// @notice Send `amount` of `asset` to an active allowlisted `destination`. `ref` ties the
    /// transfer to the off-chain withdrawal id (idempotency is enforced off chain by the nonce).
    function withdraw(address asset, address destination, uint256 amount, bytes32 ref)
        external
        onlyRole(TREASURY_ROLE)
        whenNotPaused
    {
        if (amount == 0) revert CollateralVaultInvalidAmount();
        uint64 activeFrom = _allowlist[_key(asset, destination)];
        if (activeFrom == 0) revert CollateralVaultNotAllowlisted(asset, destination);
        if (activeFrom > block.timestamp) revert CollateralVaultNotYetActive(asset, destination, activeFrom);
        _spend(asset, amount);
        if (asset == address(0)) {
            (bool ok,) = destination.call{value: amount}("");
            if (!ok) revert CollateralVaultNativeTransferFailed();
        } else {
            IERC20(asset).safeTransfer(destination, amount);
        }
        emit Withdrawn(asset, destination, amount, ref);
    }

    function _spend(address asset, uint256 amount) private {
        Limit storage l = _limits[asset];
        if (l.window == 0) revert CollateralVaultVelocityExceeded(asset, amount, 0);
        uint64 start = uint64(block.timestamp - (block.timestamp % l.window));
        if (start != l.windowStart) {
            l.windowStart = start;
            l.spent = 0;
        }
        uint256 remaining = l.maxPerWindow > l.spent ? l.maxPerWindow - l.spent : 0;
        if (amount > remaining) revert CollateralVaultVelocityExceeded(asset, amount, remaining);
        l.spent += amount;
    }

    // --- views -----------------------------------------------------------------------------------

    function timelock() external view returns (uint64) {
        return _timelock;
    }

    /// @notice 0: not listed; otherwise the time from which `destination` is usable.
    function activatesAt(address asset, address destination) external view returns (uint64) {
        return _allowlist[_key(asset, destination)];
    }

    function isAllowed(address asset, address destination) public view returns (bool) {
        uint64 at = _allowlist[_key(asset, destination)];
        return at != 0 && at <= block.timestamp;
    }

    /// @notice What may still leave in the current window.
    function remainingInWindow(address asset) external view returns (uint256) {
        Limit storage l = _limits[asset];
        if (l.window == 0) return 0;
        uint64 start = uint64(block.timestamp - (block.timestamp % l.window));
        if (start != l.windowStart) return l.maxPerWindow;
        return l.maxPerWindow > l.spent ? l.maxPerWindow - l.spent : 0;
    }

    function _key(address asset, address destination) private pure returns (bytes32) {
        return keccak256(abi.encode(asset, destination));
    }
}
