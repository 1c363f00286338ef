"""Register attestors, publish statements (direct or EIP-712 delegated), revoke.

Direct: the attestor sends ``EAS.attest`` itself. Delegated: the attestor signs the EIP-712 ``Attest``
message offline (``sign``), anyone submits it (``submit``); EAS checks signature, deadline and the
attestor's nonce, so a signature is good for exactly one attestation (a replay fails with
``InvalidSignature()``). Every refusal raises ``AttestationRejectedError`` with the decoded reason.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from typing import Any

from eth_account import Account
from web3.types import TxReceipt

from attestation.contracts import AttestationDeployment, contracts_of, eas_abi, resolver_abi
from attestation.errors import AttestationRejectedError
from attestation.schemas import Kind, Role, Statement, encode_statement
from attestation.verify import AttestRequest, Eip712Domain, Signature, sign_attest
from settlement import Chain, TransactionRevertedError
from settlement.chain import rpc_errors, to_address
from settlement.revert import decode_revert, error_selectors

ZERO_UID = b"\x00" * 32


@dataclass(frozen=True, slots=True, kw_only=True)
class DelegatedAttestation:
    """A signed ``Attest`` message: what an attestor hands to whoever submits it."""

    request: AttestRequest
    signature: Signature


@dataclass(frozen=True, slots=True, kw_only=True)
class Published:
    """An attestation (or revocation) that made it on chain."""

    uid: bytes
    tx_hash: str
    block_number: int
    gas_used: int


@cache
def _eas_errors() -> dict[bytes, Any]:
    return error_selectors([eas_abi(), resolver_abi()])


def _reason(exc: TransactionRevertedError) -> str:
    reason = exc.reason or exc.message
    marker = "unknown revert 0x"
    if marker in reason:  # an EAS or resolver error the settlement decoder does not know
        raw = reason[reason.index(marker) + len(marker) - 2:].split()[0]
        return decode_revert(raw, extra_errors=_eas_errors())
    return reason


@contextmanager
def _rejections(what: str) -> Iterator[None]:
    try:
        yield
    except TransactionRevertedError as exc:
        reason = _reason(exc)
        raise AttestationRejectedError(f"{what} rejected: {reason}", reason=reason) from exc


class Publisher:
    """Writes to EAS and the resolver through a ``Chain`` (which holds the keys it signs with)."""

    def __init__(self, chain: Chain, deployment: AttestationDeployment) -> None:
        self.chain = chain
        self.deployment = deployment
        self._eas, self._resolver = contracts_of(chain, deployment)

    # ------------------------------------------------------------ attestors

    def set_attestor(self, series: str, attestor: str, roles: Role, *, admin: str) -> TxReceipt:
        """Give ``attestor`` ``roles`` for ``series`` (Role(0) removes it); ``admin`` is the token's owner."""
        with _rejections("setAttestor"):
            return self.chain.transact(
                self._resolver.functions.setAttestor(to_address(series), to_address(attestor), int(roles)), admin
            )

    def roles_of(self, series: str, attestor: str) -> Role:
        with rpc_errors("rolesOf()"):
            return Role(self._resolver.functions.rolesOf(to_address(series), to_address(attestor)).call())

    def last_as_of(self, series: str, kind: Kind) -> int:
        with rpc_errors("lastAsOf()"):
            return int(self._resolver.functions.lastAsOf(to_address(series), int(kind)).call())

    # ------------------------------------------------------------ direct

    def attest(self, series: str, statement: Statement, *, attester: str) -> Published:
        """``attester`` sends the attestation itself."""
        request = (self.deployment.schema_uid(statement.kind),
                   (to_address(series), 0, True, ZERO_UID, encode_statement(statement), 0))
        with _rejections(f"{statement.kind.name} attestation"):
            receipt = self.chain.transact(self._eas.functions.attest(request), attester)
        return self._published(receipt, "Attested")

    # ------------------------------------------------------------ delegated (EIP-712)

    def domain(self) -> Eip712Domain:
        with rpc_errors("eip712Domain()"):
            d = self._eas.functions.eip712Domain().call()
        return Eip712Domain(name=d[1], version=d[2], chain_id=int(d[3]), verifying_contract=to_address(d[4]))

    def nonce(self, attester: str) -> int:
        with rpc_errors("getNonce()"):
            return int(self._eas.functions.getNonce(to_address(attester)).call())

    def sign(
        self,
        series: str,
        statement: Statement,
        *,
        private_key: bytes,
        nonce: int | None = None,
        deadline: int = 0,
    ) -> DelegatedAttestation:
        """Sign an attestation for submission by anyone (``nonce`` defaults to the attestor's next one;
        ``deadline`` 0 = none)."""
        attester = to_address(Account.from_key(private_key).address)
        request = AttestRequest(
            attester=attester,
            schema=self.deployment.schema_uid(statement.kind),
            recipient=to_address(series),
            expiration_time=0,
            revocable=True,
            ref_uid=ZERO_UID,
            data=encode_statement(statement),
            value=0,
            nonce=self.nonce(attester) if nonce is None else nonce,
            deadline=deadline,
        )
        return DelegatedAttestation(request=request, signature=sign_attest(self.domain(), request, private_key))

    def submit(self, delegated: DelegatedAttestation, *, submitter: str) -> Published:
        r, sig = delegated.request, delegated.signature
        request = (
            r.schema,
            (to_address(r.recipient), r.expiration_time, r.revocable, r.ref_uid, r.data, r.value),
            (sig.v, sig.r, sig.s),
            to_address(r.attester),
            r.deadline,
        )
        kind = self.deployment.kind_of(r.schema)
        with _rejections(f"delegated {kind.name if kind is not None else 'unknown'} attestation"):
            receipt = self.chain.transact(self._eas.functions.attestByDelegation(request), submitter)
        return self._published(receipt, "Attested")

    # ------------------------------------------------------------ revocation

    def revoke(self, uid: bytes, *, revoker: str) -> Published:
        """Revoke an attestation (EAS admits only its attester)."""
        with rpc_errors("getAttestation()"):
            schema = bytes(self._eas.functions.getAttestation(uid).call()[1])
        with _rejections("revocation"):
            receipt = self.chain.transact(self._eas.functions.revoke((schema, (uid, 0))), revoker)
        return self._published(receipt, "Revoked")

    # ------------------------------------------------------------ helpers

    def _published(self, receipt: TxReceipt, event: str) -> Published:
        decode: Callable[..., Any] = getattr(self._eas.events, event)().process_log
        uid = b""
        for entry in receipt["logs"]:
            if entry["address"] == self._eas.address:
                uid = bytes(decode(entry)["args"]["uid"])
        return Published(
            uid=uid,
            tx_hash="0x" + bytes(receipt["transactionHash"]).hex(),
            block_number=int(receipt["blockNumber"]),
            gas_used=int(receipt["gasUsed"]),
        )
