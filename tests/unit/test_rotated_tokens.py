"""The CLI's rotated-token file: where it lives, who may read it, and when it beats the manifest."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from inventory_sync.errors import CredentialsError
from inventory_sync.manifests import EnvOverlaySecrets, RotatedTokens, rotated_tokens_dir
from inventory_sync.syncing.credentials import SecretWriter, StaticSecrets

MANIFEST = {"client_id": "c", "client_secret": "s", "refresh_token": "from-manifest"}


def overlay(
    tmp_path: Path, data: dict[str, str] | None = None, **environ: str
) -> EnvOverlaySecrets:
    base = StaticSecrets({("default", "classic"): dict(data or MANIFEST)})
    return EnvOverlaySecrets(base, environ, token_dir=tmp_path / "tokens")


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        pytest.param(
            {"XDG_CACHE_HOME": "/x/cache", "HOME": "/home/u"},
            "/x/cache/inventory-sync/rotated-tokens",
            id="XDG_CACHE_HOME wins",
        ),
        pytest.param(
            {"XDG_CACHE_HOME": "relative", "HOME": "/home/u"},
            "/home/u/.cache/inventory-sync/rotated-tokens",
            id="a relative XDG_CACHE_HOME is ignored, as the spec says",
        ),
        pytest.param(
            {"HOME": "/home/u"}, "/home/u/.cache/inventory-sync/rotated-tokens", id="~/.cache"
        ),
    ],
)
def test_the_directory_follows_the_xdg_cache_rules(environ: dict[str, str], expected: str) -> None:
    assert rotated_tokens_dir(environ) == Path(expected)


async def test_a_written_token_is_read_back_instead_of_the_manifests(tmp_path: Path) -> None:
    secrets = overlay(tmp_path)
    assert isinstance(secrets, SecretWriter)

    await secrets.write("default", "classic", "refresh_token", "rotated-1")
    await secrets.write("default", "classic", "refresh_token", "rotated-2")

    assert await secrets.read("default", "classic") == {**MANIFEST, "refresh_token": "rotated-2"}
    assert await overlay(tmp_path).read("default", "classic") == {
        **MANIFEST,
        "refresh_token": "rotated-2",
    }  # a new process finds it too
    path = tmp_path / "tokens" / "default_classic.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


async def test_a_new_token_put_into_the_manifest_wins_over_the_saved_one(tmp_path: Path) -> None:
    await overlay(tmp_path).write("default", "classic", "refresh_token", "rotated-1")

    reauthorized = overlay(tmp_path, {**MANIFEST, "refresh_token": "newly-issued"})

    assert (await reauthorized.read("default", "classic") or {})["refresh_token"] == (
        "newly-issued"
    )


async def test_the_environment_counts_as_the_manifest(tmp_path: Path) -> None:
    env = {"INVENTORY_SYNC_SECRET_CLASSIC_REFRESH_TOKEN": "from-env"}
    secrets = overlay(tmp_path, **env)
    await secrets.write("default", "classic", "refresh_token", "rotated-1")

    assert (await overlay(tmp_path, **env).read("default", "classic") or {})[
        "refresh_token"
    ] == "rotated-1"
    assert (await overlay(tmp_path).read("default", "classic") or {})[
        "refresh_token"
    ] == "from-manifest"  # the manifest's value is not the one the file replaced


async def test_a_damaged_file_is_an_error_naming_the_file_never_its_content(
    tmp_path: Path,
) -> None:
    store = RotatedTokens(tmp_path / "tokens")
    store.directory.mkdir()
    store.path("default", "classic").write_text('{"keys": {"refresh_token": "leaked-value"}}')

    with pytest.raises(CredentialsError) as caught:
        await overlay(tmp_path).read("default", "classic")

    assert "default_classic.json" in str(caught.value)
    assert "leaked-value" not in str(caught.value)


def test_names_cannot_escape_the_directory(tmp_path: Path) -> None:
    store = RotatedTokens(tmp_path)
    assert store.path("../etc", "x/y").parent == tmp_path
