"""Opening a card and signing, in-process, against its floor (one KDF + one signature).

The path: open the outer seal (master key), derive the passcode KEK (Argon2id at the
configured parameters), unwrap the DEK, open the authentication key, load it, sign a
SHA-256 digest, wipe. The floor is measured in the same run.

Usage: .venv/bin/python bench/open_card.py [--runs N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _setup import PASSCODE, data_dir, holders
from cardvault.crypto import keys as ckeys
from cardvault.crypto.aead import wipe
from cardvault.crypto.kdf import derive_key
from cardvault.crypto.keyslots import open_passcode_slot, open_private_key
from cardvault.services.cards.lookup import get_card
from cardvault.services.cards.sealing import open_record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    settings, rt = data_dir(None)
    holder = holders(rt, 1)[0]
    with rt.db() as session:
        card = get_card(session, holder.serial)
    rsa = ckeys.generate_private_key(ckeys.KeyAlgorithm.RSA2048)
    floor, path = [], []
    for _ in range(args.runs):
        t = time.perf_counter()
        wipe(derive_key(PASSCODE.encode(), os.urandom(16), settings.argon2))
        ckeys.sign_digest(rsa, os.urandom(32), scheme=ckeys.SignatureScheme.RSA_PKCS1V15)
        floor.append(time.perf_counter() - t)
        t = time.perf_counter()
        record = open_record(rt.master_key, card)
        dek = open_passcode_slot(record, PASSCODE)
        pkcs8 = open_private_key(dek, card_id=card.id, sealed=record.key("authentication"))
        wipe(dek)
        key = ckeys.load_private_key(pkcs8, trusted=True)
        wipe(pkcs8)
        ckeys.sign_digest(key, os.urandom(32), scheme=ckeys.SignatureScheme.RSA_PKCS1V15)
        path.append(time.perf_counter() - t)
    f, p = statistics.median(floor) * 1000, statistics.median(path) * 1000
    print(
        f"\nArgon2id m={settings.argon2_memory_kib} KiB t={settings.argon2_time_cost} "
        f"p={settings.argon2_parallelism}, RSA-2048, {args.runs} runs (medians)"
    )
    print(f"floor (KDF + signature):        {f:8.2f} ms")
    print(f"open card and sign (cardvault): {p:8.2f} ms")
    print(f"ratio:                          {p / f:8.3f}")
    rt.close()


if __name__ == "__main__":
    main()
