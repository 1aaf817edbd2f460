"""Token interop for Python services that share the secret (PyJWT).

verify <secret> <token>  -> prints the verified claims as JSON (HS256 pinned, type access required)
mint <secret> <json-claims> -> prints an access token with kid = the platform's key id for the secret
"""
import base64
import hashlib
import json
import sys
import time

import jwt


def kid_of(secret: str) -> str:
    digest = hashlib.sha256(b"kid:" + secret.encode()).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")[:12]


def verify(secret: str, token: str) -> dict:
    header = jwt.get_unverified_header(token)
    if header.get("kid") != kid_of(secret):
        raise SystemExit("unknown kid")
    claims = jwt.decode(token, secret, algorithms=["HS256"], leeway=30, options={"require": ["exp", "iat", "sub", "jti"]})
    if claims.get("type") != "access":
        raise SystemExit("not an access token")
    return claims


def mint(secret: str, claims: dict) -> str:
    now = int(time.time())
    payload = {"iat": now, "exp": now + 900, "type": "access", **claims}
    return jwt.encode(payload, secret, algorithm="HS256", headers={"kid": kid_of(secret)})


if __name__ == "__main__":
    command, secret, arg = sys.argv[1], sys.argv[2], sys.argv[3]
    if command == "verify":
        print(json.dumps(verify(secret, arg)))
    elif command == "mint":
        print(mint(secret, json.loads(arg)))
    elif command == "kid":
        print(kid_of(secret))
    else:
        raise SystemExit("usage: verify|mint|kid SECRET ARG")
