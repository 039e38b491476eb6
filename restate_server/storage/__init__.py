"""RocksDB storage: tables, key encodings, transactions and synced group commit."""

from restate_server.storage.committer import Committer
from restate_server.storage.db import Store
from restate_server.storage.transaction import Transaction

__all__ = ["Committer", "Store", "Transaction"]
