"""Fixtures every suite shares: the embedded broker (evproto.testing)."""

pytest_plugins = ["evproto.testing"]
