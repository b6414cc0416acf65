"""Credentials out of messages: every URL is masked before it reaches an error, a log or output.

A catalog URL (``postgresql+psycopg://user:password@host/db``), an HTTP backend URL
(``https://user:token@marquez``) or a libpq URI with ``?password=`` carries a secret, and
so does a mistyped one (``postgresql//user:password@host``).
:func:`mask_credentials` replaces the password of every URL in a text (and the value of
query parameters named like secrets) with ``***``, keeping user, host and path, so a
message still says which backend failed. Apply it to anything built from a URL or from a
driver's exception text before raising, logging, storing or printing it.

Example::

    mask_credentials("catalog postgresql://lake:s3cret@db:5432/cat: connection refused")
    # 'catalog postgresql://lake:***@db:5432/cat: connection refused'
"""

from __future__ import annotations

import re

MASK = "***"

_USERINFO = re.compile(r"(?P<prefix>(?:\b[A-Za-z][A-Za-z0-9+.-]*:)?//[^:/@\s]*):[^@\s]*@")
_SECRET_PARAMETER = re.compile(
    r"(?P<prefix>[?&;](?:password|passwd|pwd|sslpassword|secret|token|access_token|api_?key)=)[^&#\s]*",
    re.IGNORECASE,
)


def mask_credentials(text: object) -> str:
    """``text`` (a URL, or a message holding URLs) with every URL password and secret parameter masked."""
    masked = _USERINFO.sub(lambda m: f"{m['prefix']}:{MASK}@", str(text))
    return _SECRET_PARAMETER.sub(lambda m: f"{m['prefix']}{MASK}", masked)
