// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.20;

import {Test} from "../utils/Test.sol";
import {SandboxAggregator} from "../../src/oracles/SandboxAggregator.sol";

contract SandboxAggregatorTest is Test {
    SandboxAggregator private feed;
    address private constant OWNER = address(0xA11CE);

    function setUp() public {
        feed = new SandboxAggregator();
        feed.initialize(8, "ETH / USD", OWNER);
        vm.warp(1_700_000_000);
    }

    function test_LatestRoundBeforeAnyUpdateIsAllZero() public view {
        (uint80 id, int256 answer,, uint256 updatedAt, uint80 air) = feed.latestRoundData();
        assertEq(uint256(id), 0);
        assertEq(answer, 0);
        assertEq(updatedAt, 0);
        assertEq(uint256(air), 0);
    }

    function test_UpdateAnswerStartsNewCompleteRound() public {
        vm.prank(OWNER);
        feed.updateAnswer(3000e8);
        vm.prank(OWNER);
        feed.updateAnswer(2900e8);
        (uint80 id, int256 answer, uint256 startedAt, uint256 updatedAt, uint80 air) = feed.latestRoundData();
        assertEq(uint256(id), 2);
        assertEq(answer, 2900e8);
        assertEq(startedAt, block.timestamp);
        assertEq(updatedAt, block.timestamp);
        assertEq(uint256(air), 2);
        (, int256 first,,,) = feed.getRoundData(1);
        assertEq(first, 3000e8);
    }

    function test_SetRoundDataExpressesIncompleteAndStaleRounds() public {
        vm.prank(OWNER);
        feed.setRoundData(7, -1, 100, 200, 6);
        (uint80 id, int256 answer, uint256 startedAt, uint256 updatedAt, uint80 air) = feed.latestRoundData();
        assertEq(uint256(id), 7);
        assertEq(answer, -1);
        assertEq(startedAt, 100);
        assertEq(updatedAt, 200);
        assertEq(uint256(air), 6);
    }

    function test_MetadataAfterInitialize() public view {
        assertEq(uint256(feed.decimals()), 8);
        assertEq(feed.description(), "ETH / USD");
        assertEq(feed.version(), 4);
        assertEq(feed.owner(), OWNER);
    }

    function test_UpdateAnswerEmitsChainlinkEvents() public {
        vm.expectEmit(true, true, false, true, address(feed));
        emit SandboxAggregator.NewRound(1, OWNER, block.timestamp);
        vm.expectEmit(true, true, false, true, address(feed));
        emit SandboxAggregator.AnswerUpdated(3000e8, 1, block.timestamp);
        vm.prank(OWNER);
        feed.updateAnswer(3000e8);
    }

    function test_WorksAfterCodeIsPlacedAtCanonicalAddress() public {
        // What the sandbox does with anvil_setCode: runtime code only, no constructor, empty storage.
        address canonical = 0x5f4eC3Df9cbd43714FE2740f5E3616155c5b8419; // mainnet ETH / USD
        vm.etch(canonical, address(feed).code);
        SandboxAggregator placed = SandboxAggregator(canonical);
        assertEq(placed.owner(), address(0));
        placed.initialize(8, "ETH / USD", OWNER);
        vm.prank(OWNER);
        placed.updateAnswer(2500e8);
        (, int256 answer,, uint256 updatedAt,) = placed.latestRoundData();
        assertEq(answer, 2500e8);
        assertEq(updatedAt, block.timestamp);
        assertEq(uint256(placed.decimals()), 8);
        assertEq(placed.description(), "ETH / USD");
    }

    function test_RevertIf_InitializedTwice() public {
        vm.expectRevert(SandboxAggregator.SandboxAggregatorAlreadyInitialized.selector);
        feed.initialize(18, "x", address(this));
    }

    function test_RevertIf_NotOwnerUpdates() public {
        vm.expectRevert(abi.encodeWithSelector(SandboxAggregator.SandboxAggregatorUnauthorized.selector, address(this)));
        feed.updateAnswer(1);
    }

    function test_RevertIf_NotOwnerSetsRoundData() public {
        vm.expectRevert(abi.encodeWithSelector(SandboxAggregator.SandboxAggregatorUnauthorized.selector, address(this)));
        feed.setRoundData(1, 1, 1, 1, 1);
    }

    function test_RevertIf_UnknownRound() public {
        vm.expectRevert(abi.encodeWithSelector(SandboxAggregator.SandboxAggregatorNoRound.selector, uint80(42)));
        feed.getRoundData(42);
    }

    function testFuzz_SetRoundDataRoundTrips(uint80 id, int256 answer, uint256 startedAt, uint256 updatedAt, uint80 air)
        public
    {
        vm.assume(startedAt != 0 || updatedAt != 0);
        vm.prank(OWNER);
        feed.setRoundData(id, answer, startedAt, updatedAt, air);
        (uint80 gotId, int256 gotAnswer, uint256 gotStarted, uint256 gotUpdated, uint80 gotAir) = feed.getRoundData(id);
        assertEq(uint256(gotId), uint256(id));
        assertEq(gotAnswer, answer);
        assertEq(gotStarted, startedAt);
        assertEq(gotUpdated, updatedAt);
        assertEq(uint256(gotAir), uint256(air));
    }

    function testFuzz_UpdateAnswerAdvancesRoundAfterSetRoundData(uint80 start, int256 answer, uint32 dt) public {
        // forge-lint: disable-next-line(unsafe-typecast)
        start = uint80(bound(start, 1, type(uint80).max - 1)); // bounded below uint80 max

        vm.prank(OWNER);
        feed.setRoundData(start, 1, 1, 1, start);
        vm.warp(block.timestamp + dt);
        vm.prank(OWNER);
        feed.updateAnswer(answer);
        (uint80 id, int256 got, uint256 startedAt, uint256 updatedAt, uint80 air) = feed.latestRoundData();
        assertEq(uint256(id), uint256(start) + 1);
        assertEq(got, answer);
        assertEq(startedAt, block.timestamp);
        assertEq(updatedAt, block.timestamp);
        assertEq(uint256(air), uint256(id));
    }
}
