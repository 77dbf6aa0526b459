// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.20;

import {Vm} from "./Vm.sol";

/// @dev Minimal test base (forge-std stand-in): the cheatcode handle, assertions that revert with a
/// message naming what differed, and `bound` for fuzz inputs.
abstract contract Test {
    Vm internal constant vm = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));

    function assertTrue(bool condition, string memory message) internal pure {
        require(condition, message);
    }

    function assertTrue(bool condition) internal pure {
        require(condition, "assertion failed");
    }

    function assertFalse(bool condition, string memory message) internal pure {
        require(!condition, message);
    }

    function assertFalse(bool condition) internal pure {
        require(!condition, "assertion failed: expected false");
    }

    function assertEq(uint256 a, uint256 b, string memory message) internal pure {
        require(a == b, message);
    }

    function assertEq(uint256 a, uint256 b) internal pure {
        require(a == b, "uint mismatch");
    }

    function assertEq(int256 a, int256 b, string memory message) internal pure {
        require(a == b, message);
    }

    function assertEq(int256 a, int256 b) internal pure {
        require(a == b, "int mismatch");
    }

    function assertEq(address a, address b, string memory message) internal pure {
        require(a == b, message);
    }

    function assertEq(address a, address b) internal pure {
        require(a == b, "address mismatch");
    }

    function assertEq(bool a, bool b) internal pure {
        require(a == b, "bool mismatch");
    }

    function assertEq(bytes32 a, bytes32 b) internal pure {
        require(a == b, "bytes32 mismatch");
    }

    function assertEq(string memory a, string memory b) internal pure {
        require(keccak256(bytes(a)) == keccak256(bytes(b)), "string mismatch");
    }

    function assertNotEq(uint256 a, uint256 b) internal pure {
        require(a != b, "uint unexpectedly equal");
    }

    function assertGt(uint256 a, uint256 b) internal pure {
        require(a > b, "not greater");
    }

    function assertGe(uint256 a, uint256 b) internal pure {
        require(a >= b, "not greater or equal");
    }

    function assertLt(uint256 a, uint256 b) internal pure {
        require(a < b, "not less");
    }

    function assertLe(uint256 a, uint256 b) internal pure {
        require(a <= b, "not less or equal");
    }

    /// @dev Map `x` into [min, max] (inclusive) without discarding fuzz runs.
    function bound(uint256 x, uint256 min, uint256 max) internal pure returns (uint256) {
        require(min <= max, "bound: min > max");
        if (x >= min && x <= max) return x;
        return min + (x % (max - min + 1));
    }
}
