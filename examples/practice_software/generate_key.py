#!/usr/bin/env python3
"""Generate the key pair a practice's software signs its SMART Backend Services assertions with.

Writes two files:

* ``<name>.private.jwk.json`` — the private key (keep it on the practice's machine, readable by
  the software only; never send it anywhere);
* ``<name>.jwks.json`` — the public key set, to register with Hygie
  (``hygie client add … --jwks-file <name>.jwks.json``).

Usage: ``python generate_key.py [--name cabinet] [--kind RSA|EC]`` (RSA 2048 for RS384 by default,
EC P-384 for ES384).
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
from pathlib import Path

from joserfc.jwk import ECKey, RSAKey


def generate(name: str, kind: str, folder: Path) -> tuple[Path, Path]:
    """Write the private JWK and the public JWKS; return their paths."""
    kid = f"{name}-{secrets.token_hex(4)}"
    if kind == "EC":
        key: RSAKey | ECKey = ECKey.generate_key(
            "P-384", parameters={"kid": kid, "alg": "ES384", "use": "sig"}
        )
    else:
        key = RSAKey.generate_key(2048, parameters={"kid": kid, "alg": "RS384", "use": "sig"})
    private = folder / f"{name}.private.jwk.json"
    public = folder / f"{name}.jwks.json"
    private.write_text(json.dumps(key.as_dict(private=True), indent=2) + "\n")
    private.chmod(0o600)
    public.write_text(json.dumps({"keys": [key.as_dict(private=False)]}, indent=2) + "\n")
    return private, public


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--name", default="cabinet", help="file name prefix and key id prefix")
    parser.add_argument(
        "--kind", choices=("RSA", "EC"), default="RSA", help="RSA (RS384) or EC P-384 (ES384)"
    )
    parser.add_argument("--out", type=Path, default=Path("."), help="folder to write the two files in")
    args = parser.parse_args(argv)
    private, public = generate(args.name, args.kind, args.out)
    print(f"private key (keep it secret): {private}")
    print(f"public key set (register it with Hygie): {public}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
