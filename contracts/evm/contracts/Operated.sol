// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

/// @notice One operator account (the primary node's FinID key) may submit operations; it can hand over to a new key.
abstract contract Operated {
    error NotOperator(address caller);

    event OperatorChanged(address indexed previous, address indexed next);

    address public operator;

    constructor(address initialOperator) {
        operator = initialOperator;
        emit OperatorChanged(address(0), initialOperator);
    }

    modifier onlyOperator() {
        if (msg.sender != operator) revert NotOperator(msg.sender);
        _;
    }

    function changeOperator(address next) external onlyOperator {
        emit OperatorChanged(operator, next);
        operator = next;
    }
}
