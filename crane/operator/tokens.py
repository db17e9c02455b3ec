"""Minting MiniCluster-scoped API tokens for app managers, through Crane's SDK."""

from __future__ import annotations

from crane.client import Client


class TokenMinter:
    """Holds an admin token of Crane's API; mints and revokes tokens scoped to one MiniCluster."""

    def __init__(self, api_url: str, admin_token: str) -> None:
        self.api_url = api_url
        self.admin_token = admin_token

    def _client(self) -> Client:
        return Client(url=self.api_url, token=self.admin_token, context=None, timeout=10.0)

    def mint(self, namespace: str, minicluster: str) -> tuple[str, str]:
        """(token id, secret) of a new token for ``namespace/minicluster`` only."""
        with self._client() as api:
            created = api.create_token(
                {
                    "scope": "minicluster",
                    "tenant": namespace,
                    "miniCluster": minicluster,
                    "description": f"app manager of MiniCluster {namespace}/{minicluster}",
                }
            )
        return created.id, created.token

    def revoke(self, token_id: str) -> None:
        """Revoke the API token ``token_id``."""
        with self._client() as api:
            api.revoke_token(token_id)
