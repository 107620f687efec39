"""Checks of every 4c input before a run that replaces outputs (``force=true``) touches them:
the COSMOS bank opens, and a brick of the manifest opens through the configured survey access."""

from __future__ import annotations

from typing import Any

from dhs.errors import MissingInputError
from dhs.inject.settings import InjectSettings

#: Bricks tried before the survey is declared unreadable (one may be missing for good).
PROBE_BRICKS = 3


def check_inputs(s: InjectSettings, manifest: Any) -> None:
    """Raise a DhsError naming the input when the bank or the survey cannot be read."""
    if s.source.kind == "cosmos":
        from dhs.cosmos.bank import load_bank

        try:
            bank = load_bank(str(s.source.bank_path))
        except Exception as exc:  # noqa: BLE001 - any failure to open the bank is the user's input
            raise MissingInputError(f"source.bank_path={s.source.bank_path} cannot be read ({exc}); "
                                    "nothing was changed. Fix the path or run `dhs stage=cosmos_bank`.") from exc
        if len(bank) == 0:
            raise MissingInputError(f"source.bank_path={s.source.bank_path} holds no galaxies; nothing "
                                    "was changed. Rebuild it with `dhs stage=cosmos_bank`.")
    if s.survey_source != "bricks" or manifest.num_rows == 0:
        return
    from dhs.fetch.blacklist import bricks as blacklisted
    from dhs.fetch.remote import open_survey_file, survey_file_uri

    skip = set(blacklisted(s.blacklist_path))
    names = [b for b in dict.fromkeys(manifest.column("brickname").to_pylist()) if b not in skip]
    band = "r" if "r" in s.bands else s.bands[0]
    errors = []
    for brick in names[:PROBE_BRICKS]:
        try:
            open_survey_file(s.survey, brick, "image", band)
            return
        except Exception as exc:  # noqa: BLE001 - reported with the file it came from
            errors.append(f"{survey_file_uri(s.survey, brick, 'image', band)}: {exc}")
    if errors:
        raise MissingInputError(f"no survey brick of the manifest could be read ({'; '.join(errors)}); "
                                "nothing was changed. Check survey.base_url, cache.mode and paths.cache_root "
                                "(run `dhs stage=4b` to fill the cache).")
