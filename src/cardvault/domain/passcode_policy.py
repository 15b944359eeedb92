"""The strong-passcode rule (DESIGN §3.4).

A passcode is strong when it is long enough, not absurdly long, and hard to guess: zxcvbn
scores it at least ``min_score`` and it does not contain the card holder's name, email address
or user ID. There are no composition rules ("one digit, one symbol"): NIST SP 800-63B §5.1.1.2
advises against them because they push people towards predictable patterns.

Every refusal says why in words a person understands, and never repeats the passcode.
"""

from __future__ import annotations

import threading
import unicodedata
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

from zxcvbn import zxcvbn

from cardvault.errors import InvalidInput, error

#: the floor the design fixes; an organisation may only raise it
MIN_LENGTH_FLOOR = 8
#: NIST SP 800-63B asks verifiers to allow at least 64 characters
MAX_LENGTH_FLOOR = 64
#: zxcvbn's matching grows faster than linearly; this bounds the work one request can cause
MAX_LENGTH_CEILING = 256
#: zxcvbn scores 0-4; below 2 it calls a passcode "too guessable" even for online attacks
MIN_SCORE_FLOOR = 2
#: personal words shorter than this ("Li", "Ng") would refuse half the dictionary
MIN_PERSONAL_TOKEN = 3

# zxcvbn keeps the user inputs in a module-level dictionary while it scores, so two threads
# scoring at once could see each other's inputs. Serialise the calls.
_ZXCVBN_LOCK = threading.Lock()


class PasscodePolicyInvalid(InvalidInput):
    """An organisation's passcode policy is outside what the design allows."""

    code = "passcode_policy_invalid"


@error
class WeakPasscode(InvalidInput):
    """The passcode does not meet the policy; ``reason`` says which rule, for programs."""

    code = "weak_passcode"
    REASONS: ClassVar[frozenset[str]] = frozenset(
        {"empty", "too_short", "too_long", "contains_personal_info", "too_common", "too_guessable"}
    )
    reason: str


@dataclass(frozen=True, kw_only=True)
class PasscodePolicy:
    """An organisation's passcode rule; the defaults are the design's."""

    min_length: int = 8
    max_length: int = 128
    min_score: int = 3

    def __post_init__(self) -> None:
        for name in ("min_length", "max_length", "min_score"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise PasscodePolicyInvalid(f"The passcode policy's {name} must be a whole number.")
        if self.min_length < MIN_LENGTH_FLOOR:
            raise PasscodePolicyInvalid(
                f"Passcodes must be at least {MIN_LENGTH_FLOOR} characters; "
                "the minimum length cannot be lowered."
            )
        if not max(MAX_LENGTH_FLOOR, self.min_length) <= self.max_length <= MAX_LENGTH_CEILING:
            raise PasscodePolicyInvalid(
                f"The maximum passcode length must be between "
                f"{max(MAX_LENGTH_FLOOR, self.min_length)} and {MAX_LENGTH_CEILING}."
            )
        if not MIN_SCORE_FLOOR <= self.min_score <= 4:
            raise PasscodePolicyInvalid(
                f"The minimum passcode score must be between {MIN_SCORE_FLOOR} and 4."
            )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PasscodePolicy:
        """Read the ``passcode`` part of an organisation policy; missing keys take defaults."""
        unknown = set(data) - {"min_length", "max_length", "min_score"}
        if unknown:
            raise PasscodePolicyInvalid(
                f"The passcode policy has unknown settings: {', '.join(sorted(unknown))}."
            )
        return cls(**data)

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def check_passcode(passcode: str, *, policy: PasscodePolicy, personal: Sequence[str] = ()) -> None:
    """Raise WeakPasscode unless ``passcode`` meets ``policy``.

    ``personal`` holds what an attacker who knows the card holder would try first: given
    name, surname, email address, user ID. They are refused inside the passcode, ignoring case,
    spaces and punctuation, and zxcvbn also counts them as easy words.
    """
    length = len(unicodedata.normalize("NFC", passcode))
    if not passcode.strip():
        raise WeakPasscode("Please choose a passcode.", reason="empty")
    if length < policy.min_length:
        raise WeakPasscode(
            f"Your passcode must be at least {policy.min_length} characters long.",
            reason="too_short",
            remedy="A few unrelated words make a long passcode that is easy to remember.",
        )
    if length > policy.max_length:
        raise WeakPasscode(
            f"Your passcode must be at most {policy.max_length} characters long.",
            reason="too_long",
        )
    _check_personal(passcode, personal)
    _check_guessability(passcode, policy, personal)


def _check_personal(passcode: str, personal: Sequence[str]) -> None:
    folded = _fold(passcode)
    # Longest first, so "alice.smith@example.org" is reported as the email, not the name.
    candidates = sorted(
        ((token, item) for item in personal for token in _personal_tokens(item)),
        key=lambda pair: len(pair[0]),
        reverse=True,
    )
    for token, item in candidates:
        if token in folded:
            raise WeakPasscode(
                f"Your passcode contains your {_describe(item)}. "
                "Choose one that people who know you could not guess.",
                reason="contains_personal_info",
            )


def _check_guessability(passcode: str, policy: PasscodePolicy, personal: Sequence[str]) -> None:
    user_inputs = [word for item in personal for word in (item, *_personal_tokens(item))]
    with _ZXCVBN_LOCK:
        result = zxcvbn(passcode, user_inputs=user_inputs, max_length=policy.max_length)
    if result["score"] >= policy.min_score:
        return
    warning, suggestions = result["feedback"]["warning"], result["feedback"]["suggestions"]
    if _mostly_common_password(passcode, result["sequence"]):
        raise WeakPasscode(
            "This passcode is too common: it is on lists attackers try first.",
            reason="too_common",
            remedy=" ".join(suggestions) or None,
        )
    raise WeakPasscode(
        "This passcode would be too easy to guess.",
        reason="too_guessable",
        remedy=" ".join([warning, *suggestions]).strip() or None,
    )


def _mostly_common_password(passcode: str, sequence: Sequence[Mapping[str, Any]]) -> bool:
    """True when a known-password match makes up at least half of the passcode."""
    common = sum(
        len(match["token"])
        for match in sequence
        if match.get("pattern") == "dictionary" and match.get("dictionary_name") == "passwords"
    )
    return common * 2 >= len(passcode)


def _fold(text: str) -> str:
    """Case-, width- and punctuation-blind form: 'J. Smith-Jones' -> 'jsmithjones'."""
    return "".join(c for c in unicodedata.normalize("NFKC", text).casefold() if c.isalnum())


def _personal_tokens(item: str) -> Iterator[str]:
    """The item itself, and for an email address its local part and the words in it."""
    candidates = [item]
    if "@" in item:
        local = item.rsplit("@", 1)[0]
        candidates.append(local)
        candidates.extend(local.replace("_", ".").replace("-", ".").replace("+", ".").split("."))
    else:
        candidates.extend(item.split())
    seen: set[str] = set()
    for candidate in candidates:
        token = _fold(candidate)
        if len(token) >= MIN_PERSONAL_TOKEN and token not in seen:
            seen.add(token)
            yield token


def _describe(item: str) -> str:
    if "@" in item:
        return "email address"
    if _fold(item).isdigit():
        return "user ID"
    return "name"
