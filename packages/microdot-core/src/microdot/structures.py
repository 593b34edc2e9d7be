"""Dictionaries for HTTP data: multi-valued (query/form) and case-insensitive (headers)."""
from __future__ import annotations

from typing import (TYPE_CHECKING, Any, Callable, Dict, Generic, Iterable, List, Mapping,
                    Optional, Tuple, TypeVar, Union, cast, overload)

if TYPE_CHECKING:
    # the value type defaults to Any: a bare ``MultiDict`` annotation stays valid
    from typing_extensions import TypeVar as TypeVarWithDefault
    _V = TypeVarWithDefault('_V', default=Any)
else:
    _V = TypeVar('_V')

__all__ = ['MultiDict', 'NoCaseDict']

_T = TypeVar('_T')
_S = TypeVar('_S')

#: What the constructors and ``update`` take: a mapping, or ``(key, value)`` pairs.
Initial = Union[Mapping[str, _V], Iterable[Tuple[str, _V]], None]


class MultiDict(Dict[str, Any], Generic[_V]):
    """A dict that keeps every value given for a key; item access returns the first.

    Query strings and forms may repeat a key (``?tag=a&tag=b``): ``d['tag']`` is
    ``'a'`` and ``d.getlist('tag')`` is ``['a', 'b']``. As in Microdot, the dict
    holds each key's list of values: ``items()``, ``values()``, ``dict(d)``, ``repr``
    and JSON output show the lists (``{'tag': ['a', 'b']}``). The type parameter is
    the type of the values: ``request.args`` is a ``MultiDict[str]``.

    Args:
        initial: Values to start with: another ``MultiDict`` (every value of every
            key is copied), a mapping, or ``(key, value)`` pairs, where a repeated
            key adds a value.
    """

    def __init__(self, initial: Union[MultiDict[_V], Initial[_V]] = None) -> None:
        super().__init__()
        source: Any = initial
        if isinstance(source, MultiDict):  # every value of every key (lists copied)
            for key, values in source.lists():  # pyright: ignore[reportUnknownVariableType]
                super().__setitem__(key, values)
        elif source:
            items = source.items() if hasattr(source, 'items') else source
            for key, value in items:
                self[key] = value

    def __setitem__(self, key: str, value: _V) -> None:
        """Add ``value`` to the values of ``key`` (it does not replace them)."""
        if key not in self:
            super().__setitem__(key, [])
        super().__getitem__(key).append(value)

    def __getitem__(self, key: str) -> _V:
        """The first value of ``key``; ``KeyError`` if it has none."""
        first: _V = super().__getitem__(key)[0]
        return first

    # (not the dict's get: this one returns a key's first value, not its list)
    @overload  # type: ignore[override]
    def get(self, key: str, default: None = None, /) -> Optional[_V]: ...

    @overload
    def get(self, key: str, default: _V, /) -> _V: ...

    @overload
    def get(self, key: str, default: _T, /) -> Union[_V, _T]: ...

    @overload
    def get(self, key: str, *, default: _T) -> Union[_V, _T]: ...

    @overload
    def get(self, key: str, default: _T, type: Callable[[_V], _S]) -> Union[_S, _T]: ...

    @overload
    def get(self, key: str, *, type: Callable[[_V], _S]) -> Optional[_S]: ...

    def get(self, key: str, default: Any = None,  # pyright: ignore[reportIncompatibleMethodOverride]
            type: Optional[Callable[[_V], Any]] = None) -> Any:
        """Return the first value of a key, converted, or a default.

        Args:
            key: The key.
            default: What to return when ``key`` has no value.
            type: A conversion applied to the value, such as ``int`` (its exceptions
                propagate).

        Returns:
            The first value of ``key`` (converted with ``type``), else ``default``.
        """
        if key not in self:
            return default
        value = self[key]
        if type is not None:
            return type(value)
        return value

    @overload
    def getlist(self, key: str) -> List[_V]: ...

    @overload
    def getlist(self, key: str, type: Callable[[_V], _S]) -> List[_S]: ...

    def getlist(self, key: str, type: Optional[Callable[[_V], Any]] = None) -> List[Any]:
        """Return every value of a key, in the order they were added.

        Args:
            key: The key.
            type: A conversion applied to each value, such as ``int``.

        Returns:
            A new list of the values (converted with ``type``); empty when ``key``
            has none.
        """
        if key not in self:
            return []
        values: List[_V] = super().__getitem__(key)
        if type is not None:
            return [type(value) for value in values]
        return list(values)

    def lists(self) -> List[Tuple[str, List[_V]]]:
        """Return every key with all its values.

        Returns:
            ``(key, [values])`` pairs, in insertion order, each with a new list.
        """
        return [(key, list(values)) for key, values in super().items()]

    def to_dict(self, flat: bool = True) -> Dict[str, Any]:
        """Return a plain ``dict`` of the contents.

        Args:
            flat: ``True`` for the first value of each key, ``False`` for the list
                of all its values.

        Returns:
            A new ``dict``.
        """
        return {key: values[0] for key, values in super().items()} if flat \
            else dict(self.lists())

    def copy(self) -> MultiDict[_V]:
        """Return a copy with its own value lists.

        Returns:
            A new ``MultiDict`` with the same values.
        """
        return MultiDict(self)


class NoCaseDict(Dict[str, _V]):
    """A dict with case-insensitive string keys that remembers the spelling first used.

    Used for headers: ``h['content-type']`` finds ``'Content-Type'``, and iterating
    gives the keys as they were set first.

    Args:
        initial: Items to start with: a mapping or ``(key, value)`` pairs.
    """

    __slots__ = ('keymap',)  # no per-instance __dict__: two of these per request

    #: Lower-case key to the spelling stored in the dict.
    keymap: Dict[str, str]

    def __init__(self, initial: Initial[_V] = None) -> None:
        self.keymap = {}
        if initial:
            source: Any = initial
            items = source.items() if hasattr(source, 'items') else source
            for key, value in items:
                self[key] = value

    def _key(self, key: Any) -> Any:
        return self.keymap.get(key.lower(), key) if isinstance(key, str) else key

    def __setitem__(self, key: str, value: _V) -> None:
        """Set ``key`` (matched without regard to case) to ``value``."""
        lkey = key.lower()
        real = self.keymap.get(lkey)
        if real is None:  # a new key: remember this spelling; later ones reuse it
            self.keymap[lkey] = real = key
        super().__setitem__(real, value)

    def __getitem__(self, key: str) -> _V:
        """The value of ``key``, matched without regard to case."""
        return super().__getitem__(self._key(key))

    def __delitem__(self, key: str) -> None:
        """Remove ``key``, matched without regard to case."""
        real = self._key(key)
        super().__delitem__(real)
        del self.keymap[real.lower()]

    def __contains__(self, key: object) -> bool:
        """Whether ``key`` (a string, matched without regard to case) is present."""
        return isinstance(key, str) and key.lower() in self.keymap

    @overload
    def get(self, key: str, default: None = None, /) -> Optional[_V]: ...

    @overload
    def get(self, key: str, default: _V, /) -> _V: ...

    @overload
    def get(self, key: str, default: _T, /) -> Union[_V, _T]: ...

    @overload
    def get(self, key: str, *, default: _T) -> Union[_V, _T]: ...

    def get(self, key: str, default: Any = None) -> Any:
        """Return the value of a key, matched without regard to case, or a default.

        Args:
            key: The key.
            default: What to return when ``key`` is absent.

        Returns:
            The value, or ``default``.
        """
        real = self.keymap.get(key.lower())
        return default if real is None else super().__getitem__(real)

    @overload
    def pop(self, key: str, /) -> _V: ...

    @overload
    def pop(self, key: str, default: _V, /) -> _V: ...

    @overload
    def pop(self, key: str, default: _T, /) -> Union[_V, _T]: ...

    def pop(self, key: str, *default: Any) -> Any:
        """Remove a key, matched without regard to case, and return its value.

        Args:
            key: The key.
            *default: At most one value, returned when ``key`` is absent.

        Returns:
            The value removed, or the default.

        Raises:
            KeyError: If ``key`` is absent and no default is given.
        """
        real = self.keymap.pop(key.lower(), None)
        if real is None:
            if default:
                return default[0]
            raise KeyError(key)
        return super().pop(real)

    def popitem(self) -> Tuple[str, _V]:
        """Remove the last item set and return it.

        Returns:
            The ``(key, value)`` pair removed.
        """
        key, value = super().popitem()
        del self.keymap[key.lower()]
        return key, value

    @overload
    def setdefault(self: NoCaseDict[Optional[_T]], key: str, default: None = None, /
                   ) -> Optional[_T]: ...

    @overload
    def setdefault(self, key: str, default: _V, /) -> _V: ...

    def setdefault(self, key: str, default: Any = None) -> Any:
        """Return the value of a key, first setting it to a default if absent.

        Args:
            key: The key, matched without regard to case.
            default: The value set when ``key`` is absent.

        Returns:
            The value of ``key``.
        """
        if key in self:
            return self[key]
        self[key] = default
        return default

    def update(self, other: Any = (),  # type: ignore[override]
               **kwargs: _V) -> None:
        """Set several keys, each matched without regard to case.

        Args:
            other: A mapping or ``(key, value)`` pairs.
            **kwargs: More keys and values.
        """
        source: Any = other
        items = source.items() if hasattr(source, 'items') else source
        for key, value in items:
            self[key] = value
        for key, value in kwargs.items():
            self[key] = value

    def copy(self) -> NoCaseDict[_V]:
        """Return a shallow copy that keeps the spellings, without re-checking every key.

        Returns:
            A new ``NoCaseDict``.
        """
        new = cast('NoCaseDict[_V]', NoCaseDict.__new__(NoCaseDict))
        super(NoCaseDict, new).update(self)
        new.keymap = self.keymap.copy()
        return new

    def clear(self) -> None:
        """Remove every key."""
        super().clear()
        self.keymap.clear()

    def __repr__(self) -> str:
        """``NoCaseDict({...})``."""
        return 'NoCaseDict(%s)' % super().__repr__()
