// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.20;

import {Test} from "../utils/Test.sol";
import {CollateralVault} from "../../src/custody/CollateralVault.sol";
import {SandboxToken} from "../../src/tokens/SandboxToken.sol";
import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";

contract CollateralVaultTest is Test {
    CollateralVault internal vault;
    SandboxToken internal usdc;
    address internal constant ADMIN = address(0xAD);
    address internal constant COMPLIANCE = address(0xC0);
    address internal constant TREASURY = address(0x7E);
    address internal constant GUARDIAN = address(0x6A);
    address internal constant DEST = address(0xD357);
    address internal constant THIEF = address(0xBAD);
    uint64 internal constant TIMELOCK = 48 hours;

    function setUp() public {
        vm.warp(1_700_000_000);
        vault = new CollateralVault(ADMIN, TIMELOCK);
        usdc = new SandboxToken();
        usdc.initialize("USD Coin", "USDC", 6, address(this));
        usdc.mint(address(vault), 1_000_000e6);
        vm.deal(address(vault), 100 ether);
        vm.startPrank(ADMIN);
        vault.grantRole(vault.COMPLIANCE_ROLE(), COMPLIANCE);
        vault.grantRole(vault.TREASURY_ROLE(), TREASURY);
        vault.grantRole(vault.GUARDIAN_ROLE(), GUARDIAN);
        vault.setVelocityLimit(address(usdc), 100_000e6, 1 days);
        vault.setVelocityLimit(address(0), 10 ether, 1 days);
        vm.stopPrank();
    }

    function _allow(address asset, address dest) internal {
        vm.prank(COMPLIANCE);
        vault.proposeDestination(asset, dest);
        vm.warp(block.timestamp + TIMELOCK);
    }

    function test_WithdrawToActiveDestination() public {
        _allow(address(usdc), DEST);
        vm.prank(TREASURY);
        vault.withdraw(address(usdc), DEST, 40_000e6, bytes32("w-1"));
        assertEq(usdc.balanceOf(DEST), 40_000e6);
        assertEq(vault.remainingInWindow(address(usdc)), 60_000e6);
    }

    function test_WithdrawNativeEth() public {
        _allow(address(0), DEST);
        vm.prank(TREASURY);
        vault.withdraw(address(0), DEST, 1 ether, bytes32("w-2"));
        assertEq(DEST.balance, 1 ether);
    }

    function test_RevertIf_DestinationNotAllowlisted() public {
        vm.prank(TREASURY);
        vm.expectRevert(
            abi.encodeWithSelector(CollateralVault.CollateralVaultNotAllowlisted.selector, address(usdc), THIEF)
        );
        vault.withdraw(address(usdc), THIEF, 1e6, bytes32(0));
    }

    function test_RevertIf_TimelockNotElapsed() public {
        vm.prank(COMPLIANCE);
        vault.proposeDestination(address(usdc), DEST);
        vm.warp(block.timestamp + TIMELOCK - 1);
        vm.prank(TREASURY);
        vm.expectRevert(
            abi.encodeWithSelector(
                CollateralVault.CollateralVaultNotYetActive.selector,
                address(usdc),
                DEST,
                uint64(block.timestamp + 1)
            )
        );
        vault.withdraw(address(usdc), DEST, 1e6, bytes32(0));
    }

    function test_CancelledProposalNeverActivates() public {
        vm.prank(COMPLIANCE);
        vault.proposeDestination(address(usdc), DEST);
        vm.prank(COMPLIANCE);
        vault.cancelDestination(address(usdc), DEST);
        vm.warp(block.timestamp + TIMELOCK * 2);
        assertFalse(vault.isAllowed(address(usdc), DEST), "cancelled entry must not activate");
    }

    function test_RemovalIsImmediate() public {
        _allow(address(usdc), DEST);
        vm.prank(COMPLIANCE);
        vault.removeDestination(address(usdc), DEST);
        vm.prank(TREASURY);
        vm.expectRevert(
            abi.encodeWithSelector(CollateralVault.CollateralVaultNotAllowlisted.selector, address(usdc), DEST)
        );
        vault.withdraw(address(usdc), DEST, 1e6, bytes32(0));
    }

    function test_RevertIf_VelocityExceeded() public {
        _allow(address(usdc), DEST);
        vm.startPrank(TREASURY);
        vault.withdraw(address(usdc), DEST, 90_000e6, bytes32("a"));
        vm.expectRevert(
            abi.encodeWithSelector(
                CollateralVault.CollateralVaultVelocityExceeded.selector, address(usdc), 20_000e6, 10_000e6
            )
        );
        vault.withdraw(address(usdc), DEST, 20_000e6, bytes32("b"));
        vm.stopPrank();
        vm.warp(block.timestamp + 1 days);
        vm.prank(TREASURY);
        vault.withdraw(address(usdc), DEST, 20_000e6, bytes32("c"));
        assertEq(usdc.balanceOf(DEST), 110_000e6);
    }

    function test_RevertIf_AssetHasNoLimit() public {
        SandboxToken other = new SandboxToken();
        other.initialize("X", "X", 18, address(this));
        other.mint(address(vault), 1e18);
        _allow(address(other), DEST);
        vm.prank(TREASURY);
        vm.expectRevert(
            abi.encodeWithSelector(CollateralVault.CollateralVaultVelocityExceeded.selector, address(other), 1, 0)
        );
        vault.withdraw(address(other), DEST, 1, bytes32(0));
    }

    function test_RevertIf_Paused() public {
        _allow(address(usdc), DEST);
        vm.prank(GUARDIAN);
        vault.pause();
        vm.prank(TREASURY);
        vm.expectRevert(Pausable.EnforcedPause.selector);
        vault.withdraw(address(usdc), DEST, 1e6, bytes32(0));
    }

    function test_RevertIf_GuardianUnpauses() public {
        bytes32 adminRole = vault.DEFAULT_ADMIN_ROLE();
        vm.prank(GUARDIAN);
        vault.pause();
        vm.prank(GUARDIAN);
        vm.expectRevert(
            abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, GUARDIAN, adminRole)
        );
        vault.unpause();
    }

    function test_RevertIf_GuardianWithdraws() public {
        _allow(address(usdc), DEST);
        bytes32 treasuryRole = vault.TREASURY_ROLE();
        vm.prank(GUARDIAN);
        vm.expectRevert(
            abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, GUARDIAN, treasuryRole)
        );
        vault.withdraw(address(usdc), DEST, 1e6, bytes32(0));
    }

    function test_RevertIf_TreasuryProposesDestination() public {
        bytes32 complianceRole = vault.COMPLIANCE_ROLE();
        vm.prank(TREASURY);
        vm.expectRevert(
            abi.encodeWithSelector(IAccessControl.AccessControlUnauthorizedAccount.selector, TREASURY, complianceRole)
        );
        vault.proposeDestination(address(usdc), THIEF);
    }

    function test_RevertIf_ProposingZeroOrSelf() public {
        vm.startPrank(COMPLIANCE);
        vm.expectRevert(CollateralVault.CollateralVaultInvalidDestination.selector);
        vault.proposeDestination(address(usdc), address(0));
        vm.expectRevert(CollateralVault.CollateralVaultInvalidDestination.selector);
        vault.proposeDestination(address(usdc), address(vault));
        vm.stopPrank();
    }

    function testFuzz_NeverSendsToUnlistedAddress(address dest, uint256 amount) public {
        vm.assume(dest != DEST && dest != address(0));
        amount = bound(amount, 1, 100_000e6);
        _allow(address(usdc), DEST);
        vm.prank(TREASURY);
        vm.expectRevert(
            abi.encodeWithSelector(CollateralVault.CollateralVaultNotAllowlisted.selector, address(usdc), dest)
        );
        vault.withdraw(address(usdc), dest, amount, bytes32(0));
    }

    function testFuzz_TimelockCannotBeBypassed(uint256 wait) public {
        wait = bound(wait, 0, TIMELOCK - 1);
        vm.prank(COMPLIANCE);
        vault.proposeDestination(address(usdc), DEST);
        vm.warp(block.timestamp + wait);
        assertFalse(vault.isAllowed(address(usdc), DEST), "active before the timelock");
    }

    function testFuzz_WindowTotalNeverAboveLimit(uint256[4] memory amounts) public {
        _allow(address(usdc), DEST);
        uint256 sent;
        for (uint256 i = 0; i < amounts.length; ++i) {
            uint256 a = bound(amounts[i], 1, 80_000e6);
            vm.prank(TREASURY);
            try vault.withdraw(address(usdc), DEST, a, bytes32(i)) {
                sent += a;
            } catch {}
        }
        assertLe(sent, 100_000e6);
        assertEq(usdc.balanceOf(DEST), sent);
    }
}
