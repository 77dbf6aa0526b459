// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.20;

import {Test} from "../utils/Test.sol";
import {CollateralVault} from "../../src/custody/CollateralVault.sol";
import {SandboxToken} from "../../src/tokens/SandboxToken.sol";

/// @dev Drives the vault with random sequences of every role's calls and remembers what must hold.
contract VaultHandler is Test {
    CollateralVault internal immutable vault;
    SandboxToken internal immutable usdc;
    address internal constant COMPLIANCE = address(0xC0);
    address internal constant TREASURY = address(0x7E);
    address internal constant GUARDIAN = address(0x6A);
    address[3] internal dests = [address(0xD1), address(0xD2), address(0xD3)];

    uint256 public sentWhilePaused;
    uint256 public sentToInactive;

    constructor(CollateralVault vault_, SandboxToken usdc_) {
        vault = vault_;
        usdc = usdc_;
    }

    function propose(uint8 i) external {
        vm.prank(COMPLIANCE);
        try vault.proposeDestination(address(usdc), dests[i % 3]) {} catch {}
    }

    function cancel(uint8 i) external {
        vm.prank(COMPLIANCE);
        try vault.cancelDestination(address(usdc), dests[i % 3]) {} catch {}
    }

    function remove(uint8 i) external {
        vm.prank(COMPLIANCE);
        try vault.removeDestination(address(usdc), dests[i % 3]) {} catch {}
    }

    function pause() external {
        vm.prank(GUARDIAN);
        try vault.pause() {} catch {}
    }

    function wait(uint32 secondsForward) external {
        vm.warp(block.timestamp + bound(secondsForward, 0, 3 days));
    }

    function withdraw(uint8 i, uint256 amount, address anyone) external {
        address dest = i % 4 == 3 ? anyone : dests[i % 3];
        bool paused = vault.paused();
        bool active = vault.isAllowed(address(usdc), dest);
        uint256 before = usdc.balanceOf(dest);
        vm.prank(TREASURY);
        try vault.withdraw(address(usdc), dest, bound(amount, 1, 50_000e6), bytes32(0)) {
            uint256 moved = usdc.balanceOf(dest) - before;
            if (paused) sentWhilePaused += moved;
            if (!active) sentToInactive += moved;
        } catch {}
    }
}

contract CollateralVaultInvariantTest is Test {
    CollateralVault internal vault;
    SandboxToken internal usdc;
    VaultHandler internal handler;
    address[] internal _targets;

    function setUp() public {
        vm.warp(1_700_000_000);
        vault = new CollateralVault(address(this), 48 hours);
        usdc = new SandboxToken();
        usdc.initialize("USD Coin", "USDC", 6, address(this));
        usdc.mint(address(vault), 10_000_000e6);
        vault.grantRole(vault.COMPLIANCE_ROLE(), address(0xC0));
        vault.grantRole(vault.TREASURY_ROLE(), address(0x7E));
        vault.grantRole(vault.GUARDIAN_ROLE(), address(0x6A));
        vault.setVelocityLimit(address(usdc), 100_000e6, 1 days);
        handler = new VaultHandler(vault, usdc);
        _targets.push(address(handler));
    }

    /// @dev Read by forge's invariant runner (what forge-std's targetContract() would set).
    function targetContracts() public view returns (address[] memory) {
        return _targets;
    }

    function invariant_NothingLeavesWhilePaused() public view {
        assertEq(handler.sentWhilePaused(), 0, "outflow while paused");
    }

    function invariant_NothingReachesAnInactiveDestination() public view {
        assertEq(handler.sentToInactive(), 0, "outflow to a non-allowlisted or pending destination");
    }

    function invariant_VaultNeverHoldsMoreThanMinted() public view {
        assertLe(usdc.balanceOf(address(vault)), 10_000_000e6);
    }
}
