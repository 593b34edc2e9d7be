"""A self-contained implementation of the uTemplate template language.

Templates compile to Python generator functions that yield ``str`` chunks. The
compiled code is cached in memory (and optionally on disk) and recompiled when the
template file changes. See the microdot-templates README for the language reference.
"""
from __future__ import annotations

import ast
import builtins
import errno
import hashlib
import importlib.util
import logging
import marshal
import os
import re
import struct
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from types import CodeType
from typing import Any, cast

__all__ = [
    'Loader', 'TemplateFunction', 'TemplateNotFoundError', 'TemplateSyntaxError',
    'compile_template', 'generate_source',
]

#: The Microdot core plugin API version this module targets.
MICRODOT_PLUGIN_API = 1

logger = logging.getLogger(__name__)

#: Bumped whenever the generated code changes shape, so that disk caches written
#: by another version of this module are not reused.
CODE_FORMAT = 2

_FUNC_NAME = '_ut_render'
_STR_NAME = '_ut_str'
_INCLUDE_NAME = '_ut_include'

_KEYWORD_RE = re.compile(r'\s*([A-Za-z_]\w*)(.*)\Z', re.DOTALL)
_STRING_RE = re.compile(
    r'''[rRuU]?(?:'(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*")''')
_CLOSERS = {'if': 'endif', 'for': 'endfor', 'while': 'endwhile'}
_OPENERS = {v: k for k, v in _CLOSERS.items()}


class TemplateSyntaxError(Exception):
    """A template could not be compiled; names the template file and line.

    Args:
        msg: What is wrong.
        filename: The template's name or path.
        lineno: The line of the template.
    """

    def __init__(self, msg: str, filename: str | None = None,
                 lineno: int | None = None) -> None:
        self.msg = msg
        self.filename = filename
        self.lineno = lineno
        where = ', '.join(
            part for part in (filename,
                              f'line {lineno}' if lineno is not None else None)
            if part)
        super().__init__(f'{where}: {msg}' if where else msg)


class TemplateNotFoundError(FileNotFoundError):
    """A template file does not exist; carries the resolved path.

    Args:
        name: The template's name.
        path: The path it resolved to.
    """

    def __init__(self, name: str, path: str) -> None:
        super().__init__(errno.ENOENT, f'Template {name!r} not found', path)
        self.name = name


# --------------------------------------------------------------------------
# Compiler
# --------------------------------------------------------------------------

def _skip_string(src: str, i: int) -> int:
    """Return the index just past the Python string literal starting at ``i``."""
    n = len(src)
    quote = src[i] * 3 if src.startswith(src[i] * 3, i) else src[i]
    j = i + len(quote)
    while j < n:
        c = src[j]
        if c == '\\':
            j += 2
            continue
        if src.startswith(quote, j):
            return j + len(quote)
        if c == '\n' and len(quote) == 1:
            return j  # unterminated one-line string: let Python report it
        j += 1
    return n


def _find_closer(src: str, pos: int, closer: str) -> int:
    """Find ``closer`` outside Python strings and brackets; -1 if absent."""
    depth = 0
    i = pos
    n = len(src)
    while i < n:
        c = src[i]
        if c in '\'"':
            i = _skip_string(src, i)
            continue
        if depth <= 0 and src.startswith(closer, i):
            return i
        if c in '([{':
            depth += 1
        elif c in ')]}':
            depth -= 1
        i += 1
    # brackets or quotes do not balance: use the first closer and let the
    # Python syntax check report the problem
    return src.find(closer, pos)


def _normalize_newlines(text: str) -> str:
    """Turn ``\\r\\n`` and lone ``\\r`` into ``\\n``, as universal newlines do.

    Template files are read that way (as uTemplate reads them), so text given to
    the compiler directly behaves the same as the same bytes in a file.
    """
    if '\r' in text:
        text = text.replace('\r\n', '\n').replace('\r', '\n')
    return text


def _tokenize(text: str, filename: str) -> list[tuple[str, str, int]]:
    """Split template text into ('text'|'expr'|'stmt', content, lineno) tokens.

    Whitespace follows uTemplate 1.4.1: text is kept exactly as written
    (including the indentation before a statement tag), except that a newline
    directly after a statement tag's ``%}`` is dropped, i.e. when the rest of
    the line after the tag is just its newline.
    """
    tokens: list[tuple[str, str, int]] = []
    pos = 0
    lineno = 1
    n = len(text)

    while pos < n:
        start = pos
        while True:
            start = text.find('{', start)
            if start == -1 or start + 1 >= n or text[start + 1] in '{%':
                break
            start += 1
        if start == -1 or start + 1 >= n:
            tokens.append(('text', text[pos:], lineno))
            break
        if start > pos:
            tokens.append(('text', text[pos:start], lineno))
            lineno += text.count('\n', pos, start)
        kind = 'expr' if text[start + 1] == '{' else 'stmt'
        closer = '}}' if kind == 'expr' else '%}'
        end = _find_closer(text, start + 2, closer)
        if end == -1:
            raise TemplateSyntaxError(
                f"unterminated '{text[start:start + 2]}' (missing '{closer}')",
                filename, lineno)
        tokens.append((kind, text[start + 2:end], lineno))
        lineno += text.count('\n', start, end + 2)
        pos = end + 2
        if kind == 'stmt' and text.startswith('\n', pos):
            pos += 1  # the statement's line ends here: its newline is dropped
            lineno += 1
    return tokens


class _Block:
    """An open if/for/while block while compiling."""

    __slots__ = ('kind', 'lineno', 'has_else', 'body_start')

    def __init__(self, kind: str, lineno: int, body_start: int) -> None:
        self.kind = kind
        self.lineno = lineno
        self.has_else = False
        self.body_start = body_start


class _Compiler:
    """Translates a template's tokens into the source of a generator function."""

    def __init__(self, text: str, filename: str) -> None:
        self.text = _normalize_newlines(text)
        self.filename = filename
        self.lines: list[str] = []
        self.linemap: list[int] = []
        self.stack: list[_Block] = []
        self.args = ''
        self.args_lineno: int | None = None
        self.has_yield = False

    # -- helpers --
    def error(self, msg: str, lineno: int) -> TemplateSyntaxError:
        return TemplateSyntaxError(msg, self.filename, lineno)

    def emit(self, code: str, lineno: int) -> None:
        """Add generated code; continuation lines keep their own lines."""
        indent = '    ' * (1 + len(self.stack))
        for i, line in enumerate(code.split('\n')):
            self.lines.append(indent + line if i == 0 else line)
            self.linemap.append(lineno + i)

    @staticmethod
    def piece(code: str, lineno: int) -> tuple[str, int]:
        """Strip a tag's content and return it with the line it starts on."""
        stripped = code.lstrip()
        lineno += code[:len(code) - len(stripped)].count('\n')
        return stripped.rstrip(), lineno

    @staticmethod
    def wrap(code: str) -> str:
        """Close a bracket after ``code`` safely even if it ends in a comment."""
        return code + ('\n' if '#' in code else '')

    def check(self, snippet: str, lineno: int, what: str,
              mode: str = 'exec') -> ast.mod:
        """Parse a generated snippet, raising TemplateSyntaxError on failure."""
        try:
            return ast.parse(snippet, mode=mode)
        except SyntaxError as exc:
            line = lineno + max((exc.lineno or 1) - 1, 0)
            raise self.error(f'invalid Python in {what}: {exc.msg}',
                             line) from None

    def check_expr(self, code: str, lineno: int, what: str) -> str:
        if not code:
            raise self.error(f'{what} requires an expression', lineno)
        wrapped = '(' + self.wrap(code) + ')'
        self.check(wrapped, lineno, what, 'eval')
        return wrapped

    # -- driver --
    def compile(self) -> tuple[str, list[int]]:
        for kind, content, lineno in _tokenize(self.text, self.filename):
            if kind == 'text':
                self.emit(f'yield {content!r}', lineno)
                self.has_yield = True
            elif kind == 'expr':
                code, line = self.piece(content, lineno)
                shown = code if len(code) <= 40 else code[:37] + '...'
                expr = self.check_expr(code, line, f"'{{{{ {shown} }}}}'")
                self.emit(f'yield {_STR_NAME}({expr})', line)
                self.has_yield = True
            else:
                self.statement(content, lineno)
        if self.stack:
            block = self.stack[-1]
            raise self.error(
                f"'{block.kind}' without matching '{_CLOSERS[block.kind]}'",
                block.lineno)
        last = max(self.text.count('\n') + 1, 1)
        if not self.has_yield:  # still make it a generator function
            self.emit('return', last)
            self.emit('yield', last)
        args = self.wrap(self.args)
        header = f'def {_FUNC_NAME}({args}):'
        self.check(header + '\n    pass', self.args_lineno or 1, "'args'")
        head_lines = header.split('\n')
        first = self.args_lineno or 1
        source = '\n'.join(head_lines + self.lines) + '\n'
        linemap = [first + i for i in range(len(head_lines))] + self.linemap
        return source, [min(line, last) for line in linemap]

    def statement(self, content: str, lineno: int) -> None:
        code, lineno = self.piece(content, lineno)
        match = _KEYWORD_RE.match(code)
        if not match:
            raise self.error(
                f"invalid tag '{{% {code} %}}'" if code else "empty '{% %}' tag",
                lineno)
        keyword, rest = match.group(1), match.group(2).strip()
        handler = getattr(self, f'tag_{keyword}', None)
        if handler is None:
            raise self.error(f"unknown tag '{keyword}'", lineno)
        handler(rest, lineno)

    def no_arguments(self, keyword: str, rest: str, lineno: int) -> None:
        if rest:
            raise self.error(f"'{keyword}' takes no arguments", lineno)

    def open_block(self, kind: str, header: str, lineno: int) -> None:
        self.emit(header, lineno)
        self.stack.append(_Block(kind, lineno, len(self.lines)))

    def fill_empty(self, block: _Block, lineno: int) -> None:
        if len(self.lines) == block.body_start:
            self.emit('pass', lineno)

    # -- tags --
    def tag_args(self, rest: str, lineno: int) -> None:
        if self.args_lineno is not None:
            raise self.error(
                f"duplicate 'args' (first on line {self.args_lineno})", lineno)
        if self.stack:
            raise self.error("'args' must be at the top level", lineno)
        self.check(f'def f({self.wrap(rest)}):\n    pass', lineno, "'args'")
        self.args = rest
        self.args_lineno = lineno

    def tag_if(self, rest: str, lineno: int) -> None:
        cond = self.check_expr(rest, lineno, "'if'")
        self.open_block('if', f'if {cond}:', lineno)

    def tag_elif(self, rest: str, lineno: int) -> None:
        block = self.stack[-1] if self.stack else None
        if block is None or block.kind != 'if':
            raise self.error("'elif' without matching 'if'", lineno)
        if block.has_else:
            raise self.error("'elif' after 'else'", lineno)
        cond = self.check_expr(rest, lineno, "'elif'")
        self.fill_empty(block, lineno)
        self.stack.pop()
        self.emit(f'elif {cond}:', lineno)
        self.stack.append(block)
        block.body_start = len(self.lines)

    def tag_else(self, rest: str, lineno: int) -> None:
        block = self.stack[-1] if self.stack else None
        if block is None or block.kind != 'if':
            raise self.error("'else' without matching 'if'", lineno)
        if block.has_else:
            raise self.error("duplicate 'else'", lineno)
        self.no_arguments('else', rest, lineno)
        self.fill_empty(block, lineno)
        self.stack.pop()
        self.emit('else:', lineno)
        self.stack.append(block)
        block.has_else = True
        block.body_start = len(self.lines)

    def close_block(self, keyword: str, rest: str, lineno: int) -> None:
        self.no_arguments(keyword, rest, lineno)
        opener = _OPENERS[keyword]
        if not self.stack:
            raise self.error(f"'{keyword}' without matching '{opener}'", lineno)
        block = self.stack[-1]
        if block.kind != opener:
            raise self.error(
                f"'{keyword}' without matching '{opener}' (the '{block.kind}' "
                f"on line {block.lineno} is still open)", lineno)
        self.fill_empty(block, lineno)
        self.stack.pop()

    def tag_endif(self, rest: str, lineno: int) -> None:
        self.close_block('endif', rest, lineno)

    def tag_endfor(self, rest: str, lineno: int) -> None:
        self.close_block('endfor', rest, lineno)

    def tag_endwhile(self, rest: str, lineno: int) -> None:
        self.close_block('endwhile', rest, lineno)

    def tag_for(self, rest: str, lineno: int) -> None:
        if not rest:
            raise self.error("'for' requires 'target in iterable'", lineno)
        header = f'for {rest}:'
        tree = cast(ast.Module, self.check(header + '\n    pass', lineno, "'for'"))
        if (len(tree.body) != 1
                or not isinstance(tree.body[0], ast.For)):
            raise self.error("'for' requires 'target in iterable'", lineno)
        self.open_block('for', header, lineno)

    def tag_while(self, rest: str, lineno: int) -> None:
        cond = self.check_expr(rest, lineno, "'while'")
        self.open_block('while', f'while {cond}:', lineno)

    def tag_set(self, rest: str, lineno: int) -> None:
        if not rest:
            raise self.error("'set' requires an assignment", lineno)
        tree = cast(ast.Module, self.check(rest, lineno, "'set'"))
        body = tree.body
        if len(body) != 1 or not isinstance(
                body[0], (ast.Assign, ast.AugAssign, ast.AnnAssign)):
            raise self.error("'set' requires a single assignment", lineno)
        self.emit(rest, lineno)

    def tag_include(self, rest: str, lineno: int) -> None:
        if rest.startswith('{{'):
            end = _find_closer(rest, 2, '}}')
            if end == -1:
                raise self.error("unterminated '{{' in 'include'", lineno)
            name_code, name_line = self.piece(rest[2:end], lineno)
            name = self.check_expr(name_code, name_line, "'include' name")
            rest = rest[end + 2:]
        else:
            match = _STRING_RE.match(rest)
            if not match:
                raise self.error(
                    "'include' requires a quoted template name or "
                    "'{{ expression }}'", lineno)
            name = repr(ast.literal_eval(match.group()))
            rest = rest[match.end():]
        args = rest.strip()
        if args.startswith(','):
            args = args[1:].lstrip()
        call = f'{_INCLUDE_NAME}({name})({self.wrap(args)})'
        self.check(call, lineno, "'include' arguments", 'eval')
        self.emit(f'yield from {call}', lineno)
        self.has_yield = True


def generate_source(text: str, filename: str = '<template>') -> str:
    """Show the Python source a template compiles to (for debugging).

    Args:
        text: The template text.
        filename: The template's name, for error messages.

    Returns:
        The source of the module that defines the template's generator.

    Raises:
        TemplateSyntaxError: If the template does not compile.
    """
    return _Compiler(text, filename).compile()[0]


def compile_template(text: str, filename: str = '<template>',
                     path: str | None = None) -> CodeType:
    """Compile template text to a module code object defining the generator.

    Args:
        text: The template text.
        filename: The template's name, for error messages.
        path: Recorded in the code (default ``filename``), so that tracebacks show
            template lines.

    Returns:
        The code object.

    Raises:
        TemplateSyntaxError: If the template does not compile.
    """
    source, linemap = _Compiler(text, filename).compile()
    try:
        tree = ast.parse(source, filename=path or filename)
    except SyntaxError as exc:  # pragma: no cover - pieces are checked before
        line = linemap[min(max((exc.lineno or 1) - 1, 0), len(linemap) - 1)]
        raise TemplateSyntaxError(exc.msg, filename, line) from None
    for node in ast.walk(tree):
        lineno: int | None = getattr(node, 'lineno', None)
        if lineno is None:
            continue
        end_lineno: int | None = getattr(node, 'end_lineno', None)
        start = linemap[lineno - 1]
        end = linemap[(end_lineno or lineno) - 1]
        located: Any = node  # (the nodes that have a line number have these four)
        located.lineno = start
        located.end_lineno = max(start, end)
        located.col_offset = -1
        located.end_col_offset = -1
    try:
        return compile(tree, path or filename, 'exec', dont_inherit=True)
    except SyntaxError as exc:
        raise TemplateSyntaxError(exc.msg, filename, exc.lineno) from None


# --------------------------------------------------------------------------
# Loader
# --------------------------------------------------------------------------

_CACHE_MAGIC = b'uTPL' + importlib.util.MAGIC_NUMBER
_CACHE_HEADER = struct.Struct('<IQQ')  # format, mtime_ns, size


class _Entry:
    """A compiled template together with the file state it was built from."""

    __slots__ = ('func', 'mtime_ns', 'size', 'epoch')

    def __init__(self, func: Callable[..., Iterator[str]], mtime_ns: int,
                 size: int, epoch: int) -> None:
        self.func = func
        self.mtime_ns = mtime_ns
        self.size = size
        self.epoch = epoch


class TemplateFunction:
    """A loaded template: call it with the template's arguments to get chunks.

    Each call checks (one ``stat``) whether the file changed and recompiles it.

    Args:
        loader: The loader it came from.
        name: The template's name.
        path: The template file.
    """

    __slots__ = ('loader', 'name', 'path')

    def __init__(self, loader: Loader, name: str, path: str) -> None:
        self.loader = loader
        self.name = name
        self.path = path

    def __call__(self, *args: Any, **kwargs: Any) -> Iterator[str]:
        """Render the template (recompiled first if its file changed).

        Args:
            *args: The template's positional arguments (its ``{% args %}``).
            **kwargs: The template's keyword arguments.

        Returns:
            An iterator over the rendered text.

        Raises:
            TemplateNotFoundError: If the template file was removed.
            TemplateSyntaxError: If the changed template does not compile.
        """
        loader = self.loader
        # (a loaded template is part of its loader)
        loader._epoch += 1  # pyright: ignore[reportPrivateUsage]
        return loader._fresh(  # pyright: ignore[reportPrivateUsage]
            self.name, self.path).func(*args, **kwargs)

    def __repr__(self) -> str:
        return f'<TemplateFunction {self.name!r} from {self.path!r}>'


class Loader:
    """Loads, compiles and caches templates from a directory.

    Compiled code is kept in memory and, when ``cache_dir`` is given, on disk; both
    are invalidated when the template file's mtime or size changes.

    Args:
        template_dir: The template directory (a relative path is resolved now).
        cache_dir: A directory for the disk cache, outside the template directory.

    Raises:
        ValueError: If ``cache_dir`` is inside the template directory.
    """

    def __init__(self, template_dir: str = 'templates',
                 cache_dir: str | None = None) -> None:
        self.template_dir = os.path.abspath(template_dir)
        if cache_dir is not None:
            cache_dir = os.path.abspath(cache_dir)
            try:
                inside = os.path.commonpath(
                    [cache_dir, self.template_dir]) == self.template_dir
            except ValueError:  # different drives
                inside = False
            if inside:
                raise ValueError(
                    f'cache_dir {cache_dir!r} must be outside the template '
                    f'directory {self.template_dir!r}')
        self.cache_dir = cache_dir
        self._entries: dict[str, _Entry] = {}
        self._functions: dict[str, TemplateFunction] = {}
        self._lock = threading.Lock()
        self._epoch = 0

    def resolve(self, name: str) -> str:
        """Return the absolute path of a template, refusing names that escape its directory.

        Args:
            name: The template's name, relative to the template directory.

        Returns:
            The path.

        Raises:
            ValueError: For an empty or absolute name, or one that leads outside the
                template directory.
        """
        if not isinstance(name, str) or not name:  # pyright: ignore[reportUnnecessaryIsInstance]
            raise ValueError(f'invalid template name {name!r}')
        if '\0' in name or os.path.isabs(name) or name.startswith(('/', '\\')) \
                or os.path.splitdrive(name)[0]:
            raise ValueError(
                f'template name {name!r} must be relative to the template '
                'directory')
        path = os.path.normpath(os.path.join(self.template_dir, name))
        if not path.startswith(self.template_dir + os.sep):
            raise ValueError(
                f'template name {name!r} escapes the template directory '
                f'{self.template_dir!r}')
        return path

    def load(self, name: str) -> TemplateFunction:
        """Compile (or fetch from the cache) a template and return its callable.

        Args:
            name: The template's name, relative to the template directory.

        Returns:
            The template, to call with its arguments.

        Raises:
            ValueError: For a name that escapes the template directory.
            TemplateNotFoundError: If there is no such template.
            TemplateSyntaxError: If the template does not compile.
        """
        function = self._functions.get(name)
        if function is None:
            function = TemplateFunction(self, name, self.resolve(name))
        self._fresh(name, function.path)
        self._functions[name] = function
        return function

    def clear(self) -> None:
        """Forget the in-memory cache (the disk cache is left alone)."""
        with self._lock:
            self._entries.clear()
            self._functions.clear()

    # -- internals --
    def _include(self, name: str) -> Callable[..., Iterator[str]]:
        """Return the generator function for a template included by another."""
        function = self._functions.get(name)
        if function is None:
            function = TemplateFunction(self, name, self.resolve(name))
            self._functions[name] = function
        return self._fresh(name, function.path).func

    def _stat(self, name: str, path: str) -> os.stat_result:
        try:
            return os.stat(path)
        except FileNotFoundError:
            raise TemplateNotFoundError(name, path) from None

    def _fresh(self, name: str, path: str) -> _Entry:
        """Return an up-to-date entry; stat at most once per render call."""
        entry = self._entries.get(name)
        epoch = self._epoch
        if entry is not None and entry.epoch == epoch:
            return entry
        st = self._stat(name, path)
        if entry is not None and entry.mtime_ns == st.st_mtime_ns and \
                entry.size == st.st_size:
            entry.epoch = epoch
            return entry
        with self._lock:
            entry = self._entries.get(name)
            if entry is None or entry.mtime_ns != st.st_mtime_ns or \
                    entry.size != st.st_size:
                code = self._code(name, path, st)
                entry = _Entry(self._function(name, code), st.st_mtime_ns,
                               st.st_size, epoch)
                self._entries[name] = entry
            entry.epoch = epoch
            return entry

    def _function(self, name: str, code: CodeType) -> Callable[..., Iterator[str]]:
        namespace: dict[str, Any] = {
            '__name__': f'utemplate:{name}',
            '__builtins__': builtins,
            _STR_NAME: str,
            _INCLUDE_NAME: self._include,
        }
        exec(code, namespace)  # noqa: S102 - running compiled template code
        function: Callable[..., Iterator[str]] = namespace[_FUNC_NAME]
        return function

    def _code(self, name: str, path: str, st: os.stat_result) -> CodeType:
        cache_file = self._cache_file(path)
        if cache_file is not None:
            code = self._read_cache(cache_file, st)
            if code is not None:
                logger.debug('template %s loaded from %s', name, cache_file)
                return code
        try:
            with open(path, encoding='utf-8-sig') as f:
                text = f.read()
        except FileNotFoundError:
            raise TemplateNotFoundError(name, path) from None
        logger.debug('compiling template %s', path)
        code = compile_template(text, name, path)
        if cache_file is not None:
            self._write_cache(cache_file, st, code)
        return code

    def _cache_file(self, path: str) -> str | None:
        if self.cache_dir is None:
            return None
        digest = hashlib.sha1(path.encode('utf-8', 'surrogatepass')).hexdigest()
        base = re.sub(r'[^A-Za-z0-9_.-]', '_', os.path.basename(path))[:64]
        tag = sys.implementation.cache_tag or 'python'
        return os.path.join(self.cache_dir, f'{base}-{digest[:16]}.{tag}.utpl')

    @staticmethod
    def _read_cache(cache_file: str, st: os.stat_result) -> CodeType | None:
        try:
            with open(cache_file, 'rb') as f:
                data = f.read()
        except OSError:
            return None
        head = len(_CACHE_MAGIC) + _CACHE_HEADER.size
        if len(data) < head or not data.startswith(_CACHE_MAGIC):
            return None
        fmt, mtime_ns, size = _CACHE_HEADER.unpack_from(data, len(_CACHE_MAGIC))
        if (fmt, mtime_ns, size) != (CODE_FORMAT, st.st_mtime_ns, st.st_size):
            return None
        try:
            code = marshal.loads(data[head:])
        except (EOFError, ValueError, TypeError):
            return None
        return code if isinstance(code, CodeType) else None

    def _write_cache(self, cache_file: str, st: os.stat_result,
                     code: CodeType) -> None:
        data = _CACHE_MAGIC + _CACHE_HEADER.pack(
            CODE_FORMAT, st.st_mtime_ns, st.st_size) + marshal.dumps(code)
        try:
            os.makedirs(cast(str, self.cache_dir), exist_ok=True)  # (set when caching)
            fd, tmp = tempfile.mkstemp(dir=self.cache_dir, suffix='.tmp')
            try:
                with os.fdopen(fd, 'wb') as f:
                    f.write(data)
                os.replace(tmp, cache_file)
            except BaseException:
                os.unlink(tmp)
                raise
        except OSError as exc:
            logger.warning('cannot write template cache %s: %s', cache_file, exc)
