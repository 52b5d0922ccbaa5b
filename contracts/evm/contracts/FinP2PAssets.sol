// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {FinIds} from "./FinIds.sol";
import {Operated} from "./Operated.sol";

/// @title FinP2P assets with escrow
/// @notice Many assets in one contract, each named by its FinP2P asset id. Balances belong to FinIDs (held at the
/// FinID's address). Every operation carries a FinP2P operation id that can be used once; an operation that moves
/// an owner's units (transfer, hold, redeem) needs the owner's EIP-712 signature over the operation, checked here.
/// Only the operator submits operations.
contract FinP2PAssets is Operated {
    using FinIds for string;

    /// @notice The fields of one operation; fields an operation does not use are left empty (zero).
    /// `expiry` is the unix time after which a hold can no longer be released (0: never).
    struct Operation {
        string operationId;
        string assetId;
        string source;
        string destination;
        uint256 quantity;
        uint256 expiry;
    }

    /// @notice The owner's consent. `template` 0: the signature is over this contract's own typed data for the
    /// operation (checked here in full). Otherwise `template` is the digest of a FinP2P signature template (the
    /// ledger-adapter API's EIP712 or hashList) that the operator checked against the operation; the owner's
    /// signature over it is checked here, the template can be used once, and it is recorded in `Consented`.
    struct Consent {
        bytes32 template;
        bytes signature;
    }

    /// @notice What one operation of a batch is (see `executeBatch`).
    enum Kind {
        Issue,
        Transfer,
        Redeem,
        Hold,
        Release,
        Rollback
    }

    /// @notice One operation of a batch: its kind, its fields, and the owner's consent where the kind needs one.
    struct Call {
        Kind kind;
        Operation op;
        Consent consent;
    }

    enum HoldStatus {
        None,
        Active,
        Released,
        RolledBack,
        Redeemed
    }

    struct Hold {
        bytes32 asset;
        address source;
        address destination;
        uint256 quantity;
        uint256 expiry;
        HoldStatus status;
        uint256 settledIn; // the block it was released, redeemed or rolled back in
    }

    error UnknownAsset(string assetId);
    error AssetExists(string assetId);
    error ZeroQuantity();
    error InsufficientBalance(uint256 available, uint256 required);
    error OperationIdUsed(string operationId);
    error UnknownHold(string operationId);
    error HoldExpired(uint256 expiry);
    error HoldMismatch(string field);
    error ReleaseExceedsHold(uint256 held, uint256 requested);
    error BadSignature();
    error ConsentUsed(bytes32 template);
    error OnlyInBatch(address caller);

    event AssetCreated(bytes32 indexed asset, string assetId);
    event Consented(bytes32 indexed operation, bytes32 template);
    // One event per operation, carrying the operation as submitted (fields it does not use are empty).
    event Issued(bytes32 indexed operation, Operation op);
    event Transferred(bytes32 indexed operation, Operation op);
    event Redeemed(bytes32 indexed operation, Operation op);
    event Held(bytes32 indexed operation, Operation op);
    event Released(bytes32 indexed operation, Operation op);
    event RolledBack(bytes32 indexed operation, Operation op);
    /// @notice An operation of a batch that reverted, alone: `reason` is its revert data (a custom error above).
    event OperationFailed(bytes32 indexed operation, bytes reason);

    bytes32 private constant DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");
    bytes32 public constant TRANSFER_TYPEHASH =
        keccak256("Transfer(string operationId,string assetId,string source,string destination,uint256 quantity)");
    bytes32 public constant HOLD_TYPEHASH = keccak256(
        "Hold(string operationId,string assetId,string source,string destination,uint256 quantity,uint256 expiry)"
    );
    bytes32 public constant REDEEM_TYPEHASH =
        keccak256("Redeem(string operationId,string assetId,string source,uint256 quantity)");
    // Half the secp256k1 group order: signatures with a larger s are the malleated twin of a valid one.
    uint256 private constant HALF_ORDER = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0;

    mapping(bytes32 asset => bool) private _assets;
    mapping(bytes32 asset => uint256) public totalSupply;
    mapping(bytes32 asset => mapping(address owner => uint256)) private _available;
    mapping(bytes32 asset => mapping(address owner => uint256)) private _held;
    /// @notice The block each operation id was spent in (0: unused), so an operation is found by its id with one
    /// single-block log query instead of a scan.
    mapping(bytes32 operation => uint256 blockNumber) public executedIn;
    mapping(bytes32 operation => Hold) private _holds;
    mapping(bytes32 template => bool) private _usedTemplates;

    constructor(address initialOperator) Operated(initialOperator) {}

    // ------------------------------------------------------------------------------------------------- operations

    function createAsset(string calldata assetId) external onlyOperator {
        bytes32 asset = keccak256(bytes(assetId));
        if (_assets[asset]) revert AssetExists(assetId);
        _assets[asset] = true;
        emit AssetCreated(asset, assetId);
    }

    /// @notice Creates `quantity` units for the destination.
    function issue(Operation calldata op) external onlyOperator {
        _issue(op);
    }

    /// @notice Moves units of the source, with its consent, to the destination.
    function transfer(Operation calldata op, Consent calldata consent) external onlyOperator {
        _transfer(op, consent);
    }

    /// @notice Destroys units: from the active hold with the same operation id when there is one, otherwise from
    /// the owner's balance with the owner's signature.
    function redeem(Operation calldata op, Consent calldata consent) external onlyOperator {
        _redeem(op, consent);
    }

    /// @notice Escrows units of the source under the operation id; `destination` may be empty (any payee).
    function hold(Operation calldata op, Consent calldata consent) external onlyOperator {
        _hold(op, consent);
    }

    /// @notice Pays `quantity` of the hold to the destination; any remainder returns to the source.
    function release(Operation calldata op) external onlyOperator {
        _release(op);
    }

    /// @notice Returns the whole hold to its source, before or after its expiry.
    function rollback(Operation calldata op) external onlyOperator {
        _rollback(op);
    }

    /// @notice Many operations in one transaction, each all or nothing on its own: one that reverts undoes only
    /// itself (its id stays unspent) and emits `OperationFailed` with its reason; the others stand. Returns how many
    /// succeeded.
    function executeBatch(Call[] calldata calls) external onlyOperator returns (uint256 succeeded) {
        for (uint256 i; i < calls.length; ++i) {
            try this.executeOne(calls[i]) {
                ++succeeded;
            } catch (bytes memory reason) {
                emit OperationFailed(keccak256(bytes(calls[i].op.operationId)), reason);
            }
        }
    }

    /// @notice One call of `executeBatch`, in a frame of its own so that its revert is its own; only the contract
    /// itself calls it (the operator's check was `executeBatch`'s).
    function executeOne(Call calldata call) external {
        if (msg.sender != address(this)) revert OnlyInBatch(msg.sender);
        Kind kind = call.kind;
        if (kind == Kind.Issue) _issue(call.op);
        else if (kind == Kind.Transfer) _transfer(call.op, call.consent);
        else if (kind == Kind.Redeem) _redeem(call.op, call.consent);
        else if (kind == Kind.Hold) _hold(call.op, call.consent);
        else if (kind == Kind.Release) _release(call.op);
        else _rollback(call.op);
    }

    function _issue(Operation calldata op) private {
        (bytes32 asset, bytes32 operation) = _begin(op);
        address destination = op.destination.toAddress();
        totalSupply[asset] += op.quantity;
        _available[asset][destination] += op.quantity;
        emit Issued(operation, op);
    }

    function _transfer(Operation calldata op, Consent calldata consent) private {
        (bytes32 asset, bytes32 operation) = _begin(op);
        address source = _consent(op, TRANSFER_TYPEHASH, consent);
        address destination = op.destination.toAddress();
        _debit(asset, source, op.quantity);
        _available[asset][destination] += op.quantity;
        emit Transferred(operation, op);
    }

    /// @dev Destroys units: from the active hold with the same operation id when there is one (the owner
    /// consented when the units were held), otherwise from the owner's balance with the owner's signature.
    function _redeem(Operation calldata op, Consent calldata consent) private {
        bytes32 operation = keccak256(bytes(op.operationId));
        bytes32 asset = keccak256(bytes(op.assetId));
        if (_holds[operation].status == HoldStatus.Active) {
            Hold storage escrow = _settle(operation, op, HoldStatus.Redeemed);
            totalSupply[asset] -= op.quantity;
            _refundRemainder(escrow, op.quantity);
        } else {
            _begin(op);
            address source = _consent(op, REDEEM_TYPEHASH, consent);
            _debit(asset, source, op.quantity);
            totalSupply[asset] -= op.quantity;
        }
        emit Redeemed(operation, op);
    }

    /// @dev Escrows units of the source under the operation id; `destination` may be empty (any payee).
    function _hold(Operation calldata op, Consent calldata consent) private {
        (bytes32 asset, bytes32 operation) = _begin(op);
        address source = _consent(op, HOLD_TYPEHASH, consent);
        address destination = bytes(op.destination).length == 0 ? address(0) : op.destination.toAddress();
        _debit(asset, source, op.quantity);
        _held[asset][source] += op.quantity;
        _holds[operation] = Hold(asset, source, destination, op.quantity, op.expiry, HoldStatus.Active, 0);
        emit Held(operation, op);
    }

    /// @dev Pays `quantity` of the hold to the destination; any remainder returns to the source. Closes the escrow.
    function _release(Operation calldata op) private {
        bytes32 operation = keccak256(bytes(op.operationId));
        Hold storage escrow = _settle(operation, op, HoldStatus.Released);
        address destination = op.destination.toAddress();
        if (escrow.destination != address(0) && escrow.destination != destination) revert HoldMismatch("destination");
        _available[escrow.asset][destination] += op.quantity;
        _refundRemainder(escrow, op.quantity);
        emit Released(operation, op);
    }

    /// @dev Returns the whole hold to its source, before or after its expiry.
    function _rollback(Operation calldata op) private {
        bytes32 operation = keccak256(bytes(op.operationId));
        Hold storage escrow = _holds[operation];
        _checkHold(escrow, op);
        if (op.quantity != escrow.quantity) revert ReleaseExceedsHold(escrow.quantity, op.quantity);
        escrow.status = HoldStatus.RolledBack;
        escrow.settledIn = block.number;
        _held[escrow.asset][escrow.source] -= escrow.quantity;
        _available[escrow.asset][escrow.source] += escrow.quantity;
        emit RolledBack(operation, op);
    }

    // ------------------------------------------------------------------------------------------------------ views

    /// @notice Units of `finId` in `assetId`: free to move, and held in escrow.
    function balanceOf(string calldata assetId, string calldata finId)
        external
        view
        returns (uint256 available, uint256 held)
    {
        bytes32 asset = keccak256(bytes(assetId));
        address owner = finId.toAddress();
        return (_available[asset][owner], _held[asset][owner]);
    }

    function supplyOf(string calldata assetId) external view returns (uint256) {
        return totalSupply[keccak256(bytes(assetId))];
    }

    function assetExists(string calldata assetId) external view returns (bool) {
        return _assets[keccak256(bytes(assetId))];
    }

    function operationUsed(string calldata operationId) external view returns (bool) {
        return executedIn[keccak256(bytes(operationId))] != 0;
    }

    function holdOf(string calldata operationId) external view returns (Hold memory) {
        return _holds[keccak256(bytes(operationId))];
    }

    /// @notice The EIP-712 digest the owner signs for `op` (`typeHash` one of TRANSFER, HOLD, REDEEM).
    function consentDigest(Operation calldata op, bytes32 typeHash) public view returns (bytes32) {
        bytes32 structHash;
        if (typeHash == REDEEM_TYPEHASH) {
            structHash = keccak256(
                abi.encode(
                    typeHash, keccak256(bytes(op.operationId)), keccak256(bytes(op.assetId)), keccak256(bytes(op.source)),
                    op.quantity
                )
            );
        } else {
            bytes memory head = abi.encode(
                typeHash,
                keccak256(bytes(op.operationId)),
                keccak256(bytes(op.assetId)),
                keccak256(bytes(op.source)),
                keccak256(bytes(op.destination)),
                op.quantity
            );
            structHash = typeHash == HOLD_TYPEHASH ? keccak256(abi.encodePacked(head, op.expiry)) : keccak256(head);
        }
        return keccak256(abi.encodePacked(hex"1901", domainSeparator(), structHash));
    }

    function domainSeparator() public view returns (bytes32) {
        return keccak256(
            abi.encode(DOMAIN_TYPEHASH, keccak256("FinP2P"), keccak256("1"), block.chainid, address(this))
        );
    }

    // --------------------------------------------------------------------------------------------------- internal

    /// @dev Checks what every new operation needs and spends its operation id.
    function _begin(Operation calldata op) private returns (bytes32 asset, bytes32 operation) {
        asset = keccak256(bytes(op.assetId));
        if (!_assets[asset]) revert UnknownAsset(op.assetId);
        if (op.quantity == 0) revert ZeroQuantity();
        operation = keccak256(bytes(op.operationId));
        if (executedIn[operation] != 0) revert OperationIdUsed(op.operationId);
        executedIn[operation] = block.number;
    }

    /// @dev The source's address, once its signature is checked: over the operation's typed data, or over a
    /// template (used once). The signature is r || s (64 bytes, low s), as FinP2P signs; both recovery ids are tried.
    function _consent(Operation calldata op, bytes32 typeHash, Consent calldata consent) private returns (address) {
        address source = op.source.toAddress();
        bytes calldata signature = consent.signature;
        if (signature.length != 64) revert BadSignature();
        bytes32 r = bytes32(signature[0:32]);
        bytes32 s = bytes32(signature[32:64]);
        if (uint256(s) > HALF_ORDER) revert BadSignature();
        bytes32 digest = consent.template;
        if (digest == 0) {
            digest = consentDigest(op, typeHash);
        } else {
            if (_usedTemplates[digest]) revert ConsentUsed(digest);
            _usedTemplates[digest] = true;
            emit Consented(keccak256(bytes(op.operationId)), digest);
        }
        if (ecrecover(digest, 27, r, s) != source && ecrecover(digest, 28, r, s) != source) revert BadSignature();
        return source;
    }

    function _debit(bytes32 asset, address owner, uint256 quantity) private {
        uint256 available = _available[asset][owner];
        if (available < quantity) revert InsufficientBalance(available, quantity);
        _available[asset][owner] = available - quantity;
    }

    function _checkHold(Hold storage escrow, Operation calldata op) private view {
        if (escrow.status != HoldStatus.Active) revert UnknownHold(op.operationId);
        if (escrow.asset != keccak256(bytes(op.assetId))) revert HoldMismatch("assetId");
        if (escrow.source != op.source.toAddress()) revert HoldMismatch("source");
    }

    /// @dev Closes an active, unexpired hold paying out `op.quantity` of it.
    function _settle(bytes32 operation, Operation calldata op, HoldStatus outcome) private returns (Hold storage escrow) {
        escrow = _holds[operation];
        _checkHold(escrow, op);
        if (escrow.expiry != 0 && block.timestamp > escrow.expiry) revert HoldExpired(escrow.expiry);
        if (op.quantity == 0) revert ZeroQuantity();
        if (op.quantity > escrow.quantity) revert ReleaseExceedsHold(escrow.quantity, op.quantity);
        escrow.status = outcome;
        escrow.settledIn = block.number;
        _held[escrow.asset][escrow.source] -= escrow.quantity;
    }

    function _refundRemainder(Hold storage escrow, uint256 paid) private {
        _available[escrow.asset][escrow.source] += escrow.quantity - paid;
    }
}
