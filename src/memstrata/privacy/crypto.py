"""Encryption at rest: AES-256-GCM envelope encryption with one data key per user, wrapped by a master key.

    master key (KeyProvider: env, file or a KMS)  ──wraps──▶  data key per subject (data_keys table)
    data key ──HKDF──▶ seal key (AES-256-GCM of text and metadata, scope key as associated data)
             ──HKDF──▶ index key (HMAC-SHA256 word tokens for the keyword index)

A subject is a user within an org; a scope without a user uses its agent, else its run. Destroying a
subject's data key makes every copy of its ciphertext unreadable (crypto-shredding). Rotating the master
key re-wraps data keys and touches no data. See docs/security.md for what this does and does not protect.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import os
import time
import unicodedata
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from memstrata.core.text import query_terms
from memstrata.errors import ConfigurationError, MemstrataError
from memstrata.models import Scope
from memstrata.tiers.base import Codec
from memstrata.tiers.privacy import AUDIT_KEY_SUBJECT, DataKeyRecord, DataKeyTier, privacy_tier, subject_key

SEALED_PREFIX = "enc1:"
KEY_BYTES = 32
_NONCE = 12
_DK_ID = 8
_SEAL_AAD = b"memstrata/seal/v1\x00"
_WRAP_AAD = b"memstrata/data-key/v1\x00"
_HEX_AS_LETTERS = str.maketrans("0123456789", "ghijklmnop")
ENV_KEY = "MEMSTRATA_MASTER_KEY"
ENV_KEY_FILE = "MEMSTRATA_MASTER_KEY_FILE"


class DecryptionError(MemstrataError):
    """A stored value cannot be decrypted: it was altered, moved to another scope, or its key destroyed."""


class MasterKeyError(DecryptionError, ConfigurationError):
    """The configured master key cannot unwrap the store's data keys (a wrong or missing key)."""


# -- master keys -----------------------------------------------------------------------------------


class KeyProvider(ABC):
    """Wraps and unwraps data keys with a master key. The KMS hook: implement ``wrap``/``unwrap`` with the
    KMS's encrypt/decrypt calls (``aad`` as the encryption context) and the master key never leaves it."""

    @property
    @abstractmethod
    def current_key_id(self) -> str:
        """The master key new data keys are wrapped with."""

    @property
    @abstractmethod
    def key_ids(self) -> frozenset[str]:
        """Every master key this provider can unwrap with (the current one and any kept for a rotation)."""

    @abstractmethod
    def wrap(self, plaintext: bytes, aad: bytes) -> tuple[str, bytes]:
        """Encrypt a data key with the current master key; returns (master key id, wrapped bytes)."""

    @abstractmethod
    def unwrap(self, key_id: str, wrapped: bytes, aad: bytes) -> bytes:
        """Decrypt a data key wrapped by master key ``key_id``; raises MasterKeyError when it cannot."""


def master_key_id(key: bytes) -> str:
    """A public fingerprint naming a master key (a SHA-256 prefix: it reveals nothing about the key)."""
    return "mk-" + hashlib.sha256(b"memstrata/master-key-id\x00" + key).hexdigest()[:16]


def decode_master_key(text: str | bytes, source: str = "master key") -> bytes:
    """32 raw bytes, or their base64 text; anything else is a ConfigurationError naming ``source``."""
    if isinstance(text, bytes) and len(text) == KEY_BYTES:
        return text
    raw = text.decode("ascii", "replace") if isinstance(text, bytes) else text
    try:
        key = base64.b64decode(raw.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ConfigurationError(f"{source}: not base64 (expected 32 random bytes, base64-encoded)") from None
    if len(key) != KEY_BYTES:
        raise ConfigurationError(f"{source}: decodes to {len(key)} bytes; AES-256 needs exactly {KEY_BYTES}")
    return key


class LocalKeyProvider(KeyProvider):
    """Master keys held in this process (from configuration). The first key wraps; all of them unwrap."""

    def __init__(self, *keys: bytes) -> None:
        if not keys:
            raise ConfigurationError("master key: at least one key is required")
        self._keys: dict[str, AESGCM] = {}
        for key in keys:
            if len(key) != KEY_BYTES:
                raise ConfigurationError(f"master key: {len(key)} bytes; AES-256 needs exactly {KEY_BYTES}")
            self._keys.setdefault(master_key_id(key), AESGCM(key))
        self._current = master_key_id(keys[0])

    @classmethod
    def from_text(cls, *texts: str | bytes) -> LocalKeyProvider:
        """From base64 strings (or raw 32-byte values), current key first."""
        return cls(*(decode_master_key(t) for t in texts))

    @classmethod
    def from_file(cls, path: str | Path) -> LocalKeyProvider:
        """From a file holding the key as base64 text or as 32 raw bytes (keep it ``chmod 600``)."""
        try:
            data = Path(path).expanduser().read_bytes()
        except OSError as exc:
            raise ConfigurationError(f"master key file {path}: {exc.strerror}") from None
        return cls(decode_master_key(data if len(data) == KEY_BYTES else data.strip(), f"master key file {path}"))

    @property
    def current_key_id(self) -> str:
        return self._current

    @property
    def key_ids(self) -> frozenset[str]:
        return frozenset(self._keys)

    def wrap(self, plaintext: bytes, aad: bytes) -> tuple[str, bytes]:
        nonce = os.urandom(_NONCE)
        return self._current, nonce + self._keys[self._current].encrypt(nonce, plaintext, aad)

    def unwrap(self, key_id: str, wrapped: bytes, aad: bytes) -> bytes:
        aead = self._keys.get(key_id)
        if aead is None:
            raise MasterKeyError(
                f"master key: a data key is wrapped by master key {key_id!r}, but this process has "
                f"{sorted(self._keys)}; configure that key (after `memstrata encryption rotate`: the new one)"
            )
        try:
            return aead.decrypt(wrapped[:_NONCE], wrapped[_NONCE:], aad)
        except InvalidTag:
            raise MasterKeyError(
                f"master key {key_id!r} cannot unwrap a data key: the wrapped key was altered"
            ) from None

    def __repr__(self) -> str:  # the key ids are public; the keys never appear
        return f"LocalKeyProvider(current={self._current!r}, keys={len(self._keys)})"


def load_key_provider(environ: Mapping[str, str] | None = None) -> LocalKeyProvider | None:
    """The master key from ``MEMSTRATA_MASTER_KEY`` (base64) or ``MEMSTRATA_MASTER_KEY_FILE``; None if
    neither is set. For the edges only (CLI, server): library code passes a KeyProvider explicitly."""
    env = os.environ if environ is None else environ
    if env.get(ENV_KEY):
        return LocalKeyProvider(decode_master_key(env[ENV_KEY], ENV_KEY))
    if env.get(ENV_KEY_FILE):
        return LocalKeyProvider.from_file(env[ENV_KEY_FILE])
    return None


def generate_master_key() -> str:
    """A new random master key as base64 text (for ``MEMSTRATA_MASTER_KEY`` or a key file)."""
    return base64.b64encode(os.urandom(KEY_BYTES)).decode()


# -- data keys -------------------------------------------------------------------------------------


def _wrap_aad(subject: str, dk_id: bytes) -> bytes:
    # Binds a wrapped key to its subject: a key row copied to another subject does not unwrap.
    return _WRAP_AAD + subject.encode() + b"\x00" + dk_id


def _derive(key: bytes, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=b"memstrata/" + purpose).derive(key)


@dataclass(frozen=True)
class _DataKey:
    ident: str  # hex of the 8-byte data key id, written into every sealed value
    aead: AESGCM
    index_key: bytes


def _open_data_key(provider: KeyProvider, rec: DataKeyRecord) -> _DataKey:
    assert rec.wrapped_key is not None
    dk_id, wrapped = rec.wrapped_key[:_DK_ID], rec.wrapped_key[_DK_ID:]
    plain = provider.unwrap(rec.master_key_id, wrapped, _wrap_aad(rec.subject_key, dk_id))
    return _DataKey(dk_id.hex(), AESGCM(_derive(plain, b"seal/v1")), _derive(plain, b"index/v1"))


def _new_data_key(provider: KeyProvider, subject: str) -> DataKeyRecord:
    dk_id = os.urandom(_DK_ID)
    key_id, wrapped = provider.wrap(os.urandom(KEY_BYTES), _wrap_aad(subject, dk_id))
    return DataKeyRecord(subject, dk_id + wrapped, key_id, time.time())


def normalize_word_text(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


@functools.lru_cache(maxsize=65536)
def _scope_params(scope: Scope) -> tuple[str, bytes]:
    # Every row read opens two values; deriving the subject and the associated data once per scope pays.
    return subject_key(scope), _SEAL_AAD + scope.key.encode()


class EncryptingCodec(Codec):
    """Seals text and metadata with the scope's data key, as ``enc1:<data key id>:<base64 nonce+ciphertext>``.

    The scope key is the associated data, so a value moved to another scope (even one sharing the key)
    fails to open. The keyword index sees HMAC-SHA256 tokens of the words under a per-subject key
    (``keyword_index=False``: nothing). Unwrapped keys are cached in this process; a subject's first
    write creates its key. Call ``bind(store)`` once the store exists (it holds the keys).
    """

    encrypts = True

    def __init__(self, provider: KeyProvider, keys: DataKeyTier | None = None, *, keyword_index: bool = True) -> None:
        self.provider = provider
        self.keyword_index = keyword_index
        self._keys = keys
        self._cache: dict[str, _DataKey] = {}

    def bind(self, store: Any) -> EncryptingCodec:
        """Use ``store`` (a PrivacyTier, or a store wrapping one) for the data keys."""
        self._keys = privacy_tier(store)
        return self

    @property
    def keys(self) -> DataKeyTier:
        if self._keys is None:
            raise ConfigurationError("encryption: EncryptingCodec.bind(store) was not called")
        return self._keys

    def check(self) -> None:
        """Fail now, with MasterKeyError, if the master key cannot unwrap the store's data keys."""
        live = [r for r in self.keys.data_keys() if not r.destroyed]
        if live:
            _open_data_key(self.provider, live[0])

    def _key(self, subject: str, *, create: bool) -> _DataKey | None:
        cached = self._cache.get(subject)
        if cached is not None:
            return cached
        # No lock around the I/O: put_data_key lets the first writer win, and a codec lock held while the
        # store's write lock is taken would deadlock against apply() sealing under that write lock.
        rec = self.keys.get_data_key(subject)
        if rec is None or rec.destroyed:
            if not create:
                return None
            rec = self.keys.put_data_key(_new_data_key(self.provider, subject))
        key = _open_data_key(self.provider, rec)
        if rec.committed:
            self._cache[subject] = key
        return key

    def forget(self, subject: str) -> None:
        """Drop a subject's cached key (after it was destroyed)."""
        self._cache.pop(subject, None)

    # -- Codec -------------------------------------------------------------------------------------

    def prepare(self, scope: Scope) -> None:
        self._key(_scope_params(scope)[0], create=True)

    def seal(self, scope: Scope, text: str) -> str:
        subject, aad = _scope_params(scope)
        key = self._key(subject, create=True)
        assert key is not None
        nonce = os.urandom(_NONCE)
        body = key.aead.encrypt(nonce, text.encode(), aad)
        return f"{SEALED_PREFIX}{key.ident}:{base64.b64encode(nonce + body).decode()}"

    def open(self, scope: Scope, stored: str) -> str:
        if not stored.startswith(SEALED_PREFIX):
            raise DecryptionError(
                "encryption: a stored value is not encrypted (the store was written without encryption)"
            )
        ident, _, body = stored[len(SEALED_PREFIX) :].partition(":")
        subject, aad = _scope_params(scope)
        key = self._cache.get(subject) or self._key(subject, create=False)
        if key is not None and key.ident != ident:
            self.forget(subject)  # replaced in another process since we cached it
            key = self._key(subject, create=False)
        if key is None or key.ident != ident:
            raise DecryptionError("encryption: a value's data key no longer exists (its subject was forgotten)")
        try:
            raw = base64.b64decode(body, validate=True)
            return key.aead.decrypt(raw[:_NONCE], raw[_NONCE:], aad).decode()
        except (InvalidTag, binascii.Error, ValueError):
            raise DecryptionError(
                "encryption: a stored value failed authentication (altered, or moved from another scope)"
            ) from None

    def _token(self, key: _DataKey, word: str) -> str:
        # 64 bits as 16 letters a-p: hex would let a text-search parser read "12e45..." as a number in
        # scientific notation and split the token (PostgreSQL's does).
        return hmac.digest(key.index_key, word.encode(), "sha256")[:8].hex().translate(_HEX_AS_LETTERS)

    def index_text(self, scope: Scope, text: str) -> str | None:
        if not self.keyword_index:
            return ""
        key = self._key(_scope_params(scope)[0], create=True)
        assert key is not None
        return " ".join(self._token(key, w) for w in query_terms(normalize_word_text(text), 100_000))

    def query_text(self, scope: Scope, query: str) -> str:
        key = self._key(_scope_params(scope)[0], create=False) if self.keyword_index else None
        if key is None:
            return ""
        return " ".join(self._token(key, w) for w in query_terms(normalize_word_text(query)))

    def seal_hash(self, scope: Scope, value: str) -> str:
        """HMAC-SHA256 under the subject's index key: equal values of one subject still match (dedup, slot
        and entity lookups work), but a guessed value can no longer be confirmed from the database alone."""
        key = self._key(subject_key(scope), create=True)
        assert key is not None
        return hmac.digest(key.index_key, b"content-hash\x00" + value.encode(), "sha256").hex()

    def audit_key(self) -> bytes:
        """The HMAC key of the audit chain: a data key of its own, so it survives master key rotation."""
        key = self._key(AUDIT_KEY_SUBJECT, create=True)
        assert key is not None
        return key.index_key

    def __repr__(self) -> str:
        return f"EncryptingCodec({self.provider!r}, keyword_index={self.keyword_index})"


def rotate_master_key(store: Any, old: KeyProvider, new: KeyProvider, *, actor: str = "library") -> dict[str, Any]:
    """Re-wrap every live data key from ``old`` to ``new`` in one transaction; no data is re-encrypted.

    Keys already under ``new`` are skipped, so an interrupted rotation can simply be run again. Fails with
    MasterKeyError before writing anything if ``old`` cannot unwrap a key."""
    tier = privacy_tier(store)
    updates: list[tuple[str, bytes, str]] = []
    skipped = 0
    for rec in tier.data_keys():
        if rec.destroyed or rec.wrapped_key is None:
            continue
        if rec.master_key_id == new.current_key_id:
            skipped += 1
            continue
        dk_id, wrapped = rec.wrapped_key[:_DK_ID], rec.wrapped_key[_DK_ID:]
        aad = _wrap_aad(rec.subject_key, dk_id)
        key_id, rewrapped = new.wrap(old.unwrap(rec.master_key_id, wrapped, aad), aad)
        updates.append((rec.subject_key, dk_id + rewrapped, key_id))
    n = tier.rewrap_data_keys(updates)
    from memstrata.privacy.audit import Auditor

    # The store's own codec may still hold the old provider; the audit key must now unwrap with the new one.
    Auditor(store, actor, codec=EncryptingCodec(new).bind(store)).record(
        "keys.rotate", org_id="", details={"rewrapped": n, "skipped": skipped, "master_key_id": new.current_key_id}
    )
    return {"rewrapped": n, "skipped": skipped, "master_key_id": new.current_key_id}
