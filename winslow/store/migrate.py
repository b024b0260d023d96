"""The child process ``store.db.migrate_apart`` starts: migrates the database whose URL
arrives on stdin, so that alembic loads here and not in the server."""

from __future__ import annotations

import sys

from sqlalchemy.exc import DBAPIError

from winslow.store.db import make_engine, migrate


def main() -> int:
    engine = make_engine(sys.stdin.read().strip())
    try:
        migrate(engine)
    except Exception as exc:  # the parent shows the last line it reads here
        # The driver's own words; SQLAlchemy's add the whole statement and a link.
        cause = exc.orig if isinstance(exc, DBAPIError) else exc
        print(f"{type(cause).__name__}: {cause}".replace("\n", " "), file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
