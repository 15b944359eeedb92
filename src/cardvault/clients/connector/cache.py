"""What the connector answers itself, so a signature is not ~40 round trips to the service.

* **Public objects.** OpenSC reads Discovery, the CCC, the CHUID and every certificate
  object each time a program opens the card -- twice, first with ``Le=08`` to learn the
  length. They are public and cannot change during a holder's session (writing them needs
  the management key, which is refused outside issuance), so GET DATA for them is answered
  here from the copy the service handed over with the link.
* **Constant answers.** The probes card drivers send to recognise a card (SELECT of other
  applications, GET VERSION, ...) get answers that depend on nothing; the service lists them.
* **Standing answers.** With each answer the service may add answers that hold until the
  next command it answers: the PIN status query while the PIN is verified on this link
  (OpenSC asks it before every login). They are dropped when a command goes to the service
  and on power-up or reset.
* **Response chaining.** When a command's answer is longer than the client's ``Le``, the
  service sends the whole answer at once and the connector hands it out in ``61xx`` / GET
  RESPONSE pieces exactly as the applet would, saving a round trip per piece.
* **Command chaining.** The parts of a chained command (CLA ``10``: an RSA block to sign, a
  certificate to write) are acknowledged here and sent with the last part in one request. An
  error the card finds in the chain is then reported on the last part rather than on the
  part that caused it; the client abandons the command either way.

A command answered here cancels what was waiting for GET RESPONSE, as any command does on a
card. Commands are read with ``card.apdu`` (the parser the applet itself uses) and status
words named with its ``Sw``; a command that is not a well-formed short APDU always goes to the
card, which judges it.
"""

from __future__ import annotations

from collections.abc import Mapping

from cardvault.card.apdu import CommandApdu, IsoIns, Sw, parse_short, response

__all__ = ["LocalAnswers"]

_GET_DATA = (0x00, IsoIns.GET_DATA, 0x3F, 0xFF)
_GET_RESPONSE = (0x00, IsoIns.GET_RESPONSE, 0x00, 0x00)
_OK = Sw.SUCCESS.wire()
_NOT_FOUND = Sw.FILE_NOT_FOUND.wire()
_NOTHING_WAITING = Sw.CONDITIONS_NOT_SATISFIED.wire()
_TAG_LIST = 0x5C
#: what the applet collects at most (card/piv/state.py MAX_CHAIN_BYTES), headers included
_MAX_CHAIN = 8192


class LocalAnswers:
    """Answers what it can; ``None`` means "ask the card"."""

    def __init__(
        self,
        objects: Mapping[int, bytes | None] | None = None,
        constant: Mapping[bytes, bytes] | None = None,
    ) -> None:
        self._objects = dict(objects or {})
        self._constant = dict(constant or {})
        self._standing: dict[bytes, bytes] = {}
        self._pending = b""
        self._waiting_sw = _OK
        self._answered_last = False
        self._chain: list[bytes] = []
        self.hits = 0

    def answer(self, apdu: bytes) -> bytes | None:
        """The local answer to ``apdu``, or None when the card must answer it."""
        command = parse_short(apdu)
        if command is not None and command.header == _GET_RESPONSE and self._answered_last:
            return self._continue(command.max_response)
        self.reset()
        local = self._constant.get(bytes(apdu)) or self._standing.get(bytes(apdu))
        if local is None and command is not None:
            local = self._object(command)
        if local is not None:
            self.hits += 1
            self._answered_last = True
        return local

    def expected_length(self, apdu: bytes) -> int | None:
        """Ne of a short APDU (the pieces a whole answer is cut into); None if extended."""
        command = parse_short(apdu)
        return None if command is None else command.max_response

    def whole(self, apdu: bytes, answer: bytes) -> bytes:
        """Hand out the service's whole answer (data ‖ SW) in pieces of the APDU's Ne."""
        limit = self.expected_length(apdu)
        assert limit is not None, "only short APDUs have their answers drained"
        self._answered_last = True
        return self._deliver(answer[:-2], answer[-2:], limit)

    def chain(self, apdu: bytes) -> tuple[bool, tuple[bytes, ...]]:
        """(held, parts): ``held`` when ``apdu`` is a chain part kept here (answer 9000);
        otherwise the parts it completes, to be sent with it (empty for a lone command)."""
        parts = self._chain
        continues = bool(parts) and _same_command(parts[0], apdu)
        self._chain = []
        if not continues:
            parts = []
        if _is_chain_part(apdu) and sum(map(len, parts)) + len(apdu) <= _MAX_CHAIN:
            self._chain = [*parts, bytes(apdu)]
            return True, ()
        return False, tuple(parts)

    def stand(self, answers: Mapping[bytes, bytes]) -> None:
        """The service's standing answers, replacing the last ones (empty: none)."""
        self._standing = dict(answers)

    def reset(self) -> None:
        """A new command, power-up or reset: nothing waits for GET RESPONSE any more."""
        self._pending = b""
        self._waiting_sw = _OK
        self._answered_last = False

    def power_up(self) -> None:
        """Power-up or reset also ends a command chain and what the card had proved."""
        self.reset()
        self._chain = []
        self._standing = {}

    def _object(self, command: CommandApdu) -> bytes | None:
        tag = _get_data_tag(command)
        if tag is None or tag not in self._objects:
            return None
        data = self._objects[tag]
        return _NOT_FOUND if data is None else self._deliver(data, _OK, command.max_response)

    def _continue(self, limit: int) -> bytes:
        if not self._pending:
            return _NOTHING_WAITING
        return self._deliver(self._pending, self._waiting_sw, limit)

    def _deliver(self, data: bytes, sw: bytes, limit: int) -> bytes:
        head, rest = data[:limit], data[limit:]
        self._pending, self._waiting_sw = rest, sw
        if not rest:
            return head + sw
        return head + response(sw=Sw.remaining(len(rest)))


def _is_chain_part(apdu: bytes) -> bool:
    """A well-formed short command of class 10 (chaining, nothing else) with data, no Le."""
    return len(apdu) > 5 and apdu[0] == 0x10 and apdu[4] != 0 and len(apdu) == 5 + apdu[4]


def _same_command(first: bytes, apdu: bytes) -> bool:
    """The next part of the chain: class 10 or 00 (the last), same instruction and P1 P2."""
    return len(apdu) >= 4 and apdu[0] in (0x00, 0x10) and apdu[1:4] == first[1:4]


def _get_data_tag(command: CommandApdu) -> int | None:
    """The tag of a GET DATA ``5C len tag`` for one object of 1 to 3 bytes; None otherwise."""
    data = command.data
    if command.header != _GET_DATA or len(data) < 3:
        return None
    if data[0] != _TAG_LIST or data[1] != len(data) - 2 or not 1 <= data[1] <= 3:
        return None
    return int.from_bytes(data[2:], "big")
