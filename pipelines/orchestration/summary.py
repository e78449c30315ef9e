"""A run's summary in words: the Prefect artifact and the CLI's closing lines (counts only)."""

from __future__ import annotations

from typing import Any


def run_summary_markdown(summary: dict[str, Any]) -> str:
    """A run's summary for the Prefect UI: files, row counts, links and releases (no PII)."""
    lines = [f"# Pathlink run {summary['run_id']}", ""]
    if not summary["periods"]:
        lines.append(f"Nothing new to process ({summary['unchanged']} files unchanged).")
    for period in summary["periods"]:
        lines += [f"## Period {period['period']}", "",
                  "| file | status | read | accepted | quarantined |", "|---|---|---:|---:|---:|"]
        for drop in period["drops"]:
            lines.append(f"| {drop['rel_path']} | {drop['status']} | "
                         f"{drop.get('rows_read', '')} | {drop.get('rows_accepted', '')} | "
                         f"{drop.get('rows_quarantined', '')} |")
        link = period.get("link", {})
        lines += ["", f"Linked {link.get('records', 0)} records into {link.get('persons', 0)} "
                      f"persons ({link.get('matches', 0)} matching pairs, "
                      f"{link.get('possible', 0)} for clerical review, "
                      f"{link.get('id_events', 0)} person-ID events; "
                      f"{link.get('no_identifiers', 0)} records with nothing to link on, "
                      "each its own person).", ""]
        note = rotation_note(link)
        if note:
            lines += [note, ""]
        published = period.get("published", {})
        if published:
            lines.append("Published: " + ", ".join(f"{k} {v}" for k, v in
                                                   sorted(published.items())) + ".")
            lines.append("")
    for refusal in summary["refused"]:
        lines.append(f"- refused: {refusal['file']}")
    for hold in summary.get("held", []):
        lines.append(f"- **not published**: {hold['reason']}")
    if summary.get("waiting"):
        lines.append(f"- waiting for the next run: {', '.join(summary['waiting'])}")
    return "\n".join(lines) + "\n"


def rotation_note(link: dict[str, Any]) -> str | None:
    """A line on key rotation for run summaries (counts only), or None when nothing to say."""
    parts = []
    if link.get("overlap_bridged") or link.get("overlap_old_only"):
        parts.append(f"overlap period: {link.get('overlap_bridged', 0)} partner records "
                     f"encoded under both keys ({link.get('overlap_persons_kept', 0)} kept "
                     f"their person), {link.get('overlap_old_only', 0)} sent only under the "
                     f"previous key, {link.get('overlap_new_only', 0)} only under the new key")
    if link.get("old_key_records"):
        parts.append(f"{link['old_key_records']} records known only under an earlier key keep "
                     "their persons but are not linked")
    return "Key rotation: " + "; ".join(parts) + "." if parts else None
