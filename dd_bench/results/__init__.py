"""Run records (one JSON file per evaluation), their provenance, and the leaderboard derived from them."""

from dd_bench.results.board_text import format_leaderboard_text
from dd_bench.results.leaderboard import (
    GAP_COLUMN,
    PUBLISHED_CSV,
    build_leaderboard,
    load_published,
    write_leaderboard,
)
from dd_bench.results.record import RECORD_VERSION, RunRecord, load_records, provenance_fields, write_record
from dd_bench.tracking.provenance import PeakMemory, collect_provenance, git_state, peak_memory_tracker

__all__ = [
    "GAP_COLUMN",
    "PUBLISHED_CSV",
    "RECORD_VERSION",
    "PeakMemory",
    "RunRecord",
    "build_leaderboard",
    "collect_provenance",
    "format_leaderboard_text",
    "git_state",
    "load_published",
    "load_records",
    "peak_memory_tracker",
    "provenance_fields",
    "write_leaderboard",
    "write_record",
]
