"""A core filer's container in Azurite, reached as the cluster reaches Azure: with its credential's key."""

from __future__ import annotations

from azure.core.exceptions import AzureError, HttpResponseError, ResourceNotFoundError
from azure.storage.blob import BlobServiceClient, ContainerClient

from devstack.cluster import objects


class StorageError(Exception):
    """The container cannot be used; the text names the bucket and the storage error code only."""


def _reason(exc: Exception) -> str:
    if isinstance(exc, HttpResponseError):
        return str(exc.error_code or exc.status_code or type(exc).__name__)
    return type(exc).__name__


class FilerStorage:
    """Blob I/O for one bucket 'account/container', path-style under the simulator's blob endpoint."""

    def __init__(self, blob_endpoint: str, bucket: str, storage_key: str) -> None:
        account, _, container = bucket.partition("/")
        self.bucket = bucket
        service = BlobServiceClient(
            account_url=f"{blob_endpoint.rstrip('/')}/{account}",
            credential={"account_name": account, "account_key": storage_key},
            retry_total=2,
            connection_timeout=10,
            read_timeout=30,
        )
        self.container: ContainerClient = service.get_container_client(container)

    def _fail(self, what: str, exc: Exception) -> StorageError:
        return StorageError(f"cannot {what} bucket '{self.bucket}': {_reason(exc)}")

    def probe(self) -> list[str]:
        """Up to two blob names (proves the container exists and the key works)."""
        try:
            names = []
            for blob in self.container.list_blobs(results_per_page=2):
                names.append(blob.name)
                if len(names) == 2:
                    break
            return names
        except AzureError as exc:
            raise self._fail("list", exc) from None

    def get(self, name: str) -> tuple[bytes, dict[str, str]] | None:
        try:
            stream = self.container.download_blob(name)
            return stream.readall(), dict(stream.properties.metadata or {})
        except ResourceNotFoundError:
            return None
        except AzureError as exc:
            raise self._fail(f"read {name} from", exc) from None

    def put(self, name: str, body: bytes, metadata: dict[str, str]) -> None:
        try:
            self.container.upload_blob(name, body, metadata=metadata, overwrite=True)
        except AzureError as exc:
            raise self._fail(f"write {name} to", exc) from None

    def delete(self, name: str) -> None:
        try:
            self.container.delete_blob(name)
        except ResourceNotFoundError:
            pass
        except AzureError as exc:
            raise self._fail(f"delete {name} from", exc) from None

    def names(self, prefix: str) -> list[str]:
        try:
            return [b.name for b in self.container.list_blobs(name_starts_with=prefix)]
        except AzureError as exc:
            raise self._fail("list", exc) from None

    def fsinfo(self) -> objects.FsInfo | None:
        found = self.get(objects.FSINFO)
        if found is None:
            return None
        try:
            return objects.read_fsinfo(*found)
        except objects.ObjectError as exc:
            raise StorageError(f"bucket '{self.bucket}': {exc}") from None
