// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {Operated} from "./Operated.sol";

/// @title FinP2P receipt registry
/// @notice Records receipt hashes, one at a time or many at once as the root of a Merkle tree (sorted pairs,
/// keccak256), and answers whether a receipt is recorded. A single receipt is a tree of one leaf: its root is
/// its own hash, and its proof is empty.
contract ReceiptRegistry is Operated {
    error AlreadyRecorded(bytes32 root);
    error EmptyBatch();

    event ReceiptsRecorded(bytes32 indexed root, uint256 count);

    /// @notice The block a root was recorded in (0: not recorded).
    mapping(bytes32 root => uint256 blockNumber) public recordedIn;

    constructor(address initialOperator) Operated(initialOperator) {}

    function record(bytes32 root, uint256 count) external onlyOperator {
        if (count == 0) revert EmptyBatch();
        if (recordedIn[root] != 0) revert AlreadyRecorded(root);
        recordedIn[root] = block.number;
        emit ReceiptsRecorded(root, count);
    }

    /// @notice Whether `receiptHash` is recorded, alone (empty proof) or in a batch (its Merkle proof).
    function isRecorded(bytes32 receiptHash, bytes32[] calldata proof) external view returns (bool) {
        bytes32 node = receiptHash;
        for (uint256 i = 0; i < proof.length; ++i) {
            bytes32 sibling = proof[i];
            node = node < sibling
                ? keccak256(abi.encodePacked(node, sibling))
                : keccak256(abi.encodePacked(sibling, node));
        }
        return recordedIn[node] != 0;
    }
}
