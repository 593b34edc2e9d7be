"""Dictionaries for HTTP data: multi-valued (query/form) and case-insensitive (headers)."""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Tuple


class MultiDict(dict):
    """A dict that keeps every value given for a key; item access returns the first.

    Query strings and forms may repeat a key (``?tag=a&tag=b``): ``d['tag']`` is
    ``'a'`` and ``d.getlist('tag')`` is ``['a', 'b']``. As in Microdot, the dict
    holds each key's list of values: ``items()``, ``values()``, ``dict(d)``, ``repr``
    and JSON output show the lists (``{'tag': ['a', 'b']}``).
    """

    def __init__(self, initial: Any = None) -> None:
        super().__init__()
        if isinstance(initial, MultiDict):  # every value of every key (lists copied)
            for key, values in initial.lists():
                dict.__setitem__(self, key, values)
        elif initial:
            items = initial.items() if hasattr(initial, 'items') else initial
            for key, value in items:
                self[key] = value

    def __setitem__(self, key: str, value: Any) -> None:
        if key not in self:
            super().__setitem__(key, [])
        super().__getitem__(key).append(value)

    def __getitem__(self, key: str) -> Any:
        return super().__getitem__(key)[0]

    def get(self, key: str, default: Any = None, type: Optional[Callable] = None) -> Any:
        """The first value for ``key`` (converted with ``type``), else ``default``."""
        if key not in self:
            return default
        value = self[key]
        if type is not None:
            value = type(value)
        return value

    def getlist(self, key: str, type: Optional[Callable] = None) -> List[Any]:
        """Every value for ``key``, in order (an empty list when absent)."""
        if key not in self:
            return []
        values = super().__getitem__(key)
        if type is not None:
            values = [type(value) for value in values]
        return list(values)

    def lists(self) -> List[Tuple[str, List[Any]]]:
        """``(key, [values])`` pairs."""
        return [(key, list(values)) for key, values in super().items()]

    def to_dict(self, flat: bool = True) -> Dict[str, Any]:
        """A plain dict: the first value per key, or every value (``flat=False``)."""
        return {key: values[0] for key, values in dict.items(self)} if flat \
            else dict(self.lists())

    def copy(self) -> 'MultiDict':
        """A copy with its own value lists."""
        return MultiDict(self)


class NoCaseDict(dict):
    """A dict with case-insensitive string keys that remembers the spelling first used.

    Used for headers: ``h['content-type']`` finds ``'Content-Type'``, and iterating
    gives the keys as they were set.
    """

    __slots__ = ('keymap',)  # no per-instance __dict__: two of these per request

    def __init__(self, initial: Any = None) -> None:
        self.keymap: Dict[str, str] = {}
        if initial:
            items = initial.items() if hasattr(initial, 'items') else initial
            for key, value in items:
                self[key] = value

    def _key(self, key: str) -> str:
        return self.keymap.get(key.lower(), key) if isinstance(key, str) else key

    def __setitem__(self, key: str, value: Any) -> None:
        lkey = key.lower()
        real = self.keymap.get(lkey)
        if real is None:  # a new key: remember this spelling; later ones reuse it
            self.keymap[lkey] = real = key
        super().__setitem__(real, value)

    def __getitem__(self, key: str) -> Any:
        return super().__getitem__(self._key(key))

    def __delitem__(self, key: str) -> None:
        real = self._key(key)
        super().__delitem__(real)
        del self.keymap[real.lower()]

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.lower() in self.keymap

    def get(self, key: str, default: Any = None) -> Any:
        real = self.keymap.get(key.lower())
        return default if real is None else super().__getitem__(real)

    def pop(self, key: str, *default: Any) -> Any:
        real = self.keymap.pop(key.lower(), None)
        if real is None:
            if default:
                return default[0]
            raise KeyError(key)
        return super().pop(real)

    def popitem(self) -> Tuple[str, Any]:
        key, value = super().popitem()
        del self.keymap[key.lower()]
        return key, value

    def setdefault(self, key: str, default: Any = None) -> Any:
        if key in self:
            return self[key]
        self[key] = default
        return default

    def update(self, other: Any = (), **kwargs: Any) -> None:  # type: ignore[override]
        items = other.items() if hasattr(other, 'items') else other
        for key, value in items:
            self[key] = value
        for key, value in kwargs.items():
            self[key] = value

    def copy(self) -> 'NoCaseDict':
        """A shallow copy (same spellings), without re-checking every key."""
        new = NoCaseDict.__new__(NoCaseDict)
        dict.update(new, self)
        new.keymap = self.keymap.copy()
        return new

    def clear(self) -> None:
        super().clear()
        self.keymap.clear()

    def __repr__(self) -> str:
        return 'NoCaseDict(%s)' % dict.__repr__(self)
