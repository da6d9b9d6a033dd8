"""Moved to :mod:`dd_bench.app.sweep_board`; this old import path keeps working (CHANGELOG, "Moved")."""

from dd_bench.app.sweep_board import JOB_FILE, SweepBoard, board_text, job_summary, sweep_records

__all__ = ["JOB_FILE", "board_text", "job_summary", "sweep_records", "SweepBoard"]
