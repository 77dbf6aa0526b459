// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.20;

/// @dev The subset of Foundry cheatcodes our tests use, at the HEVM address
/// 0x7109709ECfa91a80626fF3989D68f67F5b1DD12D. forge-std cannot be installed offline (forge install
/// needs GitHub; npm's forge-std 1.1.2 imports ds-test, which no registry here carries), so we declare
/// the signatures ourselves. They must match forge's cheatcode ABI exactly.
interface Vm {
    // Caller and environment.
    function prank(address sender) external;
    function startPrank(address sender) external;
    function stopPrank() external;
    function warp(uint256 timestamp) external;
    function roll(uint256 blockNumber) external;
    function deal(address who, uint256 amount) external;
    function etch(address target, bytes calldata code) external;
    function store(address target, bytes32 slot, bytes32 value) external;
    function load(address target, bytes32 slot) external view returns (bytes32);

    // Fuzzing and labels.
    function assume(bool condition) external pure;
    function label(address account, string calldata name) external;
    function addr(uint256 privateKey) external pure returns (address);

    // Expectations.
    function expectRevert() external;
    function expectRevert(bytes4 selector) external;
    function expectRevert(bytes calldata revertData) external;
    function expectEmit() external;
    function expectEmit(address emitter) external;
    function expectEmit(bool checkTopic1, bool checkTopic2, bool checkTopic3, bool checkData) external;
    function expectEmit(bool checkTopic1, bool checkTopic2, bool checkTopic3, bool checkData, address emitter)
        external;
}
