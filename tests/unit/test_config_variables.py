"""`ENVIRONMENT_VARIABLES` is the list the deployment template is checked against
(tests/integration/test_infra.py): it must name every variable `settings_from` reads."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from chalicelib.config import ENVIRONMENT_VARIABLES, settings_from


class _Recording(Mapping[str, str]):
    """An empty environment that remembers every name asked for."""

    def __init__(self) -> None:
        self.asked: set[str] = set()

    def __getitem__(self, key: str) -> str:
        self.asked.add(key)
        raise KeyError(key)

    def get(self, key: str, default: object = None) -> object:  # type: ignore[override]
        self.asked.add(key)
        return default

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def test_every_variable_the_settings_read_is_listed() -> None:
    env = _Recording()
    settings_from(env)
    assert sorted(env.asked - set(ENVIRONMENT_VARIABLES)) == []
    assert sorted(set(ENVIRONMENT_VARIABLES) - env.asked) == []
