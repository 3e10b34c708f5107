"""What the command line prints, made safe: for the terminal, and against a reader that goes away.

``printable`` escapes the characters a terminal acts on (escape sequences, carriage returns,
newlines, bidirectional overrides): a model file's class names and dataset name are data
from anyone, and printed raw they could recolour or clear the screen, rewrite earlier lines,
or break a table's rows.

``ReaderMayLeave`` wraps ``sys.stdout``/``sys.stderr`` for a command: when the reader of a pipe
goes away (``nncore train ... | head -1``), the rest of the output is discarded and the command
goes on, so that training finishes and the model is saved; the output was the reader's to
drop, so nothing is lost that the command exists to make.
"""
import os

_NAMED_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def printable(text, keep_line_breaks=False):
    """``text`` with every character that is not printable escaped (``\\x1b``, ``\\n``, ``\\u202e``);
    with ``keep_line_breaks``, a message of several lines keeps its "\\n"s."""
    text = str(text)
    if keep_line_breaks:
        return "\n".join(printable(line) for line in text.split("\n"))
    if text.isprintable():
        return text
    return "".join(character if character.isprintable() else _escaped(character) for character in text)


def _escaped(character):
    if character in _NAMED_ESCAPES:
        return _NAMED_ESCAPES[character]
    code = ord(character)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


class ReaderMayLeave:
    """A text stream that, once its reader has gone (BrokenPipeError), discards what is written to it.

    Its descriptor is pointed at the null device then, so that what the interpreter flushes
    at exit does not fail either. ``reader_left`` says whether that happened. Everything else
    (``isatty``, ``fileno``, ``encoding``, ...) is the wrapped stream's.
    """

    def __init__(self, stream):
        self._stream = stream
        self.reader_left = False

    def write(self, text):
        if not self.reader_left:
            try:
                return self._stream.write(text)
            except BrokenPipeError:
                self._discard_from_now_on()
        return len(text)

    def flush(self):
        if not self.reader_left:
            try:
                self._stream.flush()
            except BrokenPipeError:
                self._discard_from_now_on()

    def _discard_from_now_on(self):
        self.reader_left = True
        try:
            null = os.open(os.devnull, os.O_WRONLY)
            try:
                os.dup2(null, self._stream.fileno())
            finally:
                os.close(null)
        except (OSError, ValueError, AttributeError):  # no descriptor (a test's capture): discarding is enough
            pass

    def __getattr__(self, name):
        return getattr(self._stream, name)
