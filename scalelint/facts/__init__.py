"""Phase 1: each file becomes plain, picklable facts (no libcst nodes inside)."""
