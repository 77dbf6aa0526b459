// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.20;

import {Test} from "../utils/Test.sol";
import {Aggregate3Reader} from "../../src/reader/Aggregate3Reader.sol";
import {SandboxToken} from "../../src/tokens/SandboxToken.sol";

/// @dev UNSAFE mock: balanceOf always reverts.
contract RevertingBalanceMock {
    function balanceOf(address) external pure returns (uint256) {
        revert("broken");
    }
}

contract Aggregate3ReaderTest is Test {
    Aggregate3Reader private agg;
    SandboxToken private token;
    RevertingBalanceMock private broken;
    address private constant HOLDER = address(0x1234);

    function setUp() public {
        agg = new Aggregate3Reader();
        token = new SandboxToken();
        token.initialize("A", "A", 6, address(this));
        token.mint(HOLDER, 7e6);
        broken = new RevertingBalanceMock();
    }

    function _call(address target, bool allowFailure, bytes memory data)
        private
        pure
        returns (Aggregate3Reader.Call3 memory)
    {
        return Aggregate3Reader.Call3(target, allowFailure, data);
    }

    function test_ResultsInOrderAndFailuresReportedNotReverted() public {
        Aggregate3Reader.Call3[] memory calls = new Aggregate3Reader.Call3[](4);
        calls[0] = _call(address(token), true, abi.encodeWithSelector(0x70a08231, HOLDER));
        calls[1] = _call(address(broken), true, abi.encodeWithSelector(0x70a08231, HOLDER));
        calls[2] = _call(address(0xdead), true, abi.encodeWithSelector(0x70a08231, HOLDER));
        calls[3] = _call(address(agg), true, abi.encodeWithSelector(agg.getEthBalance.selector, HOLDER));
        vm.deal(HOLDER, 3 ether);
        Aggregate3Reader.Result[] memory got = agg.aggregate3(calls);
        assertEq(got.length, 4);
        assertTrue(got[0].success);
        assertEq(abi.decode(got[0].returnData, (uint256)), 7e6);
        assertFalse(got[1].success, "a reverting read must report failure");
        assertTrue(got[2].success, "an address without code answers empty, as in Multicall3");
        assertEq(got[2].returnData.length, 0);
        assertTrue(got[3].success);
        assertEq(abi.decode(got[3].returnData, (uint256)), 3 ether);
    }

    function test_RevertIf_FailureNotAllowed() public {
        Aggregate3Reader.Call3[] memory calls = new Aggregate3Reader.Call3[](1);
        calls[0] = _call(address(broken), false, abi.encodeWithSelector(0x70a08231, HOLDER));
        vm.expectRevert(bytes("Aggregate3Reader: call failed"));
        agg.aggregate3(calls);
    }

    function test_SelectorsAreMulticall3s() public view {
        // The agent calls these selectors at the canonical Multicall3 address.
        assertEq(bytes32(agg.aggregate3.selector), bytes32(bytes4(0x82ad56cb)));
        assertEq(bytes32(agg.getEthBalance.selector), bytes32(bytes4(0x4d2301cc)));
    }
}
