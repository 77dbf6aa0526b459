// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.20;

import {Test} from "../utils/Test.sol";
import {SandboxSanctionsList} from "../../src/screening/SandboxSanctionsList.sol";

contract SandboxSanctionsListTest is Test {
    SandboxSanctionsList private list;
    address private constant OWNER = address(0xA11CE);
    address private constant BAD = address(0xBAD);
    address private constant GOOD = address(0x600D);

    function setUp() public {
        list = new SandboxSanctionsList();
        list.initialize(OWNER);
    }

    function _one(address a) private pure returns (address[] memory out) {
        out = new address[](1);
        out[0] = a;
    }

    function test_AddAndRemove() public {
        assertFalse(list.isSanctioned(BAD));
        vm.prank(OWNER);
        list.addToSanctionsList(_one(BAD));
        assertTrue(list.isSanctioned(BAD));
        assertFalse(list.isSanctioned(GOOD));
        vm.prank(OWNER);
        list.removeFromSanctionsList(_one(BAD));
        assertFalse(list.isSanctioned(BAD));
    }

    function test_WorksAfterCodeIsPlacedElsewhere() public {
        address canonical = 0x40C57923924B5c5c5455c48D93317139ADDaC8fb;
        vm.etch(canonical, address(list).code);
        SandboxSanctionsList placed = SandboxSanctionsList(canonical);
        placed.initialize(OWNER);
        vm.prank(OWNER);
        placed.addToSanctionsList(_one(BAD));
        assertTrue(placed.isSanctioned(BAD));
        assertEq(placed.owner(), OWNER);
    }

    function test_RevertIf_NotOwnerAdds() public {
        vm.expectRevert(abi.encodeWithSelector(SandboxSanctionsList.SandboxSanctionsListUnauthorized.selector,
            address(this)));
        list.addToSanctionsList(_one(BAD));
    }

    function test_RevertIf_InitializedTwice() public {
        vm.expectRevert(SandboxSanctionsList.SandboxSanctionsListAlreadyInitialized.selector);
        list.initialize(address(this));
    }
}
