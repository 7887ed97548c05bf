"""The crash-window harness: hold sedged's store commit from outside.

`StoreHold` takes SQLite's write lock on sedged's database from another
connection (BEGIN IMMEDIATE), as a backup tool or a second process would.
While it is held, sedged's next commit waits in SQLite's busy handler: every
write made from then on is in memory only. A `kill -9` inside the hold is a
crash inside the commit window, deterministically, not by luck; holding it
past sedged's `store.busy_timeout_ms` makes the commit fail (sedged keeps the
writes and retries).

    with StoreHold(sedge) as hold:
        ...            # writes made now are not durable
        sedge.kill9()  # crash inside the window
"""

import sqlite3
import time


class StoreHold:
    def __init__(self, sedge, timeout=30.0):
        self.path = str(sedge.data_dir / "sedge.db")
        self.timeout = timeout
        self.con = None

    def __enter__(self):
        # Waits for a commit that is under way, then holds the lock: what
        # was committed before stays, nothing after is.
        self.con = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None)
        self.con.execute("BEGIN IMMEDIATE")
        # Give the loop a moment to hand its open batch to the worker, so
        # that the worker is blocked inside the commit, not before it.
        time.sleep(0.05)
        return self

    def release(self):
        if self.con is not None:
            try:
                self.con.execute("ROLLBACK")
            except sqlite3.Error:
                pass
            self.con.close()
            self.con = None

    def __exit__(self, *exc):
        self.release()
        return False


def rows(sedge, sql, *args):
    """Rows of a query on sedged's store (read while it runs: WAL)."""
    con = sqlite3.connect(str(sedge.data_dir / "sedge.db"), timeout=30.0)
    try:
        return con.execute(sql, args).fetchall()
    finally:
        con.close()
