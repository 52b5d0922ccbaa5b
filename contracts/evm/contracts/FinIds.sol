// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

/// @notice FinIDs are the lowercase hex of a compressed secp256k1 public key (66 characters). Balances belong to
/// the Ethereum address of that key, so a FinID's signature can be checked with ecrecover.
library FinIds {
    error InvalidFinId();

    // The secp256k1 field prime; (P + 1) / 4 is the exponent of a square root, since P % 4 == 3.
    uint256 private constant P = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEFFFFFC2F;
    uint256 private constant SQRT_EXPONENT = 0x3FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFBFFFFF0C;

    /// @notice The address of a FinID: its point decompressed (the modexp precompile gives the square root),
    /// then the last 20 bytes of keccak256(x || y). Reverts with InvalidFinId unless the FinID is a valid point.
    function toAddress(string calldata finId) internal view returns (address) {
        bytes calldata text = bytes(finId);
        if (text.length != 66) revert InvalidFinId();
        uint256 prefix = (_nibble(text[0]) << 4) | _nibble(text[1]);
        if (prefix != 2 && prefix != 3) revert InvalidFinId();
        uint256 x;
        for (uint256 i = 2; i < 66; ++i) {
            x = (x << 4) | _nibble(text[i]);
        }
        if (x >= P) revert InvalidFinId();
        uint256 ySquared = addmod(mulmod(mulmod(x, x, P), x, P), 7, P);
        uint256 y = _modexp(ySquared, SQRT_EXPONENT);
        if (mulmod(y, y, P) != ySquared) revert InvalidFinId();
        if ((y & 1) != (prefix & 1)) y = P - y;
        return address(uint160(uint256(keccak256(abi.encodePacked(x, y)))));
    }

    /// @dev Lowercase hex only, so that one key has exactly one FinID string (typed data hashes the string).
    function _nibble(bytes1 char) private pure returns (uint256) {
        uint8 c = uint8(char);
        if (c >= 48 && c <= 57) return c - 48;
        if (c >= 97 && c <= 102) return c - 87;
        revert InvalidFinId();
    }

    function _modexp(uint256 base, uint256 exponent) private view returns (uint256) {
        (bool ok, bytes memory out) = address(5).staticcall(
            abi.encode(uint256(32), uint256(32), uint256(32), base, exponent, P)
        );
        if (!ok || out.length != 32) revert InvalidFinId();
        return abi.decode(out, (uint256));
    }
}
