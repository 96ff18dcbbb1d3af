"""What the two SQL stores (:mod:`rorclient.store.sqlite`, :mod:`rorclient.store.postgres`) share, and
their dialect halves.

- :mod:`.store` — :class:`~.store.SqlStore`, the base both store classes extend (lifecycle, reads,
  the writer pool);
- :mod:`.statements` — the bookkeeping SQL (sync state, pending, breaker latches, runs, the change log)
  in each dialect;
- :mod:`.rows` — how entities become rows and back; :mod:`.bulk` — the staging half of a bulk load;
- :mod:`.sqlite` and :mod:`.postgres` — each dialect's schema and migrations, rows, bulk load and (for
  PostgreSQL) URL parsing and connections.
"""
