"""The range of every numeric config key, by its full dotted name (``NUMERIC_RULES``).

A rule is one of the kinds of ``RULES``: ``> 0`` (counts, sizes, durations; for integer keys the
schema already enforces the type, so ``> 0`` reads "an integer >= 1"), ``>= 0`` (0 meaning "off",
"none" or "the default"), ``> 1``, the unit intervals ``[0, 1]``, ``(0, 1)``, ``(0, 1]`` and
``[0, 1)`` (fractions, rates, axis ratios, ellipticities), ``!= 0`` (``cluster.n_jobs``) and
``finite`` (magnitudes, colours, offsets, slopes, indices: any finite number). A list is checked
element by element. ``None`` (an optional key left unset) passes every rule.

``tests/config/test_numeric_rules.py`` walks every schema and fails on a numeric key without a
rule here, so a new numeric key needs one.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Optional

#: rule kind -> (test, reason when it fails, allowed values)
RULES: dict[str, tuple[Callable[[float], bool], str, str]] = {
    "> 0": (lambda v: v > 0, "must be > 0", "positive numbers"),
    ">= 0": (lambda v: v >= 0, "must be >= 0", "numbers >= 0"),
    "> 1": (lambda v: v > 1, "must be > 1", "numbers > 1"),
    "[0, 1]": (lambda v: 0 <= v <= 1, "must lie in [0, 1]", "0 <= x <= 1"),
    "(0, 1)": (lambda v: 0 < v < 1, "must lie in (0, 1)", "0 < x < 1"),
    "(0, 1]": (lambda v: 0 < v <= 1, "must lie in (0, 1]", "0 < x <= 1"),
    "[0, 1)": (lambda v: 0 <= v < 1, "must lie in [0, 1)", "0 <= x < 1"),
    "!= 0": (lambda v: v != 0, "must not be 0 (-1: every core; n >= 1: n workers)", "-1 or n >= 1"),
    "finite": (lambda v: True, "", "a finite number"),
}


def _rules(kind: str, *keys: str) -> dict[str, str]:
    return dict.fromkeys(keys, kind)


NUMERIC_RULES: dict[str, str] = {
    # sizes, counts, durations, scales
    **_rules("> 0",
             "source.z_source", "source.sersic_n",
             "psf.default_fwhm_arcsec", "psf.kernel_fwhm_multiple", "psf.max_kernel_pix",
             "grid.theta_e", "grid.src_reff", "grid.priors.src_reff_median", "grid.priors.src_reff_sigma_dex",
             "grid.priors.src_reff_range", "grid.priors.lens_q_sigma",
             "tier.n_per_config", "tier.n_total_per_split", "tier.replicates", "tier.stamp_sizes",
             "survey.pixscale_arcsec", "survey.brick_size_pix",
             "cosmos_bank.stamp_size", "cosmos_bank.pixscale_arcsec", "cosmos_bank.hlr_max_arcsec",
             "cosmos_bank.max_galaxies", "cosmos_bank.chunk", "cosmos_bank.smooth_sigma_pix",
             "cosmos_bank.detect_nsigma",
             "mock_survey.n_bricks", "mock_survey.brick_size_pix", "mock_survey.galaxies_per_brick",
             "mock_survey.n_regions", "mock_survey.psf_fwhm_r_range",
             "parent.region_nside", "parent.chunk_rows",
             "manifest.max_total_tasks", "manifest.shard_max_tasks", "manifest.bucket_rows",
             "cache.threads", "cache.timeout_s", "cache.lru_files", "cache.range_block_bytes",
             "inject.shard_max_tasks", "score.batch_size", "completeness.z", "compact.target_file_mb",
             "validate.rerender_l2_tol", "validate.rerender_flux_tol",
             "cluster.emr.poll_seconds", "cluster.emr.timeout_minutes",
             "finder.core_radius", "finder.moment_sigma", "finder.profile_bin", "finder.smooth_sigma",
             "finder.detect_nsigma", "finder.r_out", "finder.min_pixels", "finder.n_sectors",
             "finder.width_floor", "finder.scale", "finder.batch_size"),
    # 0 means off, none, no cut or the default
    **_rules(">= 0",
             "grid.priors.lens_q_light_scatter", "grid.priors.lens_pa_light_scatter_deg",
             "seeds.split_seed", "seeds.seed_base", "mock_survey.seed", "mock_survey.stars_per_brick",
             "cosmos_bank.hlr_min_arcsec", "cosmos_bank.min_template_snr",
             "cache.retries", "cache.backoff_s", "inject.supersample", "inject.core_mask_radius",
             "output.quantize", "completeness.resolution_edges", "validate.rerender_rows",
             "cluster.emr.core_instance_count",
             "finder.r_in", "finder.red_veto_nsigma", "finder.coverage_weight", "finder.image_snr",
             "finder.model_error", "finder.threads", "finder.arc_snr_min"),
    **_rules("> 1", "psf.beta", "finder.full_elongation"),
    **_rules("[0, 1]", "tier.control_frac", "parent.split_fractions", "completeness.bad_pixel_frac_max",
             "completeness.wise_brightmask_frac_max", "finder.round_weight"),
    **_rules("(0, 1)", "completeness.fpr", "completeness.fpr_grid", "completeness.prevalence"),
    **_rules("(0, 1]", "grid.priors.lens_q_mean", "grid.priors.lens_q_range", "parent.topk_frac",
             "cosmos_bank.psf_target_fwhm_arcsec"),
    # ellipticity (1-q)/(1+q) and external shear: 1 would be a line / a supercritical sheet
    **_rules("[0, 1)", "grid.src_e", "grid.shear"),
    "cluster.n_jobs": "!= 0",
    # magnitudes, colours, offsets, slopes, indices
    **_rules("finite", "grid.src_dmag", "grid.priors.src_mag_r_range", "grid.priors.src_mag_count_slope",
             "mock_survey.depth_r_levels", "manifest.reference_rmag", "manifest.default_depth_r_mag",
             "completeness.threshold", "finder.arc_gr", "finder.arc_rz", "finder.max_segment_gr",
             "finder.offset", "finder.class_index"),
}


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def violation(key: str, value: Any) -> Optional[tuple[str, str]]:
    """(reason, allowed) when ``value`` (a number, a list of numbers or None) breaks the rule of
    ``key`` or is not finite; None when it passes. A key without a rule only has to be finite."""
    kind = NUMERIC_RULES.get(key, "finite")
    test, reason, allowed = RULES[kind]
    scalar = not isinstance(value, (list, tuple))
    for item in [value] if scalar else value:
        if not is_number(item):
            continue
        if not math.isfinite(item):
            return ("not a finite number" if scalar else f"{item!r} is not a finite number"), "a finite number"
        if not test(item):
            return (reason if scalar else f"{item!r} {reason}"), allowed
    return None


def numeric_leaves(cfg: Any) -> list[tuple[str, Any]]:
    """(full key, value) of every number and every list holding a number in a composed config
    (``hydra`` and ``cluster.spark_conf``, free Spark properties, left out). Values that cannot be
    resolved are left out: they are reported where they are read."""
    from omegaconf import OmegaConf
    from omegaconf.nodes import BooleanNode, EnumNode, StringNode

    out: list[tuple[str, Any]] = []
    text = (BooleanNode, EnumNode, StringNode)

    def walk(node: Any, prefix: str) -> None:
        for key in node.keys():
            full = f"{prefix}{key}"
            if full in ("hydra", "cluster.spark_conf"):
                continue
            child = node._get_node(key)
            if child._is_missing() or child._is_none():
                continue
            if OmegaConf.is_dict(child):
                walk(child, full + ".")
                continue
            if isinstance(child, text) or (OmegaConf.is_list(child) and child._metadata.element_type in (str, bool)):
                continue  # never a number: not resolved (path interpolations cost most of the walk)
            try:
                value = node[key]
            except Exception:  # an unresolvable interpolation is reported where it is read
                continue
            if OmegaConf.is_list(child):
                value = list(value)
                if any(is_number(v) for v in value):
                    out.append((full, value))
            elif is_number(value):
                out.append((full, value))

    walk(cfg, "")
    return out
