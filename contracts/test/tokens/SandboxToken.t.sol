// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.20;

import {Test} from "../utils/Test.sol";
import {IERC20Errors} from "@openzeppelin/contracts/interfaces/draft-IERC6093.sol";
import {SandboxToken} from "../../src/tokens/SandboxToken.sol";

contract SandboxTokenTest is Test {
    SandboxToken private usdc;
    address private constant OWNER = address(0xA11CE);
    address private constant ALICE = address(0xA1);
    address private constant BOB = address(0xB0B);

    function setUp() public {
        usdc = new SandboxToken();
        usdc.initialize("Sandbox USDC", "USDC", 6, OWNER);
    }

    function test_MetadataComesFromInitialize() public view {
        assertEq(usdc.name(), "Sandbox USDC");
        assertEq(usdc.symbol(), "USDC");
        assertEq(uint256(usdc.decimals()), 6);
    }

    function test_WorksAfterCodeIsPlacedElsewhere() public {
        // What the sandbox does with anvil_setCode: runtime code only, no constructor.
        address canonical = 0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48;
        vm.etch(canonical, address(usdc).code);
        SandboxToken placed = SandboxToken(canonical);
        placed.initialize("USD Coin", "USDC", 6, OWNER);
        vm.prank(OWNER);
        placed.mint(ALICE, 5e6);
        assertEq(placed.balanceOf(ALICE), 5e6);
        assertEq(uint256(placed.decimals()), 6);
    }

    function test_MintTransferBurn() public {
        vm.prank(OWNER);
        usdc.mint(ALICE, 100e6);
        vm.prank(ALICE);
        assertTrue(usdc.transfer(BOB, 40e6));
        vm.prank(OWNER);
        usdc.burn(ALICE, 10e6);
        assertEq(usdc.balanceOf(ALICE), 50e6);
        assertEq(usdc.balanceOf(BOB), 40e6);
        assertEq(usdc.totalSupply(), 90e6);
    }

    function test_RevertIf_NotOwnerMints() public {
        vm.expectRevert(abi.encodeWithSelector(SandboxToken.SandboxTokenUnauthorized.selector, address(this)));
        usdc.mint(ALICE, 1);
    }

    function test_RevertIf_NotOwnerBurns() public {
        vm.prank(OWNER);
        usdc.mint(ALICE, 1);
        vm.prank(ALICE);
        vm.expectRevert(abi.encodeWithSelector(SandboxToken.SandboxTokenUnauthorized.selector, ALICE));
        usdc.burn(ALICE, 1);
    }

    function test_RevertIf_TransferExceedsBalance() public {
        vm.prank(OWNER);
        usdc.mint(ALICE, 1e6);
        vm.prank(ALICE);
        vm.expectRevert(abi.encodeWithSelector(IERC20Errors.ERC20InsufficientBalance.selector, ALICE, 1e6, 2e6));
        // forge-lint: disable-next-line(erc20-unchecked-transfer)
        usdc.transfer(BOB, 2e6); // reverts: there is no return value to check
    }

    function test_RevertIf_InitializedTwice() public {
        vm.expectRevert(SandboxToken.SandboxTokenAlreadyInitialized.selector);
        usdc.initialize("x", "x", 18, address(this));
    }

    function testFuzz_TransferConservesSupply(uint256 minted, uint256 sent) public {
        minted = bound(minted, 0, type(uint128).max);
        sent = bound(sent, 0, minted);
        vm.prank(OWNER);
        usdc.mint(ALICE, minted);
        vm.prank(ALICE);
        assertTrue(usdc.transfer(BOB, sent));
        assertEq(usdc.balanceOf(ALICE) + usdc.balanceOf(BOB), minted);
        assertEq(usdc.totalSupply(), minted);
    }

    function testFuzz_DecimalsAndMetadataFromInitialize(uint8 decimals_, string calldata symbol_) public {
        SandboxToken token = new SandboxToken();
        token.initialize("Sandbox", symbol_, decimals_, OWNER);
        assertEq(uint256(token.decimals()), uint256(decimals_));
        assertEq(token.symbol(), symbol_);
        assertEq(token.owner(), OWNER);
    }
}
