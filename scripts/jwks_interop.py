#!/usr/bin/env python3
"""Interop check: tokens issued by auth-server verify with PyJWT using only the JWKS.

Usage: jwks_interop.py BASE_URL TOKEN [TOKEN ...]

For each token: fetch BASE_URL/.well-known/jwks.json, pick the key by the token's `kid`, and
verify signature, algorithm (EdDSA only), expiry and issuer with PyJWT, an independent JWT
library from another ecosystem. Exits non-zero on the first token that does not verify.
"""
import json
import sys
import urllib.request

import jwt  # PyJWT, with the `cryptography` package for EdDSA


def main() -> int:
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    base_url, tokens = sys.argv[1].rstrip("/"), sys.argv[2:]
    with urllib.request.urlopen(f"{base_url}/.well-known/jwks.json", timeout=10) as response:
        jwks = jwt.PyJWKSet.from_dict(json.load(response))
    keys = {key.key_id: key for key in jwks.keys}
    for token in tokens:
        kid = jwt.get_unverified_header(token).get("kid")
        if kid not in keys:
            print(f"no JWKS key for kid {kid!r}", file=sys.stderr)
            return 1
        claims = jwt.decode(
            token,
            keys[kid].key,
            algorithms=["EdDSA"],
            issuer="auth-server",
            options={"require": ["exp", "iat", "sub", "iss"]},
        )
        print(f"verified kid={kid} sub={claims['sub']} with PyJWT {jwt.__version__}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
