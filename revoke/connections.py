"""Connector instances and node lookups for one command (`Runtime`): a connector is instantiated
from its configuration block on first use, by name, and every one is closed once at the end."""

from __future__ import annotations

import threading

from revoke.config import Config
from revoke.connector import Connector
from revoke.errors import RevokeError
from revoke.model import Node
from revoke.store import Store


class Runtime:
    def __init__(self, config: Config | None, store: Store) -> None:
        self.config = config
        self.store = store
        self._conns: dict[str, Connector] = {}
        self._nodes: dict[str, Node] = {}
        self._lock = threading.Lock()

    def connector(self, name: str | None) -> Connector:
        if name is None:
            raise RevokeError("internal: an executable step without a connector")
        with self._lock:
            if name not in self._conns:
                from revoke.collect import instantiate

                cfg = next((c for c in (self.config.connectors if self.config else []) if c.name == name), None)
                if cfg is None:
                    raise RevokeError(f"connector {name!r} is not in the configuration any more; "
                                      "restore it in revoke.yaml to run or verify this incident")
                self._conns[name] = instantiate(cfg)
            return self._conns[name]

    def node(self, node_id: str) -> Node:
        with self._lock:
            if node_id not in self._nodes:
                self._nodes.update(self.store.load_nodes([node_id]))
            return self._nodes[node_id]

    def preload(self, node_ids: list[str]) -> None:
        """Load many node records in one pass (one query per 500) instead of one query each."""
        missing = [n for n in dict.fromkeys(node_ids) if n not in self._nodes]
        loaded = self.store.load_nodes(missing) if missing else {}
        with self._lock:
            self._nodes.update(loaded)

    def close(self) -> None:
        for conn in self._conns.values():
            conn.close()
        self._conns.clear()
