"""Watermark and boilerplate removal: shipped regex rules plus a corpus-statistics detector.

Two kinds of removal, both recorded as lossless edits with stage ``"watermark"``:

* **Rules** (:mod:`.rules`; ``rules/watermarks.toml``, extensible by users) name known watermarks:
  inline source notes, template tags, bare URLs, site header/footer lines, breadcrumbs.
* **Detected boilerplate** (:mod:`.detector`): lines and bracketed runs that recur verbatim
  (after folding script, width, digits and whitespace: :mod:`.views`) in many documents.
  Statistics are collected per shard, counted per key partition, judged once for the corpus and
  applied per batch (:mod:`.removal`) by the stage (:mod:`.stage`).
"""

from corpuspipe.stages.watermark.detector import (
    added_by_copies,
    collect_boilerplate_stats,
    doc_frequency_threshold,
    is_allowlisted,
    is_protected,
    select_boilerplate,
    select_site_boilerplate,
    site_threshold,
    stats_table,
)
from corpuspipe.stages.watermark.removal import (
    EMPTIED_FLAG,
    KEPT_FLAG,
    Span,
    find_spans,
    remove_watermarks,
    removed_text,
    removes_whole_line,
)
from corpuspipe.stages.watermark.rules import (
    BOILERPLATE_BLOCK_RULE,
    BOILERPLATE_LINE_RULE,
    BOILERPLATE_RUN_RULE,
    RULE_TIMEOUT_SECONDS,
    STAGE,
    RuleGuard,
    RulesFileError,
    WatermarkRule,
    catastrophic_reason,
    check_rules_file,
    load_allowlist,
    load_rules,
)
from corpuspipe.stages.watermark.stage import Watermark
from corpuspipe.stages.watermark.views import (
    LINE_PREFIX,
    RUN_PREFIX,
    Candidate,
    boilerplate_key,
    boilerplate_keys,
    candidates,
    edge_flags,
    essay_site,
    key_view,
    normalized_view,
    site_of,
)

__all__ = [
    "BOILERPLATE_BLOCK_RULE", "BOILERPLATE_LINE_RULE", "BOILERPLATE_RUN_RULE", "EMPTIED_FLAG", "KEPT_FLAG",
    "LINE_PREFIX", "RULE_TIMEOUT_SECONDS", "RUN_PREFIX", "STAGE", "Candidate", "RuleGuard", "RulesFileError",
    "Span", "Watermark", "WatermarkRule", "added_by_copies", "boilerplate_key", "boilerplate_keys", "candidates",
    "catastrophic_reason", "check_rules_file", "collect_boilerplate_stats", "doc_frequency_threshold",
    "edge_flags", "essay_site", "find_spans", "is_allowlisted", "is_protected", "key_view", "load_allowlist",
    "load_rules", "normalized_view", "remove_watermarks", "removed_text", "removes_whole_line", "select_boilerplate",
    "select_site_boilerplate", "site_of", "site_threshold", "stats_table",
]
