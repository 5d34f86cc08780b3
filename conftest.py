"""Fixtures every suite shares: the embedded broker (evstack.fixtures)."""

pytest_plugins = ["evstack.fixtures"]
