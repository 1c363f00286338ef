// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IEAS, Attestation} from "@ethereum-attestation-service/eas-contracts/contracts/IEAS.sol";
import {ISchemaRegistry} from "@ethereum-attestation-service/eas-contracts/contracts/ISchemaRegistry.sol";
import {ISchemaResolver} from "@ethereum-attestation-service/eas-contracts/contracts/resolver/ISchemaResolver.sol";
import {SchemaResolver} from "@ethereum-attestation-service/eas-contracts/contracts/resolver/SchemaResolver.sol";

interface IOwnedSeries {
    function owner() external view returns (address);
}

/// @title NoteAttestationResolver
/// @notice EAS resolver for the economic statements of hashrate-backed note series.
///
/// A note series is its token contract; an attestation is about the series named as its EAS recipient.
/// The series' issuer admin (the token contract's `owner()`) registers attestors per role. One schema
/// per statement kind is registered with this resolver at construction, so every attestation on those
/// schemas passes through `onAttest`, which admits it only when
///  - its attester holds, for that series, a role allowed for the kind (custodian: Custody; administrator:
///    Accrual and Nav; facility: Hashrate; auditor: every kind), and
///  - its `as_of` (Hashrate: `period_end`) is later than the last admitted one of that kind for the series
///    and not in the future beyond `MAX_FUTURE_SKEW`.
/// Revocation goes through EAS (only the original attester, schemas are revocable); a revoked attestation
/// keeps its place in the `as_of` order, so a correction must carry a later `as_of`.
contract NoteAttestationResolver is SchemaResolver {
    enum Kind {
        Hashrate,
        Custody,
        Accrual,
        Nav
    }

    uint8 public constant ROLE_CUSTODIAN = 1;
    uint8 public constant ROLE_ADMINISTRATOR = 2;
    uint8 public constant ROLE_AUDITOR = 4;
    uint8 public constant ROLE_FACILITY = 8;
    uint8 private constant _ALL_ROLES = 15;
    uint64 public constant MAX_FUTURE_SKEW = 1 hours;

    string public constant HASHRATE_SCHEMA =
        "uint64 period_start,uint64 period_end,uint64 realised_ph_s_e3,uint16 uptime_bps";
    string public constant CUSTODY_SCHEMA = "uint64 as_of,uint64 btc_balance_sats";
    string public constant ACCRUAL_SCHEMA = "uint64 as_of,uint64 accrued_sats_per_note";
    string public constant NAV_SCHEMA = "uint64 as_of,uint256 nav_per_note_e6,string currency";

    bytes32[4] private _schemaUids;
    mapping(bytes32 schemaUid => uint8 kindPlusOne) private _kindOf;
    mapping(address series => mapping(address attestor => uint8 roles)) public rolesOf;
    mapping(address series => mapping(uint8 kind => uint64 asOf)) public lastAsOf;

    event AttestorSet(address indexed series, address indexed attestor, uint8 roles, address indexed admin);
    event StatementAdmitted(address indexed series, uint8 indexed kind, bytes32 uid, address attester, uint64 asOf);

    error NotSeriesAdmin(address series, address caller);
    error InvalidRoles(uint8 roles);
    error UnknownSchema(bytes32 schema);
    error NotRegisteredAttestor(address series, address attester, uint8 kind);
    error StaleAsOf(address series, uint8 kind, uint64 asOf, uint64 lastAsOf);
    error FutureAsOf(uint64 asOf, uint64 blockTime);
    error InvalidStatement(uint8 kind, string reason);

    constructor(IEAS eas) SchemaResolver(eas) {
        ISchemaRegistry registry = eas.getSchemaRegistry();
        string[4] memory schemas = [HASHRATE_SCHEMA, CUSTODY_SCHEMA, ACCRUAL_SCHEMA, NAV_SCHEMA];
        for (uint8 k = 0; k < 4; ++k) {
            bytes32 uid = registry.register(schemas[k], ISchemaResolver(address(this)), true);
            _schemaUids[k] = uid;
            _kindOf[uid] = k + 1;
        }
    }

    /// @notice The schema UID of a statement kind (0 Hashrate, 1 Custody, 2 Accrual, 3 Nav).
    function schemaUid(uint8 kind) external view returns (bytes32) {
        return _schemaUids[kind];
    }

    /// @notice Roles allowed to attest a kind (bit set of ROLE_*).
    function allowedRoles(uint8 kind) public pure returns (uint8) {
        if (kind == uint8(Kind.Hashrate)) return ROLE_FACILITY | ROLE_AUDITOR;
        if (kind == uint8(Kind.Custody)) return ROLE_CUSTODIAN | ROLE_AUDITOR;
        return ROLE_ADMINISTRATOR | ROLE_AUDITOR; // Accrual, Nav
    }

    /// @notice Whether `attestor` may attest `kind` for `series` now.
    function isAttestor(address series, address attestor, uint8 kind) public view returns (bool) {
        return rolesOf[series][attestor] & allowedRoles(kind) != 0;
    }

    /// @notice Set the roles (bit set, 0 removes) of an attestor for a series; only the series' owner.
    function setAttestor(address series, address attestor, uint8 roles) external {
        if (roles & ~_ALL_ROLES != 0) revert InvalidRoles(roles);
        if (_seriesAdmin(series) != msg.sender) revert NotSeriesAdmin(series, msg.sender);
        rolesOf[series][attestor] = roles;
        emit AttestorSet(series, attestor, roles, msg.sender);
    }

    function onAttest(Attestation calldata attestation, uint256 /*value*/) internal override returns (bool) {
        uint8 kindPlusOne = _kindOf[attestation.schema];
        if (kindPlusOne == 0) revert UnknownSchema(attestation.schema);
        uint8 kind = kindPlusOne - 1;
        address series = attestation.recipient;
        if (!isAttestor(series, attestation.attester, kind)) {
            revert NotRegisteredAttestor(series, attestation.attester, kind);
        }
        uint64 asOf = _asOf(kind, attestation.data);
        if (asOf > block.timestamp + MAX_FUTURE_SKEW) revert FutureAsOf(asOf, uint64(block.timestamp));
        uint64 last = lastAsOf[series][kind];
        if (asOf <= last) revert StaleAsOf(series, kind, asOf, last);
        lastAsOf[series][kind] = asOf;
        emit StatementAdmitted(series, kind, attestation.uid, attestation.attester, asOf);
        return true;
    }

    function onRevoke(Attestation calldata, uint256 /*value*/) internal pure override returns (bool) {
        return true; // EAS lets only the original attester revoke
    }

    function _asOf(uint8 kind, bytes calldata data) private pure returns (uint64) {
        if (kind == uint8(Kind.Hashrate)) {
            (uint64 start, uint64 end, , uint16 uptime) = abi.decode(data, (uint64, uint64, uint64, uint16));
            if (start >= end) revert InvalidStatement(kind, "period_start must be before period_end");
            if (uptime > 10_000) revert InvalidStatement(kind, "uptime_bps above 10000");
            return end;
        }
        if (kind == uint8(Kind.Nav)) {
            (uint64 navAsOf, , string memory currency) = abi.decode(data, (uint64, uint256, string));
            if (bytes(currency).length == 0) revert InvalidStatement(kind, "currency is empty");
            return navAsOf;
        }
        (uint64 asOf, ) = abi.decode(data, (uint64, uint64));
        return asOf;
    }

    function _seriesAdmin(address series) private view returns (address) {
        if (series.code.length == 0) return address(0);
        try IOwnedSeries(series).owner() returns (address admin) {
            return admin;
        } catch {
            return address(0);
        }
    }
}
