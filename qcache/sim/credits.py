"""Attribution lines that must accompany results computed on third-party traces."""

from __future__ import annotations

CACHE2K_CREDIT = (
    "Trace from the cache2k project, headissue GmbH / Jens Wilke, CC BY 4.0 "
    "(https://creativecommons.org/licenses/by/4.0/)."
)

ARC_CITATION = (
    "Trace from N. Megiddo and D. S. Modha, \"ARC: A Self-Tuning, Low Overhead "
    "Replacement Cache\", USENIX FAST '03, pp. 115-130, 2003."
)


def credit_for(file_name: str, trace_format: str) -> str:
    """The attribution a trace needs, recognised by its file name or format ('' if none)."""
    lowered = file_name.lower()
    if "cache2k" in lowered:
        return CACHE2K_CREDIT
    if trace_format == "arc" or lowered.startswith("arc_"):
        return ARC_CITATION
    return ""
