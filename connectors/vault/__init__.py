"""The Vault (and OpenBao) connector package; `VaultConnector` is its entry point."""

from connectors.vault.connector import VaultConnector

__all__ = ["VaultConnector"]
