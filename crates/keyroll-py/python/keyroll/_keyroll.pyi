"""Types of keyroll's native module (``keyroll._keyroll``, PyO3 over the Rust core).

The classes and exceptions are re-exported by ``keyroll``; use ``keyroll.open``
rather than this module's ``open``. Keep in step with ``crates/keyroll-py/src``
(``mypy --strict`` in scripts/test checks the package's own Python and a typed
example against these types).
"""

from types import TracebackType
from collections.abc import Callable
from typing import Any, Literal, final

from typing_extensions import Self, TypedDict, Unpack

class KeyrollError(Exception):
    """A keyroll failure: no usable key set, a closed key ring, a configuration error."""

class FailedClosed(KeyrollError):
    """The key ring has failed closed: the store revoked the signing key,
    every key is past its expiry, or the store has not confirmed the keys for
    longer than ``fail_closed_after``. Nothing signs or verifies until the
    store offers a usable key again."""

class BadSignature(KeyrollError):
    """A signed value that does not verify (like django.core.signing.BadSignature)."""

class SignatureExpired(BadSignature):
    """A valid signature older than the allowed maximum age."""

class InvalidToken(KeyrollError):
    """A Fernet token that no accepted key decrypts, or that has expired."""

@final
class Verified:
    """A verified value with the key that verified it."""

    @property
    def value(self) -> Any:
        """The value that was signed: ``str`` from signers, ``bytes`` from
        Fernet, the decoded JSON from ``unsign_object``."""
    @property
    def key_id(self) -> str:
        """The store's id of the key that verified."""
    @property
    def role(self) -> str:
        """Its role when it verified: ``current``, ``pending`` or ``fallback``."""
    @property
    def needs_resign(self) -> bool:
        """True when a key other than the current one verified: sign the
        value again and hand out the new token."""
    @property
    def timestamp(self) -> float | None:
        """When it was signed (Unix seconds), for timestamped tokens."""

@final
class DjangoSigner:
    """Django's ``Signer`` / ``TimestampSigner`` over a key ring: same tokens,
    every verifying key tried (current, pending, fallbacks)."""

    @property
    def salt(self) -> str:
        """The salt in use."""
    def sign(self, value: str) -> str:
        """``value:signature`` (or ``value:timestamp:signature``) with the current key."""
    def unsign(self, signed_value: str, max_age: float | None = None) -> str:
        """The signed value, as Django's ``unsign``; raises ``BadSignature`` or
        ``SignatureExpired`` (``max_age`` in seconds, timestamped signers only)."""
    def verify(self, signed_value: str, max_age: float | None = None) -> Verified:
        """Like ``unsign``, returning a ``Verified`` that says which key
        verified and whether to re-sign."""
    def sign_object(self, obj: Any, compress: bool = False) -> str:
        """Django's ``sign_object`` (``signing.dumps``): ``obj`` as compact JSON."""
    def unsign_object(self, signed_value: str, max_age: float | None = None) -> Verified:
        """Django's ``unsign_object`` (``signing.loads``): a ``Verified`` whose
        value is the decoded JSON."""

@final
class NativeSigner:
    """keyroll's native signer: the token names its key, so one HMAC per verification."""

    def sign(self, value: str) -> str:
        """A token for ``value`` with the current key."""
    def unsign(self, token: str) -> str:
        """The signed value; raises ``BadSignature`` or ``SignatureExpired``."""
    def verify(self, token: str) -> Verified:
        """The signed value with the key that verified it."""

@final
class Fernet:
    """``cryptography``'s ``MultiFernet`` over a key ring: encrypt with the
    current key, decrypt with any verifying key. Tokens are bytes."""

    def encrypt(self, data: bytes | str) -> bytes:
        """A token for ``data`` with the current key."""
    def decrypt(self, token: bytes | str, ttl: float | None = None) -> bytes:
        """The plaintext of ``token``; raises ``InvalidToken`` (``ttl`` in seconds)."""
    def decrypt_verified(self, token: bytes | str, ttl: float | None = None) -> Verified:
        """Like ``decrypt``, returning a ``Verified`` whose value is the
        plaintext; ``needs_resign``: store ``rotate(token)`` in its place."""
    def rotate(self, token: bytes | str) -> bytes:
        """``token`` re-encrypted with the current key, keeping its timestamp."""

@final
class KeyRing:
    """A live key ring: the keys of a source, kept current by a refresher that
    runs in its own threads. From ``keyroll.open``."""

    @property
    def signing_key(self) -> str:
        """The key that signs now (text)."""
    @property
    def verification_keys(self) -> list[str]:
        """Every key that verifies now: the current key first, then pending
        keys, then fallbacks, newest first."""
    @property
    def generation(self) -> int:
        """The key set's generation: one more on every change."""
    @property
    def closed(self) -> bool:
        """True once closed."""
    def serving_generation(self) -> int:
        """The generation, when the key ring serves; raises ``FailedClosed``
        once it has failed closed."""
    def snapshot(self) -> tuple[int, str, list[str]]:
        """``(generation, signing_key, verification_keys)`` from one key set,
        at one instant: never a mix of two generations."""
    def status(self) -> dict[str, Any]:
        """The refresher's state: ``health`` (``healthy``, ``degraded``,
        ``stale``, ``stopped``), ``last_error``, ``staleness_seconds``, ``generation``,
        ``source``, ``consecutive_failures`` and ``keys`` (``[{"id", "role"}]``).
        Never key material."""
    def rotate(
        self,
        *,
        chars: int | None = None,
        bytes: int | None = None,
        promote: bool = False,
        disable_old: bool = False,
    ) -> dict[str, Any]:
        """Publishes a new key in this ring's store, as ``keyroll.rotate`` does
        with the options the ring was opened with."""
    def refresh_now(self) -> None:
        """Asks the refresher to poll the source now rather than at the next interval."""
    def close(self) -> None:
        """Stops the refresher. Idempotent; any later use raises ``KeyrollError``."""
    def django_signer(
        self,
        salt: str | None = None,
        *,
        timestamp: bool = False,
        sep: str = ":",
        algorithm: str = "sha256",
    ) -> DjangoSigner:
        """Django's ``Signer`` (or ``TimestampSigner`` with ``timestamp=True``)
        over this key ring. ``salt=None`` is Django's default for the class."""
    def native_signer(
        self, salt: str = "", *, timestamp: bool = False, max_age: float | None = None
    ) -> NativeSigner:
        """keyroll's native signer: tokens name their key, one HMAC per verify."""
    def fernet(self, derive: Literal["raw", "hkdf"] = "raw") -> Fernet:
        """``MultiFernet`` over the key ring: ``raw`` keys are Fernet keys,
        ``hkdf`` keys are any secrets, stretched as django-fernet-fields does."""
    def _before_fork(self) -> None: ...
    def _after_fork_in_child(self) -> None: ...
    def __enter__(self) -> Self:
        """The key ring itself; leaving the block closes it."""
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> Literal[False]:
        """Closes the key ring; exceptions propagate."""

@final
class LiveSetting:
    """``settings.SECRET_KEY`` or ``settings.SECRET_KEY_FALLBACKS`` read from
    the key ring: a data descriptor that ``keyroll.django`` installs."""

    def __get__(self, instance: object | None, owner: type | None = None) -> Any: ...
    def __set__(self, instance: object, value: object) -> None: ...
    def set_overridden(self, overridden: bool) -> None:
        """Tells the descriptors whether an override wraps the settings now."""
    def attach(self, ring: KeyRing) -> None:
        """Serves ``ring`` from now on (after it was opened late)."""
    def keys(self) -> tuple[str, list[str]]:
        """``(signing key, settled fallbacks)`` of the generation in force."""

def django_settings(
    ring: KeyRing | None,
    *,
    grace: float,
    improperly_configured: type[Exception],
    lookup_override: Callable[[Any, str], tuple[bool, Any]],
    reopen: Callable[[], KeyRing],
) -> tuple[LiveSetting, LiveSetting]:
    """The two descriptors ``(SECRET_KEY, SECRET_KEY_FALLBACKS)`` over one
    shared state (``keyroll.django`` internals)."""

class Options(TypedDict, total=False):
    """The options of ``keyroll.open`` and ``keyroll.rotate``: the library's
    table, ``OPTIONS`` (a test holds these fields to it). Durations are
    seconds; ``None`` keeps the default."""

    interval: float | None
    jitter: float | None
    clock_skew_margin: float | None
    activation_delay: float | None
    fallback_window: float | None
    max_fallbacks: int | None
    fail_closed_after: float | None
    rotate_every: float | None

OPTIONS: tuple[tuple[str, Literal["seconds", "count"], str, str], ...]
"""``(name, unit, default, doc)`` of every option, from the Rust table."""

def check_option(name: str, value: object) -> str | None:
    """``None`` when ``value`` suits the option ``name``, else what is wrong
    with it ("must not be negative"). ``KeyError`` for an unknown name."""

def open(uri: str, **options: Unpack[Options]) -> KeyRing:  # noqa: A001
    """Opens the key source ``uri`` and waits for a first good key set."""

def rotate(
    uri: str,
    *,
    chars: int | None = None,
    bytes: int | None = None,
    promote: bool = False,
    disable_old: bool = False,
    **options: Unpack[Options],
) -> dict[str, Any]:
    """Publishes a new key in the store ``uri`` names, as ``keyroll rotate``
    does (the same Rust code): ``chars`` characters of Django's alphabet or
    ``bytes`` random bytes (base64), by default the form of the key the store
    serves (a Fernet key makes a Fernet key, else 50 characters);
    ``promote`` makes it the store's current version, ``disable_old``
    disables what the policy has retired. The options are ``keyroll.open``'s
    (they decide when the key signs and what is retired).

    Returns ``{"id", "fingerprint", "promoted", "role", "signs_from",
    "disabled", "steps"}`` (``steps``: the lines ``keyroll rotate`` prints).
    Raises ``ValueError`` for a weak or empty key (nothing is published) and
    ``KeyrollError`` when the store refuses or fails, naming any step
    already done (its ``kind``: ``config``, ``keys`` or ``unavailable``)."""
