"""Load tests of the /v1 gateway against the demo upstream (see docs/performance.md)."""
